"""The suite's lint gate: ruff over the whole repository, mypy --strict over the six packages, and the
import rules of the architecture (``[tool.importlinter]`` in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["autumn_sdk", "autumn_handlers", "reference_server", "codegen", "autumn_cli", "autumn_kit"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", "--strict", *[arg for package in PACKAGES for arg in ("-p", package)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_follow_the_layers() -> None:
    """Nothing imports a layer above it (HTTP -> use cases -> processors -> store and engine), the
    engine stays free of I/O libraries, and the clients never import the server."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_spec_code_samples_type_check_strictly(tmp_path: Path) -> None:
    """The documented call style (keyword fields, nested dicts, ``request={}``) satisfies the typed
    signatures, so users running mypy on code copied from the docs get no errors."""
    from .spec_samples import python_code_samples

    for sample in python_code_samples():
        (tmp_path / f"sample_{sample.operation_id}.py").write_text(sample.source + "\n")
    result = _run("mypy", "--strict", "--no-incremental", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"no issues found in {len(python_code_samples())} source files" in result.stdout
