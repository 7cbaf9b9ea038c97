"""The line items a quote is made of: fixed prices in full or for the time left, usage beyond what is
included (in arrears, or up front for seats), prepaid quantities and quantity changes.

Each line is rounded once, half up, from the exact amount (:mod:`.money`); the quotes and
:mod:`.seats` compose these lines into what is due now and at the next cycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .errors import BillingRuleError
from .invoice import LineItem, LineKind, UsageLine
from .model import BasePrice, Plan, PlanItem, Subscription
from .money import exact_minor, round_half_up
from .periods import Interval, Period, boundary, period_at, period_index
from .pricing import overage_cost, overage_units, prepaid_cost, prepaid_units

_ZERO = Decimal(0)


def date_label(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def minor(exact_major: Decimal, currency: str) -> int:
    return round_half_up(exact_minor(exact_major, currency))


def prorated_minor(
    exact_major: Decimal, period: Period, at: int, currency: str, until: int | None = None
) -> int:
    """Share of a full-period amount for the time left in ``period`` at ``at`` (up to ``until`` when the
    subscription ends inside the period), rounded once."""
    if period.length <= 0:
        return 0
    left = (
        period.remaining_at(at) if until is None else max(0, min(until, period.end) - max(at, period.start))
    )
    share = exact_minor(exact_major, currency) * Decimal(left) / Decimal(period.length)
    return round_half_up(share)


@dataclass(frozen=True)
class _FixedCharge:
    """A fixed (up-front) price of a plan at given quantities, before time scaling."""

    kind: LineKind
    display_name: str
    feature_id: str | None
    quantity: Decimal
    amount: Decimal
    interval: Interval
    interval_count: int


def resolve_quantities(
    plan: Plan,
    requested: Mapping[str, Decimal] | None,
    previous: Subscription | None = None,
) -> dict[str, Decimal]:
    """Prepaid quantities for ``plan``: requested, else the previous plan's recurring quantity, else 0."""
    requested = requested or {}
    unknown = [fid for fid in requested if (item := plan.item_for(fid)) is None or not item.prepaid]
    if unknown:
        raise BillingRuleError(
            f"feature_quantities: {', '.join(sorted(unknown))} is not a prepaid feature of plan {plan.id}",
            code="invalid_inputs",
        )
    resolved: dict[str, Decimal] = {}
    for item in plan.items:
        if not item.prepaid or item.price is None:
            continue
        if item.feature_id in requested:
            quantity = requested[item.feature_id]
        elif previous is not None and item.price.recurring:
            quantity = previous.prepaid_quantities.get(item.feature_id, item.included)
        else:
            quantity = item.included
        if quantity < 0:
            raise BillingRuleError("feature_quantities: quantity must be at least 0", code="invalid_inputs")
        if item.price.max_purchase is not None and prepaid_units(item, quantity) > item.price.max_purchase:
            raise BillingRuleError(
                f"Quantity for {item.feature_id} exceeds max_purchase of {item.price.max_purchase}"
            )
        resolved[item.feature_id] = quantity
    return resolved


def _fixed_charges(plan: Plan, quantities: Mapping[str, Decimal], plan_quantity: int) -> list[_FixedCharge]:
    charges: list[_FixedCharge] = []
    if plan.price is not None:
        base: BasePrice = plan.price
        charges.append(
            _FixedCharge(
                LineKind.BASE,
                plan.name,
                None,
                Decimal(plan_quantity),
                base.amount * plan_quantity,
                base.interval,
                base.interval_count,
            )
        )
    for item in plan.items:
        if not item.prepaid or item.price is None:
            continue
        quantity = quantities.get(item.feature_id, item.included)
        units = prepaid_units(item, quantity)
        if units <= 0:
            continue
        charges.append(
            _FixedCharge(
                LineKind.PREPAID,
                item.display_name,
                item.feature_id,
                units,
                prepaid_cost(item, quantity),
                item.price.interval,
                item.price.interval_count,
            )
        )
    return charges


def _full_line(plan: Plan, charge: _FixedCharge, period: Period | None) -> LineItem:
    if charge.kind is LineKind.BASE:
        description = f"{plan.name} base price"
    else:
        description = f"{plan.name}: {charge.quantity.normalize():f} {charge.display_name}"
    if period is not None:
        description += f" ({date_label(period.start)} to {date_label(period.end)})"
    return LineItem(
        kind=charge.kind,
        display_name=charge.display_name,
        description=description,
        amount=minor(charge.amount, plan.currency),
        plan_id=plan.id,
        feature_id=charge.feature_id,
        quantity=charge.quantity,
        period=period,
    )


def one_off_lines(plan: Plan, quantities: Mapping[str, Decimal], plan_quantity: int = 1) -> list[LineItem]:
    """One-time prices of ``plan``, charged in full when it is attached."""
    return [
        _full_line(plan, charge, None)
        for charge in _fixed_charges(plan, quantities, plan_quantity)
        if charge.interval is Interval.ONE_OFF
    ]


def recurring_lines(
    plan: Plan, quantities: Mapping[str, Decimal], anchor: int, at: int, plan_quantity: int = 1
) -> list[LineItem]:
    """Full recurring fixed prices for the period (anchored at ``anchor``) that contains ``at``."""
    lines = []
    for charge in _fixed_charges(plan, quantities, plan_quantity):
        if charge.interval is Interval.ONE_OFF:
            continue
        lines.append(_full_line(plan, charge, period_at(anchor, at, charge.interval, charge.interval_count)))
    return lines


def backdated_lines(
    plan: Plan, quantities: Mapping[str, Decimal], anchor: int, now: int, plan_quantity: int = 1
) -> list[LineItem]:
    """A subscription backdated to ``anchor``: each recurring fixed price in full for every one of its
    periods from ``anchor`` up to the one containing ``now`` (one line per period, as Stripe does)."""
    lines = []
    for charge in _fixed_charges(plan, quantities, plan_quantity):
        if charge.interval is Interval.ONE_OFF:
            continue
        last = period_index(anchor, now, charge.interval, charge.interval_count)
        for k in range(last + 1):
            start = boundary(anchor, charge.interval, charge.interval_count, k)
            end = boundary(anchor, charge.interval, charge.interval_count, k + 1)
            lines.append(_full_line(plan, charge, Period(start, end)))
    return lines


def time_scaled_lines(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    anchor: int,
    at: int,
    plan_quantity: int,
    credit: bool,
    until: int | None = None,
) -> list[LineItem]:
    """Remaining-time charges (or unused-time credits) of the recurring fixed prices at ``at`` (the time
    up to ``until`` only, for a subscription that ends inside the period)."""
    lines = []
    for charge in _fixed_charges(plan, quantities, plan_quantity):
        if charge.interval is Interval.ONE_OFF:
            continue
        period = period_at(anchor, at, charge.interval, charge.interval_count)
        amount = prorated_minor(charge.amount, period, at, plan.currency, until)
        if amount == 0:
            continue
        verb = "Unused time on" if credit else "Remaining time on"
        label = plan.name if charge.kind is LineKind.BASE else f"{plan.name} {charge.display_name}"
        lines.append(
            LineItem(
                kind=LineKind.UNUSED_TIME if credit else LineKind.REMAINING_TIME,
                display_name=charge.display_name,
                description=f"{verb} {label} after {date_label(at)}",
                amount=-amount if credit else amount,
                plan_id=plan.id,
                feature_id=charge.feature_id,
                quantity=charge.quantity,
                period=Period(max(at, period.start), period.end),
            )
        )
    return lines


def _overage_lines(subscription: Subscription, period: Period | None, continuous: bool) -> list[LineItem]:
    """A line per usage-based item (continuous ones or the others) for its units beyond ``included``."""
    plan = subscription.plan
    lines = []
    for item in plan.items:
        if not item.usage_based or item.price is None or item.continuous is not continuous:
            continue
        usage = subscription.usage.get(item.feature_id, _ZERO)
        over = overage_units(item, usage)
        if over <= 0:
            continue
        lines.append(
            LineItem(
                kind=LineKind.USAGE,
                display_name=item.display_name,
                description=f"{plan.name}: {over.normalize():f} {item.display_name} beyond "
                f"{item.included.normalize():f} included",
                amount=minor(overage_cost(item, usage), plan.currency),
                plan_id=plan.id,
                feature_id=item.feature_id,
                quantity=over,
                period=period,
            )
        )
    return lines


def usage_charge_lines(subscription: Subscription, period: Period | None) -> list[LineItem]:
    """Overage of the usage-based items, billed in arrears at the subscription's plan rates.

    Continuous items (seats) are not here: they are billed up front (:func:`seat_lines`).
    """
    return _overage_lines(subscription, period, continuous=False)


def seat_lines(subscription: Subscription, period: Period | None) -> list[LineItem]:
    """Units in use of continuous usage-based items beyond ``included``, billed up front for ``period``."""
    return _overage_lines(subscription, period, continuous=True)


def _seat_subscription(plan: Plan, anchor: int, seat_usage: Mapping[str, Decimal]) -> Subscription:
    """A stand-in subscription carrying ``seat_usage`` (units in use per continuous feature)."""
    return Subscription(plan=plan, anchor=anchor, started_at=anchor, usage=dict(seat_usage))


def seat_lines_for(
    plan: Plan, seat_usage: Mapping[str, Decimal] | None, anchor: int, period: Period | None
) -> list[LineItem]:
    """:func:`seat_lines` of ``plan`` with ``seat_usage`` units in use: what a renewal bills up front."""
    if not seat_usage:
        return []
    return seat_lines(_seat_subscription(plan, anchor, seat_usage), period)


def _seat_items(plan: Plan) -> list[PlanItem]:
    return [
        item
        for item in plan.items
        if item.continuous and item.usage_based and item.price is not None and item.price.recurring
    ]


def seat_time_lines(
    plan: Plan,
    seat_usage: Mapping[str, Decimal] | None,
    anchor: int,
    at: int,
    credit: bool,
    until: int | None = None,
) -> list[LineItem]:
    """Seats beyond ``included`` for the time left in their period at ``at``, rounded once per line.

    ``credit`` gives back the unused time of seats paid up front (a plan switched or cancelled mid-period),
    otherwise it charges the remaining time (the seats a new plan takes over mid-period). The same share
    of the period as the base price (:func:`time_scaled_lines`).
    """
    lines: list[LineItem] = []
    for item in _seat_items(plan):
        assert item.price is not None
        usage = (seat_usage or {}).get(item.feature_id, _ZERO)
        over = overage_units(item, usage)
        cost = overage_cost(item, usage) if over > 0 else _ZERO
        if cost == 0:
            continue
        period = period_at(anchor, at, item.price.interval, item.price.interval_count)
        amount = prorated_minor(cost, period, at, plan.currency, until)
        if amount == 0:
            continue
        verb = "Unused time on" if credit else "Remaining time on"
        lines.append(
            LineItem(
                kind=LineKind.UNUSED_TIME if credit else LineKind.REMAINING_TIME,
                display_name=item.display_name,
                description=f"{verb} {plan.name}: {over.normalize():f} {item.display_name} beyond "
                f"{item.included.normalize():f} included after {date_label(at)}",
                amount=-amount if credit else amount,
                plan_id=plan.id,
                feature_id=item.feature_id,
                quantity=over,
                period=Period(max(at, period.start), period.end),
            )
        )
    return lines


def usage_line_stubs(plan: Plan, period: Period | None) -> tuple[UsageLine, ...]:
    """The usage-based items that will be metered during ``period`` (for ``next_cycle.usage_line_items``)."""
    return tuple(
        UsageLine(item.display_name, plan.id, item.feature_id, period)
        for item in plan.items
        if item.usage_based
    )


def quantity_line(
    plan: Plan, item: PlanItem, amount: int, old: Decimal, new: Decimal, period: Period | None, when: str
) -> LineItem:
    return LineItem(
        kind=LineKind.QUANTITY_CHANGE,
        display_name=item.display_name,
        description=f"{plan.name}: {item.display_name} {old.normalize():f} -> {new.normalize():f} ({when})",
        amount=amount,
        plan_id=plan.id,
        feature_id=item.feature_id,
        quantity=new - old,
        period=period,
    )
