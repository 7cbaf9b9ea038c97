"""The official ``autumn-sdk`` 1.2.0, from PyPI, calls every operation it shares with this server.

The SDK goes into its own virtualenv (session-scoped, under pytest's temporary directory), never
ours: both distributions install the import package ``autumn_sdk``. ``official_calls.py``, run by that
virtualenv's interpreter, calls each operation through the official client against the reference
server (real HTTP, a free port, SQLite and PostgreSQL) and reports per call; the official client
parses each response with its own models, and the script checks the response is the model the
method declares and holds the values the call must produce. One test case per operation.

The operations: those of spec/autumn-2026-08-22.yml the official SDK has, plus those it has beyond the
spec that this server serves or refuses by design (``SERVER_OPERATIONS_BEYOND_SPEC``). Those of Autumn's
cloud that neither the spec nor this server has (``NOT_SERVED``, empty since every one is served or
refused) would only be listed; ``licenses.list`` and ``licenses.list_assignments`` of the spec are missing
from the official SDK.

Our own SDK is held to the official one's surface here too: every official operation is a method of
our ``Autumn`` and ``AsyncAutumn`` under its name, taking all of its keyword arguments, and
``spec/autumn-sdk-1.2.0-operations.yml`` describes exactly the official operations beyond Autumn's spec
and, under ``x-official-arguments``, the official arguments of the spec's operations beyond it.

The official 1.2.0 wheel has an import bug: its ``autumn_sdk.features`` sub-SDK fails to import
(``models/createfeatureop.py`` and ``updatefeatureop.py`` name classes before defining them), so the
script loads those two model modules with their statements in dependency order before using it
(``official_calls.bind_around_feature_models``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from autumn_sdk import AsyncAutumn, Autumn
from autumn_sdk._generated.operations import OPERATIONS
from codegen.overlay import OFFICIAL_ARGUMENTS_KEY
from codegen.spec import DEFAULT_SPECS, SPEC_DIR, load_spec, read_vendored
from reference_server.testing import fresh_database_url, run_server

from .official_calls import NOT_SERVED, SERVER_OPERATIONS_BEYOND_SPEC, call_names
from .official_venv import OfficialSdk, create_official_sdk

OFFICIAL_OPERATIONS_SPEC = SPEC_DIR / "autumn-sdk-1.2.0-operations.yml"
UNUSED_KEY = "am_sk_test_" + "x" * 40
UNUSED_URL = "http://127.0.0.1:9"
"""A client only inspected, never sent through."""

SPEC_OPERATIONS_MISSING_FROM_OFFICIAL_SDK = frozenset({"/v1/licenses.list", "/v1/licenses.list_assignments"})

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def official_sdk(tmp_path_factory: pytest.TempPathFactory) -> OfficialSdk:
    return create_official_sdk(tmp_path_factory.mktemp("official-autumn-sdk") / "venv")


@pytest.fixture(scope="session")
def inventory(official_sdk: OfficialSdk) -> dict[str, str]:
    return official_sdk.inventory()


@pytest.fixture(scope="module", params=DATABASES)
def reports(request: pytest.FixtureRequest, official_sdk: OfficialSdk) -> Iterator[dict[str, dict[str, Any]]]:
    """Every call's report, from one run of the script against a fresh server on that database."""
    with fresh_database_url(request.param) as url, run_server(url) as server:
        lines = official_sdk.call_all(server.url, server.secret_key)
    yield {line["name"]: line for line in lines}


def _spec_paths() -> set[str]:
    spec = load_spec(DEFAULT_SPECS[0])
    return {path for path, item in spec.data["paths"].items() if "post" in item}


def test_the_calls_cover_every_official_operation(inventory: dict[str, str]) -> None:
    """Each official operation is called or listed as unserved; the spec's are all called."""
    called = set(call_names())
    assert len(called) == len(call_names())
    assert called.isdisjoint(NOT_SERVED)
    assert called | set(NOT_SERVED) == set(inventory)
    spec_paths = _spec_paths()
    called_paths = {inventory[name] for name in called}
    assert spec_paths - called_paths == SPEC_OPERATIONS_MISSING_FROM_OFFICIAL_SDK
    assert {name for name in called if inventory[name] not in spec_paths} == set(
        SERVER_OPERATIONS_BEYOND_SPEC
    )
    assert not {inventory[name] for name in NOT_SERVED} & spec_paths


def test_our_sdk_has_every_official_method_with_its_arguments(official_sdk: OfficialSdk) -> None:
    """Each official operation is a method of our ``Autumn`` and ``AsyncAutumn`` under the same name, taking
    every keyword argument the official one takes and requiring none it may omit (issue 12, item 4)."""
    official = official_sdk.signatures()
    assert len(official) == len(call_names())
    clients: list[Autumn | AsyncAutumn] = [
        Autumn(secret_key=UNUSED_KEY, server_url=UNUSED_URL),
        AsyncAutumn(secret_key=UNUSED_KEY, server_url=UNUSED_URL),
    ]
    for name, arguments in official.items():
        for client in clients:
            method: Any = client
            for part in name.split("."):
                method = getattr(method, part)
            parameters = [
                p
                for p in inspect.signature(method).parameters.values()
                if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            ]
            ours = {p.name for p in parameters}
            required = {p.name for p in parameters if p.default is inspect.Parameter.empty}
            where = f"{type(client).__name__}.{name}"
            # Every official call is one of ours: no argument missing, none required that it may omit
            # (ours may take more: the current spec's newer fields such as track's ``lock``).
            assert (set(arguments["required"]) | set(arguments["optional"])) <= ours, where
            assert required <= set(arguments["required"]), where


def test_the_spec_of_the_official_operations_beyond_autumns_describes_exactly_them(
    inventory: dict[str, str],
) -> None:
    document = load_spec(OFFICIAL_OPERATIONS_SPEC)
    paths = {path for path, item in document.data["paths"].items() if "post" in item}
    assert paths == {inventory[name] for name in SERVER_OPERATIONS_BEYOND_SPEC}
    ours = {op.path: op.qualified_name for op in OPERATIONS}
    assert {ours[inventory[name]] for name in SERVER_OPERATIONS_BEYOND_SPEC} == set(
        SERVER_OPERATIONS_BEYOND_SPEC
    )
    # The official arguments beyond Autumn's spec are of operations of that spec, none it describes.
    arguments = document.data[OFFICIAL_ARGUMENTS_KEY]
    spec = load_spec(DEFAULT_SPECS[0]).data["paths"]
    assert set(arguments) <= _spec_paths() - paths
    with DEFAULT_SPECS[0].open(encoding="utf-8") as handle:
        published = yaml.safe_load(handle)["paths"]
    for path, fields in arguments.items():
        body = published[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert not set(fields) & set(body["properties"]), path
        widened = spec[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(fields) <= set(widened["properties"]), path


def test_the_vendored_document_is_what_the_official_sdk_derives(official_sdk: OfficialSdk) -> None:
    """spec/autumn-sdk-1.2.0-operations.yml is exactly ``codegen/official_operations.py``'s output."""
    assert official_sdk.derived_spec() == read_vendored(OFFICIAL_OPERATIONS_SPEC)


def test_the_virtualenv_is_the_official_one(official_sdk: OfficialSdk, inventory: dict[str, str]) -> None:
    """The SDK the calls use is PyPI's 1.2.0 in its own environment, not this kit's ``autumn_sdk``."""
    assert official_sdk.python.is_file()
    assert official_sdk.python.parent.parent.name == "venv"
    assert inventory["sandboxes.create"] == "/v1/sandboxes.create"  # only the official SDK has it


@pytest.mark.parametrize("operation", call_names())
def test_official_sdk_operation(operation: str, reports: dict[str, dict[str, Any]]) -> None:
    report = reports[operation]
    seed_errors = reports["(seed)"]["errors"]
    context = f"\n(seed failures: {seed_errors})" if seed_errors else ""
    assert report["ok"], f"{operation}: {report['error']}{context}"
