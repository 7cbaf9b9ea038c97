"""Loading the OpenAPI documents the generator reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .overlay import (
    OFFICIAL_ARGUMENTS_KEY,
    apply_answer_additions,
    apply_answer_field_additions,
    apply_overlay,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO_ROOT / "spec"
"""The vendored OpenAPI documents (``spec/README.md`` says where each came from)."""
OFFICIAL_OPERATIONS_SPEC = SPEC_DIR / "autumn-sdk-1.2.0-operations.yml"
"""The official SDK's operations beyond Autumn's spec, and its arguments beyond that spec
(``x-official-arguments``)."""
DEFAULT_SPECS = (
    SPEC_DIR / "autumn-2026-08-22.yml",
    SPEC_DIR / "platform.yaml",
    OFFICIAL_OPERATIONS_SPEC,
)
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_SAFE_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (the same documents, about 3x faster), else PyYAML's."""


@dataclass(frozen=True)
class SpecDocument:
    """One parsed spec plus what the generator needs to know about where it came from."""

    path: Path
    data: dict[str, Any]

    @property
    def is_platform(self) -> bool:
        """The platform API is its own document: its paths live under a ``/v1`` server URL."""
        return any(p.startswith("/platform") for p in self.data.get("paths", {}))

    @property
    def server_path_prefix(self) -> str:
        """The path part of the first server URL (``"/v1"`` for platform.yaml, ``""`` for openapi.yml)."""
        servers = self.data.get("servers") or [{"url": ""}]
        url = str(servers[0].get("url", ""))
        after_scheme = url.split("://", 1)[-1]
        slash = after_scheme.find("/")
        return after_scheme[slash:].rstrip("/") if slash >= 0 else ""


def read_vendored(path: Path) -> dict[str, Any]:
    """One vendored document exactly as its file has it, not widened by :mod:`codegen.overlay`.
    YAML anchors (the spec shares examples through them) are resolved by the safe loader."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_SAFE_LOADER)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return data


def load_spec(path: Path) -> SpecDocument:
    """One vendored document, widened by :mod:`codegen.overlay` (with the official SDK's arguments)."""
    data = read_vendored(path)
    official = data if path == OFFICIAL_OPERATIONS_SPEC else read_vendored(OFFICIAL_OPERATIONS_SPEC)
    apply_overlay(data, official.get(OFFICIAL_ARGUMENTS_KEY) or {})
    apply_answer_additions(data)
    apply_answer_field_additions(data)
    return SpecDocument(path=path, data=data)
