"""The codegen tests generate once per session: every test reads the same fresh output."""

from __future__ import annotations

from pathlib import Path

import pytest
from codegen_specs import spec_documents

from codegen.cli import generate_into
from codegen.spec import DEFAULT_SPECS


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``autumn_sdk/_generated`` as regenerated from the vendored specs, once for the session."""
    out = tmp_path_factory.mktemp("generated")
    generate_into(out, DEFAULT_SPECS, spec_documents())
    return out
