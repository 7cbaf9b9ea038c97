"""Billing controls: spend limits, usage alerts, the limit-reached signal and auto top-ups.

The core applies the controls inside check/track; this module decides the parts that produce money or
webhooks: which alerts a track crossed, whether it moved the subject from allowed to blocked (and why),
and whether an auto top-up is due and what it costs. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .invoice import InvoiceDraft, LineItem, LineKind
from .model import PlanItem
from .money import exact_minor, round_half_up, to_decimal
from .periods import Interval, add_months, boundary
from .pricing import price_units, round_up_to_units

AUTO_TOPUP_COOLDOWN_MS = 30_000
LIMIT_EPSILON = Decimal("0.0000001")


@dataclass(frozen=True)
class SpendLimit:
    feature_id: str
    overage_limit: Decimal
    enabled: bool = True
    percent: bool = False  # limit_type "usage_percentage": a percent of the main-plan allowance

    def cap(self, main_allowance: Decimal) -> Decimal | None:
        """The cap in units; a percent limit without a main-plan allowance caps nothing (Autumn)."""
        if not self.percent:
            return self.overage_limit
        return self.overage_limit / 100 * main_allowance if main_allowance > 0 else None


@dataclass(frozen=True)
class UsageAlert:
    threshold: Decimal
    threshold_type: str
    feature_id: str | None = None
    enabled: bool = True
    name: str | None = None

    def as_payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"threshold": _number(self.threshold), "threshold_type": self.threshold_type}
        if self.name is not None:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class PurchaseLimit:
    interval: Interval
    limit: int
    interval_count: int = 1


@dataclass(frozen=True)
class AutoTopup:
    feature_id: str
    threshold: Decimal
    quantity: Decimal
    enabled: bool = False
    purchase_limit: PurchaseLimit | None = None
    invoice_mode: bool = False


@dataclass(frozen=True)
class OverageAllowed:
    feature_id: str
    enabled: bool


@dataclass(frozen=True)
class BillingControls:
    spend_limits: tuple[SpendLimit, ...] = ()
    usage_alerts: tuple[UsageAlert, ...] = ()
    auto_topups: tuple[AutoTopup, ...] = ()
    overage_allowed: tuple[OverageAllowed, ...] = ()

    def spend_limit_for(self, feature_id: str) -> SpendLimit | None:
        for limit in self.spend_limits:
            if limit.feature_id == feature_id and limit.enabled:
                return limit
        return None

    def overage_for(self, feature_id: str) -> bool | None:
        for entry in self.overage_allowed:
            if entry.feature_id == feature_id:
                return entry.enabled
        return None

    def alerts_for(self, feature_id: str) -> tuple[UsageAlert, ...]:
        return tuple(
            a for a in self.usage_alerts if a.enabled and (a.feature_id is None or a.feature_id == feature_id)
        )

    def auto_topup_for(self, feature_id: str) -> AutoTopup | None:
        for rule in self.auto_topups:
            if rule.feature_id == feature_id and rule.enabled:
                return rule
        return None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def controls_from_api(raw: Mapping[str, Any] | None) -> BillingControls:
    """Parse a ``billing_controls`` object as the API stores it."""
    raw = raw or {}
    return BillingControls(
        spend_limits=tuple(
            SpendLimit(
                str(s["feature_id"]),
                to_decimal(s.get("overage_limit") or 0),
                bool(s.get("enabled", True)),
                s.get("limit_type") == "usage_percentage",
            )
            for s in raw.get("spend_limits") or ()
            if s.get("feature_id")
        ),
        usage_alerts=tuple(
            UsageAlert(
                threshold=to_decimal(a["threshold"]),
                threshold_type=str(a.get("threshold_type") or "usage"),
                feature_id=a.get("feature_id"),
                enabled=bool(a.get("enabled", True)),
                name=a.get("name"),
            )
            for a in raw.get("usage_alerts") or ()
        ),
        auto_topups=tuple(
            AutoTopup(
                feature_id=str(t["feature_id"]),
                threshold=to_decimal(t["threshold"]),
                quantity=to_decimal(t["quantity"]),
                enabled=bool(t.get("enabled", False)),
                purchase_limit=PurchaseLimit(
                    Interval(t["purchase_limit"]["interval"]),
                    int(t["purchase_limit"]["limit"]),
                    int(t["purchase_limit"].get("interval_count") or 1),
                )
                if t.get("purchase_limit")
                else None,
                invoice_mode=bool(t.get("invoice_mode", False)),
            )
            for t in raw.get("auto_topups") or ()
        ),
        overage_allowed=tuple(
            OverageAllowed(str(o["feature_id"]), bool(o.get("enabled", False)))
            for o in raw.get("overage_allowed") or ()
            if o.get("feature_id")
        ),
    )


def resolve_controls(
    entity: BillingControls | None,
    customer: BillingControls | None,
    plan_defaults: Sequence[BillingControls] = (),
) -> BillingControls:
    """Effective controls: an entity entry beats a customer entry beats plan defaults, per feature.

    Among several plans defining the same control the most restrictive wins: the lowest spend limit and
    a disabled overage over an enabled one.
    """
    merged_plans = _most_restrictive(plan_defaults)
    layers = [layer for layer in (entity, customer) if layer is not None]
    result = merged_plans
    for layer in reversed(layers):  # customer first, then the entity on top
        result = BillingControls(
            spend_limits=_override(result.spend_limits, layer.spend_limits),
            usage_alerts=_override_alerts(result.usage_alerts, layer.usage_alerts),
            auto_topups=_override(result.auto_topups, layer.auto_topups),
            overage_allowed=_override(result.overage_allowed, layer.overage_allowed),
        )
    return result


def _override(base: tuple[Any, ...], top: tuple[Any, ...]) -> tuple[Any, ...]:
    features = {entry.feature_id for entry in top}
    return tuple(top) + tuple(entry for entry in base if entry.feature_id not in features)


def _override_alerts(base: tuple[UsageAlert, ...], top: tuple[UsageAlert, ...]) -> tuple[UsageAlert, ...]:
    if any(a.feature_id is None for a in top):
        return top
    features = {a.feature_id for a in top}
    return top + tuple(a for a in base if a.feature_id is not None and a.feature_id not in features)


def _most_restrictive(plans: Sequence[BillingControls]) -> BillingControls:
    limits: dict[str, SpendLimit] = {}
    overage: dict[str, OverageAllowed] = {}
    alerts: list[UsageAlert] = []
    topups: dict[str, AutoTopup] = {}
    for controls in plans:
        for limit in controls.spend_limits:
            if not limit.enabled:
                continue
            known = limits.get(limit.feature_id)
            if known is None or limit.overage_limit < known.overage_limit:
                limits[limit.feature_id] = limit
        for entry in controls.overage_allowed:
            if entry.feature_id not in overage or not entry.enabled:
                overage[entry.feature_id] = entry
        alerts.extend(controls.usage_alerts)
        for rule in controls.auto_topups:
            topups.setdefault(rule.feature_id, rule)
    return BillingControls(
        tuple(limits.values()), tuple(alerts), tuple(topups.values()), tuple(overage.values())
    )


@dataclass(frozen=True)
class BalanceState:
    """The aggregated balance of one feature for a subject, before or after a track."""

    granted: Decimal
    remaining: Decimal
    usage: Decimal
    unlimited: bool = False


def _alert_value(state: BalanceState, threshold_type: str) -> Decimal | None:
    if threshold_type == "usage":
        return state.usage
    if threshold_type == "remaining":
        return state.remaining
    if state.granted <= 0:
        return None
    if threshold_type == "usage_percentage":
        return state.usage / state.granted * 100
    if threshold_type == "remaining_percentage":
        return state.remaining / state.granted * 100
    raise ValueError(f"unknown threshold_type {threshold_type!r}")


def crossed_alerts(
    alerts: Sequence[UsageAlert], before: BalanceState, after: BalanceState
) -> list[UsageAlert]:
    """Alerts whose threshold this change crossed (once per crossing; never for unlimited balances).

    Usage thresholds fire going up (old < t <= new); remaining thresholds fire going down (old > t >= new).
    """
    if before.unlimited or after.unlimited:
        return []
    fired = []
    for alert in alerts:
        if not alert.enabled:
            continue
        old, new = _alert_value(before, alert.threshold_type), _alert_value(after, alert.threshold_type)
        if old is None or new is None:
            continue
        t = alert.threshold
        if alert.threshold_type.startswith("usage"):
            if old < t <= new:
                fired.append(alert)
        elif old > t >= new:
            fired.append(alert)
    return fired


@dataclass(frozen=True)
class Allowance:
    """What limits a subject's use of a feature (the inputs of the check decision)."""

    remaining: Decimal
    unlimited: bool = False
    pay_per_use: bool = False
    overage_control: bool | None = None
    spend_limit: Decimal | None = None
    max_purchase_total: Decimal | None = None
    current_overage: Decimal = Decimal(0)


def blocked_reason(state: Allowance, required: Decimal = LIMIT_EPSILON) -> str | None:
    """None if ``required`` units are allowed, else why not (the ``limit_type``)."""
    if state.unlimited or state.remaining >= required:
        return None
    if state.overage_control is False:
        return "included"
    if not (state.pay_per_use or state.overage_control is True):
        return "included"
    if state.spend_limit is not None:
        available = max(Decimal(0), state.spend_limit - state.current_overage)
        return None if state.remaining + available >= required else "spend_limit"
    if state.max_purchase_total is not None:
        available = max(Decimal(0), state.max_purchase_total - state.current_overage)
        return None if state.remaining + available >= required else "max_purchase"
    return None


def limit_reached(before: Allowance, after: Allowance) -> str | None:
    """The ``limit_type`` when a change moved the subject from allowed to blocked, else None."""
    if blocked_reason(before) is not None:
        return None
    return blocked_reason(after)


@dataclass(frozen=True)
class TopupPurchase:
    """An auto top-up to buy now."""

    feature_id: str
    packs: int
    units: Decimal
    invoice: InvoiceDraft


def _window_start(limit: PurchaseLimit, now: int) -> int:
    if limit.interval is Interval.MONTH:
        return add_months(now, -limit.interval_count)
    return boundary(now, limit.interval, limit.interval_count, -1)


def auto_topup_due(
    rule: AutoTopup | None,
    item: PlanItem | None,
    remaining: Decimal,
    now: int,
    history: Sequence[int],
    has_payment_method: bool,
    plan_id: str,
    currency: str = "usd",
    counted: tuple[int, int] | None = None,
) -> TopupPurchase | None:
    """Whether a top-up must be bought now and what it costs.

    It needs an enabled rule, a one-off prepaid item for the feature on one of the customer's plans and a
    payment method; it fires when the total remaining is at or below the threshold, at most once per 30 s
    and at most ``purchase_limit.limit`` times per window.

    ``counted`` is a ``purchase_limit.count`` set through the API, as (count, set at): that many
    top-ups count as bought at that time, and the purchases before it no longer count.
    """
    if rule is None or not rule.enabled or item is None or item.price is None or not item.prepaid:
        return None
    if item.price.recurring or not has_payment_method or remaining > rule.threshold:
        return None
    if history and now - max(history) < AUTO_TOPUP_COOLDOWN_MS:
        return None
    if rule.purchase_limit is not None:
        start = _window_start(rule.purchase_limit, now)
        bought = sum(1 for at in history if at > start)
        if counted is not None:
            count, set_at = counted
            # a purchase at the very time of the set came after it (the set was an earlier request)
            bought = (count if set_at > start else 0) + sum(
                1 for at in history if at > start and at >= set_at
            )
        if bought >= rule.purchase_limit.limit:
            return None
    units = round_up_to_units(rule.quantity, item.price.billing_units)
    packs = int(units / item.price.billing_units)
    cost = price_units(item.price, item.included, units)
    line = LineItem(
        kind=LineKind.PREPAID,
        display_name=item.display_name,
        description=f"Auto top-up: {units.normalize():f} {item.display_name}",
        amount=round_half_up(exact_minor(cost, currency)),
        plan_id=plan_id,
        feature_id=item.feature_id,
        quantity=units,
    )
    return TopupPurchase(item.feature_id, packs, units, InvoiceDraft((line,), currency))
