"""Fixtures for the reference server suite: one server per database kind per module, one org per test.

Every test gets its own organization (created through the platform API), so tests share a server
without sharing a catalogue.  Every success body is parsed with the operation's generated model, and
every response of every server these tests start is validated against the spec itself
(:mod:`tests.spec_conformance`): a test that receives a response breaking the spec fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, fresh_database_url, run_server
from tests.spec_conformance import spec_checked_run_server, spec_conformant_responses

from .helpers import DB_KINDS, Api, new_org_key, require_postgres

__all__ = ["spec_checked_run_server", "spec_conformant_responses"]


@pytest.fixture(scope="module", params=DB_KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, ManualClock]]:
    if request.param == "postgres":
        require_postgres()
    clock = ManualClock(1_767_225_600_000)  # 2026-01-01T00:00:00Z
    with fresh_database_url(request.param) as url, run_server(url, clock=clock) as srv:
        yield srv, clock


@pytest.fixture
def api(server: tuple[RunningServer, ManualClock]) -> Iterator[Api]:
    srv, clock = server
    client = Api(srv, new_org_key(srv), clock)
    yield client
    client.http.close()
