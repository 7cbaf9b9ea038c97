"""The pure engine (no I/O): calendar math, deduction passes with prices and limits, the check decision.

Scenarios that need priced sources (C3, T8, S1, S2) are decided here directly: attaching priced
plans belongs to the paid-billing module, but the balance rules are the engine's.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from reference_server.engine.balances import derive_balance
from reference_server.engine.check import metered_allowed
from reference_server.engine.deduction import InsufficientBalance, Target, deduct, order_targets
from reference_server.engine.entitlements import Controls, Feature, Rollover, Source
from reference_server.engine.intervals import add_months, next_boundary_after
from reference_server.engine.resets import apply_due_resets

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
MESSAGES = Feature(id="messages", name="Messages", type="metered", consumable=True)


def ms(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp() * 1000)


def source(
    pk: int = 1,
    *,
    included: float = 100,
    interval: str | None = "month",
    usage_based: bool = False,
    max_purchase: float | None = None,
    price: bool = False,
    **kw: object,
) -> Source:
    values: dict[str, object] = dict(
        pk=pk,
        id=f"s{pk}",
        feature_id="messages",
        plan_id="p",
        customer_plan_pk=1,
        entity_pk=None,
        entity_id=None,
        is_flag=False,
        allowance=included,
        adjustment=0.0,
        prepaid=0.0,
        balance=included,
        unlimited=False,
        usage_allowed=usage_based,
        max_purchase=max_purchase,
        interval=interval,
        interval_count=1,
        anchor_at=NOW,
        next_reset_at=next_boundary_after(NOW, interval, 1, NOW)
        if interval not in (None, "one_off")
        else None,
        expires_at=None,
        rollover_config=None,
        price={
            "amount": 0.5,
            "billing_method": "usage_based" if usage_based else "prepaid",
            "billing_units": 1,
            "max_purchase": max_purchase,
        }
        if (price or usage_based)
        else None,
        is_addon=False,
        continuous=False,
        created_at=NOW,
    )
    values.update(kw)
    return Source(**values)  # type: ignore[arg-type]


def test_month_arithmetic_never_drifts() -> None:
    anchor = ms(2026, 1, 31)
    assert add_months(anchor, 1) == ms(2026, 2, 28)
    assert add_months(anchor, 2) == ms(2026, 3, 31)
    first = next_boundary_after(anchor, "month", 1, anchor)
    assert first == ms(2026, 2, 28)
    assert next_boundary_after(anchor, "month", 1, first) == ms(2026, 3, 31)
    assert next_boundary_after(anchor, "quarter", 1, anchor + 100 * DAY) == ms(2026, 7, 31)
    assert next_boundary_after(anchor, "day", 1, anchor + DAY // 2) == anchor + DAY
    assert next_boundary_after(anchor, "week", 2, anchor) == anchor + 14 * DAY


def test_c3_usage_based_within_max_purchase() -> None:
    s = source(usage_based=True, max_purchase=400)
    assert metered_allowed([s], 500, None, NOW) is True
    assert metered_allowed([s], 501, None, NOW) is False
    bal = derive_balance(MESSAGES, [s], NOW)
    assert bal is not None
    assert (bal["granted"], bal["remaining"], bal["usage"], bal["overage_allowed"], bal["max_purchase"]) == (
        100,
        100,
        0,
        True,
        400,
    )


def test_t8_usage_based_goes_negative_and_stays_allowed() -> None:
    s = source(usage_based=True)
    deduct([Target(s, 1, True)], 200, {}, NOW)
    bal = derive_balance(MESSAGES, [s], NOW)
    assert bal is not None and (bal["granted"], bal["remaining"], bal["usage"]) == (100, 0, 200)
    assert metered_allowed([s], 1, None, NOW) is True


def test_max_purchase_caps_overage_and_reject_changes_nothing() -> None:
    s = source(usage_based=True, max_purchase=50)
    res = deduct([Target(s, 1, True)], 500, {}, NOW)
    assert res.applied == 150 and s.balance == -50
    with pytest.raises(InsufficientBalance):
        deduct([Target(s, 1, True)], 1, {}, NOW, "reject")
    assert s.balance == -50


def test_s1_spend_limit_overrides_max_purchase() -> None:
    lifetime = source(1, included=1000, interval="one_off")
    monthly = source(2, included=100, usage_based=True, max_purchase=300)
    controls = {"messages": Controls(spend_limit=25)}
    targets = order_targets([Target(lifetime, 1, True), Target(monthly, 1, True)], None)
    deduct(targets, 1120, controls, NOW)
    deduct(targets, 10, controls, NOW)
    bal = derive_balance(MESSAGES, [lifetime, monthly], NOW)
    assert bal is not None and (bal["granted"], bal["remaining"], bal["usage"], bal["max_purchase"]) == (
        1100,
        0,
        1125,
        300,
    )
    with pytest.raises(InsufficientBalance):
        deduct(targets, 1, controls, NOW, "reject")
    assert metered_allowed([lifetime, monthly], 1, controls["messages"], NOW) is False


def test_s2_overage_control_with_spend_limit() -> None:
    s = source(usage_based=True)
    controls = {"messages": Controls(overage_allowed=True, spend_limit=25)}
    deduct([Target(s, 1, True)], 130, controls, NOW)
    deduct([Target(s, 1, True)], 10, controls, NOW)
    assert (s.usage, max(0.0, s.balance)) == (125, 0)


def test_overage_control_disabled_blocks_usage_based() -> None:
    s = source(usage_based=True)
    deduct([Target(s, 1, True)], 150, {"messages": Controls(overage_allowed=False)}, NOW)
    assert s.usage == 100
    assert metered_allowed([s], 1, Controls(overage_allowed=False), NOW) is False


def test_r2_rollovers_drain_first_oldest_first() -> None:
    s = source(included=400, rollover_config={"max": 1000})
    s.rollovers = [
        Rollover("old", 100, 0, NOW + 10 * DAY, NOW - 60 * DAY),
        Rollover("new", 400, 0, NOW + 40 * DAY, NOW - 30 * DAY),
    ]
    res = deduct([Target(s, 1, True)], 150, {}, NOW)
    assert [(r.id, r.balance) for r in s.rollovers] == [("old", 0), ("new", 350)]
    assert s.balance == 400 and [d["balance_id"] for d in res.deductions] == ["old", "new"]


def test_reset_rolls_over_and_respects_max_percentage() -> None:
    s = source(included=400, rollover_config={"max_percentage": 25, "expiry_duration_type": "forever"})
    s.balance = 300
    assert s.next_reset_at is not None
    apply_due_resets([s], s.next_reset_at + 1)
    assert s.balance == 400 and [r.balance for r in s.rollovers] == [100]
    assert s.rollovers[0].expires_at is None


def test_refund_never_exceeds_grant_and_fills_overage_first() -> None:
    a = source(1, included=10, interval="day")
    b = source(2, included=10, usage_based=True)
    targets = order_targets([Target(b, 1, True), Target(a, 1, True)], None)
    deduct(targets, 25, {}, NOW)
    assert (a.balance, b.balance) == (0, -5)
    deduct(targets, -8, {}, NOW)
    assert (a.balance, b.balance) == (3, 0) or (a.balance, b.balance) == (0, 3)
    deduct(targets, -100, {}, NOW)
    assert (a.balance, b.balance) == (10, 10)


def test_credit_costs_convert_units() -> None:
    own = source(1, included=10)
    credits = source(2, included=100)
    credits.feature_id = "credits"
    res = deduct([Target(own, 1, True), Target(credits, 0.2, False)], 15, {}, NOW)
    assert own.balance == 0 and credits.balance == 99
    assert [d["value"] for d in res.deductions] == [10, 1]
