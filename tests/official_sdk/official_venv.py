"""A virtualenv holding the official ``autumn-sdk`` from PyPI, apart from the test interpreter's.

The official SDK and this kit both install the import package ``autumn_sdk``, so the official one
can never share an environment with ours: it gets its own virtualenv, created without pip (this
interpreter's pip installs into it through ``pip --python``), and is driven by
``official_calls.py`` run with that environment's interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OFFICIAL_VERSION = "1.2.0"
OFFICIAL_REQUIREMENT = f"autumn-sdk=={OFFICIAL_VERSION}"
CALLS_SCRIPT = Path(__file__).with_name("official_calls.py")
DERIVE_SCRIPT = Path(__file__).resolve().parents[2] / "codegen" / "official_operations.py"
"""Derives spec/autumn-sdk-1.2.0-operations.yml from the official SDK (run with its interpreter)."""
INSTALL_TIMEOUT_S = 240


@dataclass(frozen=True)
class OfficialSdk:
    python: Path
    """The interpreter of the virtualenv that holds the official SDK."""

    def run(self, *args: str, timeout: float = 300, script: Path = CALLS_SCRIPT) -> str:
        """``script`` (``official_calls.py``) with ``args``, isolated (``-I``: no PYTHONPATH, no script
        directory)."""
        done = subprocess.run(
            [str(self.python), "-I", str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AUTUMN_", "X_API_", "FAIL_OPEN"))},
        )
        if done.returncode != 0:
            raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr[-4000:]}")
        return done.stdout

    def inventory(self) -> dict[str, str]:
        """The official client's operations: ``group.method`` -> HTTP path."""
        found: dict[str, str] = json.loads(self.run("--inventory"))
        return found

    def derived_spec(self) -> dict[str, Any]:
        """The document ``codegen/official_operations.py`` derives from this SDK."""
        found: dict[str, Any] = json.loads(self.run(script=DERIVE_SCRIPT))
        return found

    def signatures(self) -> dict[str, dict[str, list[str]]]:
        """Each official operation's keyword arguments: ``{"required": [...], "optional": [...]}``."""
        found: dict[str, dict[str, list[str]]] = json.loads(self.run("--signatures"))
        return found

    def call_all(self, server_url: str, secret_key: str) -> list[dict[str, Any]]:
        """One report per line of the script's output (the seed's first, then one per call)."""
        return [json.loads(line) for line in self.run(server_url, secret_key).splitlines() if line.strip()]


def create_official_sdk(root: Path) -> OfficialSdk:
    """A fresh virtualenv at ``root`` with ``autumn-sdk==1.2.0`` installed from the package index."""
    venv.EnvBuilder(with_pip=False, clear=True).create(root)
    python = (
        root / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", OFFICIAL_REQUIREMENT],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    version = subprocess.run(
        [str(python), "-I", "-c", "import importlib.metadata as m; print(m.version('autumn-sdk'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != OFFICIAL_VERSION:
        raise RuntimeError(
            f"the official SDK's virtualenv holds autumn-sdk {version}, not {OFFICIAL_VERSION}"
        )
    return OfficialSdk(python)
