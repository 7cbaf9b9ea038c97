"""Every operation declares its whole policy once (codegen/policy.py), and every consumer reads it."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, get_args

import pytest

from autumn_cli import catalog as cli_catalog
from autumn_handlers.routes import ROUTES
from autumn_sdk._fail_open import FAIL_OPEN_OPERATIONS
from autumn_sdk._generated import operations as ops
from autumn_sdk._operation import Operation
from codegen.policy import POLICIES, Policy, RateLimitGroup, TimeoutClass, policy_for
from reference_server.api.endpoints import ASYNC_SERVICES
from reference_server.api.ratelimit import DEFAULT_LIMITS
from reference_server.api.router import HOT_PATHS

POLICY_FIELDS = [f.name for f in dataclasses.fields(Operation) if f.kw_only]

BEYOND_SPEC = [
    cli_catalog.CATALOG_INTERNAL_IDS,
    cli_catalog.ORGANIZATIONS_CURRENT,
    cli_catalog.TEST_CLOCKS_ADVANCE,
    cli_catalog.CUSTOMERS_ADVANCE_TEST_CLOCK,
]
"""Operations beyond the spec that have an ``Operation`` entry (the CLI's)."""


def _valid(name: str, value: Any) -> bool:
    if name == "writes_when":
        return isinstance(value, tuple) and all(isinstance(v, str) and v for v in value)
    if name == "timeout_class":
        return value in get_args(TimeoutClass)
    if name == "rate_limit_group":
        return value in get_args(RateLimitGroup)
    if name == "handler_route":
        return value is None or (isinstance(value, str) and bool(value))
    return isinstance(value, bool)


def test_policy_fields_are_the_declared_ones() -> None:
    assert POLICY_FIELDS == [
        "read_only",
        "writes_when",
        "fail_open",
        "timeout_class",
        "rate_limit_group",
        "locks_customer",
        "hot_path",
        "long_read",
        "handler_route",
        "handler_fail_open",
        "handler_requires_customer",
    ]


@pytest.mark.parametrize("op", [*ops.OPERATIONS, *BEYOND_SPEC], ids=lambda op: op.qualified_name)
def test_every_operation_declares_its_whole_policy(op: Operation) -> None:
    for name in POLICY_FIELDS:
        assert _valid(name, getattr(op, name)), f"{op.qualified_name}: {name}={getattr(op, name)!r}"
    if op.writes_when:
        assert op.read_only, f"{op.qualified_name}: writes_when only qualifies a read-only call"
    if op.handler_route is None:
        assert not op.handler_fail_open and not op.handler_requires_customer


def test_the_policy_file_covers_exactly_the_spec_operations() -> None:
    assert set(POLICIES) == {op.qualified_name for op in ops.OPERATIONS}
    assert all(isinstance(policy, Policy) for policy in POLICIES.values())


def test_a_missing_or_unknown_operation_fails_generation() -> None:
    names = [op.qualified_name for op in ops.OPERATIONS]
    with pytest.raises(ValueError, match=re.escape("missing ['customers.frobnicate']")):
        policy_for([*names, "customers.frobnicate"])
    with pytest.raises(ValueError, match=re.escape("not in the specs ['check']")):
        policy_for([name for name in names if name != "check"])


def test_consumers_read_the_table() -> None:
    # SDK: a safe default exists for exactly the fail-open operations.
    assert {op.qualified_name for op in ops.OPERATIONS if op.fail_open} == FAIL_OPEN_OPERATIONS
    # Handlers: one route per operation naming one.
    assert {name: route.operation for name, route in ROUTES.items()} == {
        op.handler_route: op for op in ops.OPERATIONS if op.handler_route is not None
    }
    # Server: every rate-limit group has a limit; hot paths have an event-loop fast path.
    assert {op.rate_limit_group for op in ops.OPERATIONS} <= set(DEFAULT_LIMITS)
    assert {op.path for op in ops.OPERATIONS if op.hot_path} == HOT_PATHS
    assert set(ASYNC_SERVICES) == {op for op in ops.OPERATIONS if op.hot_path}
