"""Running the spec's Python ``x-codeSamples`` snippets unchanged: the servers they run against
(:class:`Target`), the ``AsyncAutumn`` rewrite, and what each May 2026 snippet must return on the
reference server (shared by test_code_samples.py and test_code_samples_current.py).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autumn_sdk.errors import AutumnError, BadRequestError
from reference_server.testing import RunningServer

from .spec_samples import CodeSample

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
        (res.customer_id, res.reward_id, res.referrer.id), ("cus_456", "referral_messages", "cus_123")
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


async def run_sample(sample: CodeSample, target: Target) -> Any:
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
