"""The generated package type-checks under ``mypy --strict`` (the SDK's users see these types)."""

from __future__ import annotations

import subprocess
import sys

from codegen.spec import REPO_ROOT


def test_generated_code_passes_mypy_strict() -> None:
    # follow-imports=silent: judge only the generated files, not sibling modules still in progress.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--config-file",
            str(REPO_ROOT / "pyproject.toml"),
            "autumn_sdk/_generated",
            "autumn_sdk/models.py",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
