"""autumn-kit beside Autumn's official autumn-sdk: importing any of the kit's packages fails at once.

Both distributions install the import package ``autumn_sdk``. An environment that has the official
distribution's metadata (a ``autumn_sdk-1.2.0.dist-info`` folder, exactly what pip leaves) is made
with ``PYTHONPATH``; each package is imported in a fresh interpreter, as a user's program would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT_PACKAGES = ["autumn_sdk", "autumn_handlers", "reference_server", "autumn_cli"]


def _import(package: str, extra_path: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    paths = [str(extra_path)] if extra_path is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO_ROOT)])
    return subprocess.run(
        [sys.executable, "-c", f"import {package}"], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def official_installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    dist_info = site / "autumn_sdk-1.2.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: autumn-sdk\nVersion: 1.2.0\n")
    return site


@pytest.mark.parametrize("package", KIT_PACKAGES)
def test_each_kit_package_refuses_to_import_beside_the_official_sdk(
    package: str, official_installed: Path
) -> None:
    result = _import(package, official_installed)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()
    message = result.stderr[result.stderr.index("autumn_kit.MixedInstallError") :]
    assert "autumn-kit" in message and "autumn-sdk 1.2.0" in message, last
    assert "pip uninstall -y autumn-sdk && pip install --force-reinstall --no-deps autumn-kit" in message


@pytest.mark.parametrize("package", KIT_PACKAGES)
def test_each_kit_package_imports_alone(package: str) -> None:
    result = _import(package, None)
    assert result.returncode == 0, result.stderr
