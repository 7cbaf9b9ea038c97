"""Schemathesis over the vendored specs against the real server over HTTP, on SQLite and PostgreSQL.

Every operation of ``spec/autumn-2026-08-22.yml``, ``spec/platform.yaml`` and
``spec/autumn-sdk-1.2.0-operations.yml`` (run last: its ``sandboxes.reset`` empties the seeded
environment) gets a fixed number
of generated requests (schema-valid and schema-violating bodies and queries, derandomized so CI
repeats the same run) with a valid secret key against a server seeded with ``--demo``'s catalogue
and customer (plus an entity), and the ids the spec generates are swapped for those seeded ones
half of the time so that requests get past 404s.  Each response must pass schemathesis' own checks:
no 5xx (``not_a_server_error``), a documented status (``status_code_conformance``), a documented
content type and a body matching the documented schema (``response_schema_conformance``).

One decision about the specs, beyond the suite's existing ones: Autumn's spec documents only its
success responses, and the platform spec some of its errors; every error the server (like Autumn)
answers is ``{message, code, env}``.  :func:`with_error_responses` adds that error JSON as the ``4XX``
response of every operation, so a 400 for a bad body or a 409 for a duplicate is conformant while
its shape is still checked; a status the spec documents keeps its own schema
(the platform API's 400/403/404 ``ErrorResponse`` with its closed ``code`` enum).  A 5xx is never
documented: it fails ``not_a_server_error``.
"""

from __future__ import annotations

import collections
import copy
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from reference_server.demo import DEMO_CUSTOMER_ID
from reference_server.testing import RunningServer, fresh_database_url, run_server
from tests.spec_conformance import (
    AUTUMN_ERROR,
    AUTUMN_SPEC,
    OFFICIAL_SDK_SPEC,
    PLATFORM_PREFIX,
    PLATFORM_SPEC,
    load_spec,
    unchecked_servers,
)

from .helpers import DB_KINDS, require_postgres

pytestmark = pytest.mark.conformance

MAX_EXAMPLES = 12
"""Hypothesis examples per operation in the fuzzing phase.  With the explicit examples and the
deterministic coverage phase (boundaries, wrong types, NUL, huge numbers, unexpected methods) this
makes about 11,000 requests per database, about 80 s of CPU each."""

ENTITY_ID = "seat_1"
SEEDED_IDS: dict[str, list[str]] = {
    "customer_id": [DEMO_CUSTOMER_ID],
    "feature_id": ["messages", "credits", "seats", "analytics", "ai_actions"],
    "plan_id": ["free", "pro"],
    "entity_id": [ENTITY_ID],
}
"""Body fields (at any depth) whose generated values the fuzzing phase replaces, half of the time,
by ids the server has (the coverage phase's deterministic cases keep theirs)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


NO_CACHE = SchemathesisConfig.from_dict({"cache": {"enabled": False}})


def with_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """The spec with Autumn's error JSON as each operation's ``4XX`` (documented statuses keep theirs)."""
    document = copy.deepcopy(document)
    error = {"description": "Autumn error", "content": {"application/json": {"schema": AUTUMN_ERROR}}}
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["responses"].setdefault("4XX", error)
    return document


def _schema(path: Path) -> Any:
    document = with_error_responses(load_spec(path))
    if path == PLATFORM_SPEC:
        document["servers"] = [{"url": PLATFORM_PREFIX}]
    # no crash cache (.schemathesis/): every run, here and in CI, generates the same requests
    schema = schemathesis.openapi.from_dict(document, config=NO_CACHE)
    schema.hook(before_generate_body)
    return schema


def _with_seeded_ids(value: Any) -> st.SearchStrategy[Any]:
    """``value`` with every string id field (at any depth) set to one of the seeded ids."""
    if isinstance(value, dict):
        return st.fixed_dictionaries(
            {
                key: st.sampled_from(SEEDED_IDS[key])
                if key in SEEDED_IDS and isinstance(item, str)
                else _with_seeded_ids(item)
                for key, item in value.items()
            }
        )
    if isinstance(value, list):
        return st.tuples(*(_with_seeded_ids(item) for item in value)).map(list)
    return st.just(value)


def _seeded_body(body: Any) -> st.SearchStrategy[Any]:
    """The generated body, or (half of the time) it with its id fields set to seeded ids."""
    return st.one_of(st.just(body), _with_seeded_ids(body))


def before_generate_body(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Schemathesis hook (named after it): bodies with seeded ids mixed in."""
    return strategy.flatmap(_seeded_body)


AUTUMN = _schema(AUTUMN_SPEC)
PLATFORM = _schema(PLATFORM_SPEC)
OFFICIAL = _schema(OFFICIAL_SDK_SPEC)


def _seed(server: RunningServer) -> None:
    """``--demo`` seeded the catalogue and the customer; add an entity so entity operations find one."""
    r = httpx.post(
        server.url + "/v1/entities.create",
        headers=server.headers,
        json={"customer_id": DEMO_CUSTOMER_ID, "entity_id": ENTITY_ID, "feature_id": "seats", "name": "Seat"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module", params=DB_KINDS)
def seeded_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    if request.param == "postgres":
        require_postgres()
    # schemathesis' own checks judge these responses: the suite's spec-checking wrapper stays off
    with unchecked_servers(), fresh_database_url(request.param) as url, run_server(url, demo=True) as server:
        _seed(server)
        yield server
        statuses = STATUSES.pop(server.url, collections.Counter())
        print(f"\nschemathesis on {request.param}: {statuses.total()} requests, statuses {dict(statuses)}")


@functools.cache
def _session() -> Any:
    import requests

    return requests.Session()


STATUSES: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
"""Statuses answered per server URL (printed when the server stops: ``pytest -s`` shows them)."""


def _call(case: Case[Any], server: RunningServer) -> None:
    base = server.url + (PLATFORM_PREFIX if case.operation.schema is PLATFORM else "")
    response = case.call_and_validate(
        base_url=base, session=_session(), headers=server.headers, checks=CHECKS
    )
    STATUSES[server.url][response.status_code] += 1


_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


_TestFunction = Callable[..., None]
autumn_operations = cast(Callable[[_TestFunction], _TestFunction], AUTUMN.parametrize())
platform_operations = cast(Callable[[_TestFunction], _TestFunction], PLATFORM.parametrize())
official_operations = cast(Callable[[_TestFunction], _TestFunction], OFFICIAL.parametrize())


@autumn_operations
@_SETTINGS
def test_autumn_api_conforms(case: Case[Any], seeded_server: RunningServer) -> None:
    _call(case, seeded_server)


@platform_operations
@_SETTINGS
def test_platform_api_conforms(case: Case[Any], seeded_server: RunningServer) -> None:
    _call(case, seeded_server)


@official_operations
@_SETTINGS
def test_official_sdk_operations_conform(case: Case[Any], seeded_server: RunningServer) -> None:
    """The official SDK's operations beyond Autumn's spec (spec/autumn-sdk-1.2.0-operations.yml); last,
    since ``sandboxes.reset`` empties the seeded environment."""
    _call(case, seeded_server)
