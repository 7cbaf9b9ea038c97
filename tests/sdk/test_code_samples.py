"""Every ``x-codeSamples`` Python snippet of the May 2026 spec runs unchanged against this SDK.

(The current spec's snippets: test_code_samples_current.py.)

The snippets construct ``Autumn(secret_key="am_sk_test...")`` without a URL, so they reach the
server named by ``AUTUMN_URL``. Two servers answer them:

- the reference server (fresh SQLite, its key in place of the placeholder), with the world the
  snippets assume built by ``reference_seed.py``; each result is checked for the values that
  snippet's call must produce;
- the local stub (``stub_server.py``) serving the spec's own examples, which checks that every
  documented example parses into the operation's response model.

Each snippet also runs on ``AsyncAutumn``, rewritten only so its call is awaited.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from autumn_sdk import Autumn
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation
from autumn_sdk.errors import AutumnError, BadRequestError
from reference_server.testing import RunningServer, run_server

from .reference_seed import ARRANGE, seed_sample_world
from .spec_samples import MAY_SPEC_PATH, CodeSample, python_code_samples, spec
from .stub_server import serve


def _run_order(samples: list[CodeSample]) -> list[CodeSample]:
    """Spec order, moved where one stateful server needs it.

    Previews run before the attach they preview (afterwards the plan would already be attached),
    the schedule after attach/multi_attach (its past phases activate pro_plan, which billing.update
    then changes), and customers.delete last so later snippets still find cus_123.
    """
    position = {s.operation_id: float(i) for i, s in enumerate(samples)}
    position["previewAttach"] = position["attach"] - 0.2
    position["previewMultiAttach"] = position["attach"] - 0.1
    position["createSchedule"] = position["multiAttach"] + 0.5
    position["deleteCustomer"] = float("inf")
    return sorted(samples, key=lambda s: position[s.operation_id])


SAMPLES = _run_order(python_code_samples(MAY_SPEC_PATH))
OPS_BY_PATH = {op.path: op for op in OPERATIONS}


SAMPLE_KEY = "am_sk_test..."


@dataclass(frozen=True)
class Target:
    url: str
    secret_key: str
    client: str
    """``"Autumn"`` (the snippet as written) or ``"AsyncAutumn"`` (the snippet with its call awaited)."""
    server: RunningServer | None = None
    """The reference server, or None for the stub."""

    def prepare(self, source: str) -> str:
        return source.replace(f'secret_key="{SAMPLE_KEY}"', f'secret_key="{self.secret_key}"')


TARGETS = [("reference", "Autumn"), ("reference", "AsyncAutumn"), ("stub", "Autumn"), ("stub", "AsyncAutumn")]


@pytest.fixture(scope="module", params=TARGETS, ids=["-".join(t) for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A server per target and client flavour, so a stateful server sees each snippet sequence once."""
    kind, client = request.param
    if kind == "reference":
        with run_server() as server, Autumn(server.secret_key, server_url=server.url) as autumn:
            seed_sample_world(server, autumn)
            yield Target(server.url, server.secret_key, client, server)
    else:
        with serve() as url:
            yield Target(url, SAMPLE_KEY, client)


@pytest.fixture
def autumn_env(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("AUTUMN_URL", target.url)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")  # a broken sample must fail, not fail open
    return target


def assert_equal(actual: object, expected: object) -> None:
    assert actual == expected


def _expect_attach_redirects(res: Any) -> None:
    # cus_123 has no payment method, so paid plans go through checkout first.
    assert res.customer_id == "cus_123"
    assert res.payment_url and "/checkout/" in res.payment_url


def _expect_update_quantity(res: Any) -> None:
    assert res.customer_id == "cus_123"
    assert res.invoice is not None and res.invoice.total > 0  # the 5 extra seats, prorated
    assert res.required_action is not None and res.required_action.code == "payment_method_required"


def _expect_preview_multi(res: Any) -> None:
    assert [(li.plan_id, li.quantity) for li in res.line_items] == [("pro_plan", 1), ("addon_seats", 5)]
    assert res.total == 15 + 5 * 5


def _expect_preview_update(res: Any) -> None:
    assert [inc.feature_quantities[0].quantity for inc in res.incoming] == [15]
    assert res.next_cycle.total == 15 + 10 * 5  # base price + the 10 seats bought beyond the 5 included


def _expect_entity(res: Any) -> None:
    assert (res.id, res.customer_id, res.feature_id) == ("seat_42", "cus_123", "seats")
    assert res.balances["seats"].usage == 1  # the entity takes one seat


def _expect_success(res: Any) -> None:
    assert res.success is True


EXPECT: dict[str, Callable[[Any], None]] = {
    "getOrCreateCustomer": lambda res: assert_equal(
        (res.id, res.name, res.email), ("cus_123", "John Doe", "john@example.com")
    ),
    "getCustomer": lambda res: assert_equal(
        (res.id, res.name, res.subscriptions), ("cus_123", "John Doe", [])
    ),
    "listCustomers": lambda res: assert_equal({c.id for c in res.list}, {"cus_123", "cus_456"}),
    "updateCustomer": lambda res: assert_equal((res.name, res.email), ("Jane Doe", "jane@example.com")),
    "deleteCustomer": _expect_success,
    "createPlan": lambda res: assert_equal(
        (res.id, res.auto_enable, [(i.feature_id, i.included) for i in res.items]),
        ("free_plan", True, [("messages", 100)]),
    ),
    "getPlan": lambda res: assert_equal((res.id, res.price.amount, len(res.items)), ("pro_plan", 10, 2)),
    "listPlans": lambda res: assert_equal(
        {p.id for p in res.list}, {"pro_plan", "trial_plan", "addon_seats", "unused_plan", "free_plan"}
    ),
    "updatePlan": lambda res: assert_equal((res.name, res.price.amount), ("Pro Plan (Updated)", 15)),
    "deletePlan": _expect_success,
    "createFeature": lambda res: assert_equal(
        (res.id, res.type, res.consumable), ("api-calls", "metered", True)
    ),
    "getFeature": lambda res: assert_equal((res.id, res.name), ("api-calls", "API Calls")),
    "listFeatures": lambda res: assert_equal(
        {f.id for f in res.list}, {"messages", "api_calls", "seats", "old-feature", "api-calls"}
    ),
    "updateFeature": lambda res: assert_equal(
        (res.name, res.display.singular, res.display.plural), ("API Requests", "API request", "API requests")
    ),
    "deleteFeature": _expect_success,
    "previewAttach": lambda res: assert_equal(
        (res.customer_id, res.total, res.redirect_to_checkout), ("cus_123", 15, True)
    ),
    "previewMultiAttach": _expect_preview_multi,
    "attach": _expect_attach_redirects,
    "multiAttach": _expect_attach_redirects,
    "createSchedule": lambda res: assert_equal(
        (res.status, [p.starts_at for p in res.phases]), ("created", [1735689600000, 1736899200000])
    ),
    "billingUpdate": _expect_update_quantity,
    "previewUpdate": _expect_preview_update,
    "openCustomerPortal": lambda res: assert_equal(
        (res.customer_id, "/portal/" in res.url), ("cus_123", True)
    ),
    "setupPayment": lambda res: assert_equal((res.customer_id, "/setup/" in res.url), ("cus_123", True)),
    "updateBalance": _expect_success,
    "deleteBalance": _expect_success,
    "finalizeLock": _expect_success,
    # The lock above reserved 3 messages out of pro_plan's 1000 and finalize confirmed them.
    "check": lambda res: assert_equal(
        (res.allowed, res.balance.granted, res.balance.remaining), (True, 1000, 997)
    ),
    "track": lambda res: assert_equal((res.value, res.balance.remaining), (1, 996)),
    "listEvents": lambda res: assert_equal(
        [(e.feature_id, e.value) for e in res.list], [("messages", 1), ("messages", 3)]
    ),
    "aggregateEvents": lambda res: assert_equal(
        (len(res.list) >= 30, {k for p in res.list for k in p.values}), (True, {"api_calls"})
    ),
    "createEntity": _expect_entity,
    "getEntity": _expect_entity,
    "listEntities": lambda res: assert_equal([e.id for e in res.list], ["seat_42"]),
    "updateEntity": lambda res: assert_equal(
        [(s.feature_id, s.overage_limit) for s in res.billing_controls.spend_limits], [("messages", 25)]
    ),
    "deleteEntity": _expect_success,
    "createReferralCode": lambda res: assert_equal((res.code, res.customer_id), ("REF123", "cus_123")),
    "redeemReferralCode": lambda res: assert_equal(
        (res.customer_id, res.reward_id, res.referrer["id"]), ("cus_456", "referral_messages", "cus_123")
    ),
    "redeemRewardCode": lambda res: assert_equal(
        (res.reward_id, [(g.feature_id, g.balance) for g in res.entitlements_granted]),
        ("reward_10", [("api_calls", 10)]),
    ),
}
"""What each snippet's call must return on the reference server, given the seed and the snippets before it."""

REJECTED_AS_AUTUMN_DOES: dict[str, tuple[type[AutumnError], str]] = {
    # The snippet sends neither included_grant nor unlimited; Autumn's create-balance validation
    # requires one of them for a metered feature, and so does the reference server.
    "createBalance": (BadRequestError, "included_grant or unlimited"),
}


class _AwaitTheCall(ast.NodeTransformer):
    """``from autumn_sdk import Autumn`` -> ``AsyncAutumn as Autumn``; ``res = call`` -> ``await``."""

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        node.names = [ast.alias("AsyncAutumn", "Autumn") if a.name == "Autumn" else a for a in node.names]
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.Assign:
        targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if targets == ["res"]:
            node.value = ast.Await(node.value)
        return node


def _as_async(source: str) -> str:
    tree = _AwaitTheCall().visit(ast.parse(source))
    body = ast.unparse(tree).replace("\n", "\n        ")
    return (
        f"async def _sample():\n    try:\n        {body}\n"
        "    finally:\n        await autumn.aclose()\n    return res\n"
    )


def _op(sample: CodeSample) -> Operation:
    return OPS_BY_PATH[sample.path]


async def _run(sample: CodeSample, target: Target) -> Any:
    """The snippet's ``res``, run as written (``Autumn``) or awaited (``AsyncAutumn``)."""
    namespace: dict[str, Any] = {}
    if target.client == "Autumn":
        try:
            exec(compile(target.prepare(sample.source), f"<sample {sample.operation_id}>", "exec"), namespace)
        finally:
            if "autumn" in namespace:
                namespace["autumn"].close()
        assert namespace["autumn"].base_url == target.url
        return namespace["res"]
    source = _as_async(target.prepare(sample.source))
    exec(compile(source, f"<async sample {sample.operation_id}>", "exec"), namespace)
    return await namespace["_sample"]()


def test_every_spec_path_has_a_python_sample() -> None:
    sampled = {s.path for s in SAMPLES}
    assert len(SAMPLES) == 40
    assert sampled == set(spec(MAY_SPEC_PATH)["paths"])
    assert sampled <= {op.path for op in OPERATIONS if op.api == "v1"}
    assert set(EXPECT) | set(REJECTED_AS_AUTUMN_DOES) == {s.operation_id for s in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.operation_id for s in SAMPLES])
async def test_sample_runs_unchanged(sample: CodeSample, autumn_env: Target) -> None:
    op = _op(sample)
    assert op.response_model is not None
    server = autumn_env.server
    if server is None:  # the stub: the spec's example must parse into the response model
        assert isinstance(await _run(sample, autumn_env), op.response_model)
        return
    arrange = ARRANGE.get(sample.operation_id)
    if arrange is not None:
        with Autumn(server.secret_key, server_url=server.url) as autumn:
            arrange(server, autumn)
    if sample.operation_id in REJECTED_AS_AUTUMN_DOES:
        error_class, message = REJECTED_AS_AUTUMN_DOES[sample.operation_id]
        with pytest.raises(error_class, match=message):
            await _run(sample, autumn_env)
        return
    result = await _run(sample, autumn_env)
    assert isinstance(result, op.response_model)
    EXPECT[sample.operation_id](result)
