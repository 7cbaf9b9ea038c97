"""Reads examples and code samples out of the vendored OpenAPI spec for the SDK tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from codegen.spec import DEFAULT_SPECS, SPEC_DIR

SPEC_PATH = DEFAULT_SPECS[0]
"""The spec codegen reads (Autumn's current API)."""
MAY_SPEC_PATH = SPEC_DIR / "autumn-2026-05-20.yml"
"""Autumn's API as of 2026-05-20, still vendored: its code samples must keep running too."""


@cache
def spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    with path.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


@dataclass(frozen=True)
class CodeSample:
    path: str
    operation_id: str
    source: str


def python_code_samples(spec_path: Path = SPEC_PATH) -> list[CodeSample]:
    samples = []
    for path, item in spec(spec_path)["paths"].items():
        for operation in item.values():
            for sample in operation.get("x-codeSamples", []):
                if sample.get("lang") == "python":
                    samples.append(CodeSample(path, operation["operationId"], sample["source"]))
    return samples


def response_example(path: str, status: str = "200") -> Any:
    """The spec's example body for ``path`` (``example`` or the first of ``examples``)."""
    operation = spec()["paths"][path]["post"]
    content = operation["responses"][status]["content"]["application/json"]
    if "example" in content:
        return content["example"]
    examples = content.get("examples") or {}
    for example in examples.values():
        return example.get("value", example)
    schema = content.get("schema", {})
    if "examples" in schema:
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    raise LookupError(f"the spec has no example response for {path} {status}")


def webhook_examples() -> list[tuple[str, dict[str, Any]]]:
    """``(event type, full payload)`` for every webhook the spec documents with an example."""
    found = []
    for event_type, item in spec().get("webhooks", {}).items():
        schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
        data_schema = schema["properties"]["data"]
        examples = data_schema.get("examples") or (
            [data_schema["example"]] if "example" in data_schema else []
        )
        for example in examples:
            found.append((event_type, {"type": event_type, "data": example}))
    return found
