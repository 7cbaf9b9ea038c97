"""Fixtures of the ``autumn`` command's tests: a module-wide server on SQLite and PostgreSQL, and a
:class:`~tests.cli.helpers.Cli` for a new organization on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_server.testing import RunningServer, fresh_database_url, postgres_available, run_server

from .helpers import Cli, new_key


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    if request.param == "postgres" and not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must be available on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not available")
    with fresh_database_url(request.param) as url, run_server(url) as srv:
        yield srv


@pytest.fixture
def cli(server: RunningServer, tmp_path: Path) -> Iterator[Cli]:
    c = Cli(server, new_key(server), tmp_path)
    yield c
    c.client.close()
