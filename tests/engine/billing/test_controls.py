"""Billing controls: resolution, usage alerts, limit reached and auto top-ups."""

from __future__ import annotations

from decimal import Decimal

from reference_server.engine.billing import Interval, ItemPrice, PlanItem
from reference_server.engine.billing.controls import (
    Allowance,
    BalanceState,
    auto_topup_due,
    blocked_reason,
    controls_from_api,
    crossed_alerts,
    limit_reached,
    resolve_controls,
)
from reference_server.engine.billing.model import BillingMethod

D = Decimal
NOW = 1_800_000_000_000


def test_entity_overrides_customer_overrides_plan_and_plans_take_the_strictest() -> None:
    plan_a = controls_from_api({"spend_limits": [{"feature_id": "m", "enabled": True, "overage_limit": 50}]})
    plan_b = controls_from_api(
        {
            "spend_limits": [{"feature_id": "m", "enabled": True, "overage_limit": 20}],
            "overage_allowed": [{"feature_id": "x", "enabled": False}],
        }
    )
    customer = controls_from_api({"overage_allowed": [{"feature_id": "x", "enabled": True}]})
    entity = controls_from_api({"spend_limits": [{"feature_id": "m", "enabled": True, "overage_limit": 99}]})
    plans_only = resolve_controls(None, None, [plan_a, plan_b])
    assert plans_only.spend_limit_for("m") is not None
    assert plans_only.spend_limit_for("m").overage_limit == 20  # type: ignore[union-attr]
    assert plans_only.overage_for("x") is False
    resolved = resolve_controls(entity, customer, [plan_a, plan_b])
    assert resolved.spend_limit_for("m").overage_limit == 99  # type: ignore[union-attr]
    assert resolved.overage_for("x") is True


def test_disabled_spend_limits_do_not_apply() -> None:
    controls = controls_from_api(
        {"spend_limits": [{"feature_id": "m", "enabled": False, "overage_limit": 1}]}
    )
    assert controls.spend_limit_for("m") is None


def state(usage: int, granted: int = 100) -> BalanceState:
    return BalanceState(D(granted), D(max(0, granted - usage)), D(usage))


def test_usage_alerts_fire_once_per_crossing() -> None:
    alerts = controls_from_api(
        {
            "usage_alerts": [
                {"feature_id": "m", "threshold": 80, "threshold_type": "usage_percentage", "name": "80%"},
                {"feature_id": "m", "threshold": 50, "threshold_type": "usage"},
                {"feature_id": "m", "threshold": 10, "threshold_type": "remaining"},
                {"feature_id": "m", "threshold": 5, "threshold_type": "remaining_percentage"},
                {"feature_id": "m", "threshold": 1, "threshold_type": "usage", "enabled": False},
            ]
        }
    ).alerts_for("m")
    fired = crossed_alerts(alerts, state(40), state(85))
    assert [(a.threshold_type, a.threshold) for a in fired] == [("usage_percentage", 80), ("usage", 50)]
    assert fired[0].as_payload() == {"threshold": 80, "threshold_type": "usage_percentage", "name": "80%"}
    assert crossed_alerts(alerts, state(85), state(88)) == []  # already past: no re-fire
    fired = crossed_alerts(alerts, state(88), state(96))
    assert [a.threshold_type for a in fired] == ["remaining", "remaining_percentage"]
    # Moving back (a refund) re-arms: crossing up again fires again.
    assert crossed_alerts(alerts, state(85), state(70)) == []
    assert [a.threshold for a in crossed_alerts(alerts, state(70), state(81))] == [80]


def test_no_alerts_for_unlimited_or_zero_grants() -> None:
    alerts = controls_from_api({"usage_alerts": [{"threshold": 50, "threshold_type": "usage_percentage"}]})
    unlimited = BalanceState(D(0), D(0), D(10), unlimited=True)
    assert crossed_alerts(alerts.usage_alerts, unlimited, unlimited) == []
    assert crossed_alerts(alerts.usage_alerts, state(0, granted=0), state(5, granted=0)) == []


def test_limit_reached_reports_why_and_only_on_the_transition() -> None:
    before = Allowance(remaining=D(3))
    after = Allowance(remaining=D(0))
    assert limit_reached(before, after) == "included"
    assert limit_reached(after, after) is None
    pay = Allowance(D(0), pay_per_use=True, max_purchase_total=D(300), current_overage=D(300))
    assert blocked_reason(pay) == "max_purchase"
    capped = Allowance(D(0), pay_per_use=True, spend_limit=D(25), current_overage=D(25))
    assert blocked_reason(capped) == "spend_limit"
    assert blocked_reason(Allowance(D(0), pay_per_use=True)) is None
    assert blocked_reason(Allowance(D(0), pay_per_use=True, overage_control=False)) == "included"
    assert (
        blocked_reason(Allowance(D(0), overage_control=True, spend_limit=D(25), current_overage=D(5))) is None
    )


TOPUP_ITEM = PlanItem(
    "credits",
    "Credits",
    price=ItemPrice(Interval.ONE_OFF, BillingMethod.PREPAID, amount=D(5), billing_units=D(100)),
)


def topup_rule(**extra: object) -> object:
    raw = {"feature_id": "credits", "enabled": True, "threshold": 20, "quantity": 250, **extra}
    return controls_from_api({"auto_topups": [raw]}).auto_topup_for("credits")


def test_auto_topup_buys_whole_packs_when_at_or_below_threshold() -> None:
    rule = topup_rule()
    purchase = auto_topup_due(rule, TOPUP_ITEM, D(20), NOW, [], True, "pro")  # type: ignore[arg-type]
    assert purchase is not None
    assert (purchase.packs, purchase.units, purchase.invoice.total) == (3, 300, 1500)
    assert auto_topup_due(rule, TOPUP_ITEM, D(21), NOW, [], True, "pro") is None  # type: ignore[arg-type]


def test_auto_topup_needs_a_card_a_one_off_prepaid_item_and_respects_limits() -> None:
    rule = topup_rule(purchase_limit={"interval": "day", "limit": 2})
    args = (D(0), NOW)
    assert auto_topup_due(rule, TOPUP_ITEM, *args, [], False, "pro") is None  # type: ignore[arg-type]
    recurring = PlanItem(
        "credits", price=ItemPrice(Interval.MONTH, BillingMethod.PREPAID, amount=D(5), billing_units=D(100))
    )
    assert auto_topup_due(rule, recurring, *args, [], True, "pro") is None  # type: ignore[arg-type]
    assert auto_topup_due(rule, TOPUP_ITEM, *args, [NOW - 10_000], True, "pro") is None  # type: ignore[arg-type]
    two_today = [NOW - 3_600_000, NOW - 7_200_000]
    assert auto_topup_due(rule, TOPUP_ITEM, *args, two_today, True, "pro") is None  # type: ignore[arg-type]
    yesterday = [NOW - 90_000_000, NOW - 3_600_000]
    assert auto_topup_due(rule, TOPUP_ITEM, *args, yesterday, True, "pro") is not None  # type: ignore[arg-type]
    assert (
        controls_from_api(
            {"auto_topups": [{"feature_id": "c", "threshold": 1, "quantity": 1}]}
        ).auto_topup_for("c")
        is None
    )  # enabled defaults to false
