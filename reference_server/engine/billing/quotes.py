"""What an attach, update, cancel or renewal costs, as line items due now and at the next cycle.

Every entry point is pure: given plans, the current subscription and ``now`` it returns a quote. Previews
render a quote; the real call charges the same quote, so the two always agree to the cent.

Proration follows Autumn: an upgrade credits the unused time of the old fixed prices and charges the
remaining time of the new ones (each line rounded once, half up), bills outstanding usage at the old rate,
and keeps the billing anchor when the interval is unchanged. Downgrades wait for the period end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, LineKind, NextCycle, UsageLine
from .model import BasePrice, OnDecrease, OnIncrease, Plan, PlanItem, Subscription
from .money import exact_minor, round_half_up
from .periods import Interval, Period, add_interval, period_at
from .pricing import overage_cost, overage_units, prepaid_cost, prepaid_units
from .transitions import ChangeKind, classify
from .trials import TrialChoice

_ZERO = Decimal(0)

PRORATE_IMMEDIATELY = "prorate_immediately"
PRORATION_NONE = "none"


@dataclass(frozen=True)
class AttachQuote:
    """Result of pricing one plan attach."""

    kind: ChangeKind
    plan: Plan
    now: int
    due_now: InvoiceDraft
    next_cycle: NextCycle | None
    starts_at: int
    anchor: int | None
    period: Period | None
    trial_ends_at: int | None
    prepaid_quantities: Mapping[str, Decimal]
    outgoing_plan_id: str | None = None
    outgoing_ends_at: int | None = None

    @property
    def scheduled(self) -> bool:
        """The target plan starts later (a downgrade waiting for the period end)."""
        return self.starts_at > self.now

    @property
    def total(self) -> int:
        return self.due_now.total


@dataclass(frozen=True)
class CancelQuote:
    due_now: InvoiceDraft
    ends_at: int


@dataclass(frozen=True)
class QuantityQuote:
    """A prepaid quantity change on an existing subscription."""

    due_now: InvoiceDraft
    next_cycle: NextCycle | None
    prepaid_quantities: Mapping[str, Decimal]
    balance_deltas: Mapping[str, Decimal] = field(default_factory=dict)
    # ``*_next_cycle`` prorations, carried to the next renewal invoice (Stripe's pending invoice items).
    deferred: InvoiceDraft = field(default_factory=InvoiceDraft)

    @property
    def total(self) -> int:
        return self.due_now.total


@dataclass(frozen=True)
class SeatChangeQuote:
    """Units of a continuous usage-based item added or removed: what is due now, what waits for renewal."""

    due_now: InvoiceDraft
    deferred: InvoiceDraft

    @property
    def total(self) -> int:
        return self.due_now.total


@dataclass(frozen=True)
class RenewalQuote:
    """Invoice at a period boundary: arrears usage of the ended period plus the next period up front."""

    invoice: InvoiceDraft
    next_period: Period


def _date(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def _minor(exact_major: Decimal, currency: str) -> int:
    return round_half_up(exact_minor(exact_major, currency))


def _prorated_minor(exact_major: Decimal, period: Period, at: int, currency: str) -> int:
    """Share of a full-period amount for the time left in ``period`` at ``at``, rounded once."""
    if period.length <= 0:
        return 0
    share = exact_minor(exact_major, currency) * Decimal(period.remaining_at(at)) / Decimal(period.length)
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
        description += f" ({_date(period.start)} to {_date(period.end)})"
    return LineItem(
        kind=charge.kind,
        display_name=charge.display_name,
        description=description,
        amount=_minor(charge.amount, plan.currency),
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


def _time_scaled_lines(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    anchor: int,
    at: int,
    plan_quantity: int,
    credit: bool,
) -> list[LineItem]:
    """Remaining-time charges (or unused-time credits) of the recurring fixed prices at ``at``."""
    lines = []
    for charge in _fixed_charges(plan, quantities, plan_quantity):
        if charge.interval is Interval.ONE_OFF:
            continue
        period = period_at(anchor, at, charge.interval, charge.interval_count)
        amount = _prorated_minor(charge.amount, period, at, plan.currency)
        if amount == 0:
            continue
        verb = "Unused time on" if credit else "Remaining time on"
        label = plan.name if charge.kind is LineKind.BASE else f"{plan.name} {charge.display_name}"
        lines.append(
            LineItem(
                kind=LineKind.UNUSED_TIME if credit else LineKind.REMAINING_TIME,
                display_name=charge.display_name,
                description=f"{verb} {label} after {_date(at)}",
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
                amount=_minor(overage_cost(item, usage), plan.currency),
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
    plan: Plan, seat_usage: Mapping[str, Decimal] | None, anchor: int, at: int, credit: bool
) -> list[LineItem]:
    """Seats beyond ``included`` for the time left in their period at ``at``, rounded once per line.

    ``credit`` gives back the unused time of seats paid up front (a plan switched or cancelled mid-period),
    otherwise it charges the remaining time (the seats a new plan takes over mid-period). The same share
    of the period as the base price (:func:`_time_scaled_lines`).
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
        amount = _prorated_minor(cost, period, at, plan.currency)
        if amount == 0:
            continue
        verb = "Unused time on" if credit else "Remaining time on"
        lines.append(
            LineItem(
                kind=LineKind.UNUSED_TIME if credit else LineKind.REMAINING_TIME,
                display_name=item.display_name,
                description=f"{verb} {plan.name}: {over.normalize():f} {item.display_name} beyond "
                f"{item.included.normalize():f} included after {_date(at)}",
                amount=-amount if credit else amount,
                plan_id=plan.id,
                feature_id=item.feature_id,
                quantity=over,
                period=Period(max(at, period.start), period.end),
            )
        )
    return lines


@dataclass(frozen=True)
class SeatLevels:
    """A seat change seen through the released seats kept for reuse (Autumn's *replaceables*).

    ``old_paid``/``new_paid``: the units paid for in the period before and after the change (units in use
    plus the replaceables), what :func:`quote_seat_change` bills between; ``replaceables``: the released
    paid units kept after the change.
    """

    old_paid: Decimal
    new_paid: Decimal
    replaceables: Decimal


def keeps_replaceables(item: PlanItem) -> bool:
    """Released seats of this item are kept for reuse in their period: a continuous usage-based recurring
    price whose ``on_decrease`` is ``none`` (nothing credited). ``no_prorations`` keeps nothing."""
    return (
        item.continuous
        and item.usage_based
        and item.price is not None
        and item.price.recurring
        and item.proration.on_decrease is OnDecrease.NONE
    )


def _paid(item: PlanItem, usage: Decimal, replaceables: Decimal) -> Decimal:
    """Units paid for: those in use, or (with replaceables, always released beyond ``included``) the
    included ones, plus the replaceables."""
    return usage if replaceables <= 0 else max(usage, item.included) + replaceables


def seat_levels(
    item: PlanItem, old_usage: Decimal, new_usage: Decimal, replaceables: Decimal, trialing: bool
) -> SeatLevels:
    """Autumn's replaceables for an item with ``on_decrease: none``: a release of paid seats credits
    nothing, so those units stay paid until the period ends; re-adding seats in that period uses them
    first, for free, and only seats beyond them are charged. A trial keeps none (nothing is paid).
    Other items bill the units in use (``replaceables`` is 0 after the change).
    """
    if not keeps_replaceables(item) or trialing:
        return SeatLevels(old_usage, new_usage, _ZERO)
    old_over, new_over = overage_units(item, old_usage), overage_units(item, new_usage)
    if new_over < old_over:
        after = replaceables + old_over - new_over
    else:
        after = replaceables - min(replaceables, new_over - old_over)
    return SeatLevels(_paid(item, old_usage, replaceables), _paid(item, new_usage, after), after)


def quote_seat_change(
    subscription: Subscription, feature_id: str, old_usage: Decimal, new_usage: Decimal, now: int
) -> SeatChangeQuote:
    """Units of a continuous usage-based item added or removed mid-period (an entity created or deleted).

    The units in use are paid up front for the period, so a change is billed per the item's
    ``proration``: an increase is charged now, prorated (``prorate_immediately``, the default) or in
    full (``bill_immediately``); a decrease is credited for the unused time when it prorates
    (``prorate_immediately``), and not at all with ``none``/``no_prorations``.  ``prorate_next_cycle``
    puts the same prorated charge or credit on the next renewal invoice instead (``deferred``);
    ``bill_next_cycle`` bills nothing for the current period, the renewal then bills the units in use.
    Nothing is billed during a trial.
    """
    plan = subscription.plan
    nothing = SeatChangeQuote(InvoiceDraft((), plan.currency), InvoiceDraft((), plan.currency))
    item = plan.item_for(feature_id)
    if item is None or not item.continuous or not item.usage_based or item.price is None:
        return nothing
    cost_delta = overage_cost(item, new_usage) - overage_cost(item, old_usage)
    if cost_delta == 0 or subscription.trialing_at(now) or not item.price.recurring:
        return nothing
    old_q, new_q = overage_units(item, old_usage), overage_units(item, new_usage)
    period = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count)
    remaining = Period(max(now, period.start), period.end)
    prorated = _prorated_minor(cost_delta, period, now, plan.currency)
    due: LineItem | None = None
    deferred: LineItem | None = None
    if cost_delta > 0:
        mode = item.proration.on_increase
        if mode is OnIncrease.BILL_IMMEDIATELY:
            due = _quantity_line(
                plan, item, _minor(cost_delta, plan.currency), old_q, new_q, period, "billed now"
            )
        elif mode is OnIncrease.PRORATE_IMMEDIATELY:
            due = _quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated now")
        elif mode is OnIncrease.PRORATE_NEXT_CYCLE:
            deferred = _quantity_line(
                plan, item, prorated, old_q, new_q, remaining, "prorated on next invoice"
            )
    elif item.proration.on_decrease in (OnDecrease.PRORATE, OnDecrease.PRORATE_IMMEDIATELY):
        due = _quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited now")
    elif item.proration.on_decrease is OnDecrease.PRORATE_NEXT_CYCLE:
        deferred = _quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited on next invoice")
    return SeatChangeQuote(
        InvoiceDraft((due,) if due is not None else (), plan.currency),
        InvoiceDraft((deferred,) if deferred is not None else (), plan.currency),
    )


def usage_line_stubs(plan: Plan, period: Period | None) -> tuple[UsageLine, ...]:
    """The usage-based items that will be metered during ``period`` (for ``next_cycle.usage_line_items``)."""
    return tuple(
        UsageLine(item.display_name, plan.id, item.feature_id, period)
        for item in plan.items
        if item.usage_based
    )


def _current_period(subscription: Subscription) -> Period | None:
    if subscription.period_start is None or subscription.period_end is None:
        return None
    return Period(subscription.period_start, subscription.period_end)


def _next_cycle(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    anchor: int,
    period: Period,
    plan_quantity: int,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> NextCycle:
    """The renewal at ``period.end``: fixed prices plus the seats in use, as :func:`quote_renewal` bills."""
    lines = recurring_lines(plan, quantities, anchor, period.end, plan_quantity)
    interval = plan.billing_interval()
    next_period = None
    if interval is not None:
        next_period = period_at(anchor, period.end, interval[0], interval[1])
        lines += seat_lines_for(plan, seat_usage, anchor, next_period)
    return NextCycle(
        starts_at=period.end,
        invoice=InvoiceDraft(tuple(lines), plan.currency),
        usage_lines=usage_line_stubs(plan, next_period),
    )


def quote_new(
    plan: Plan,
    now: int,
    quantities: Mapping[str, Decimal] | None = None,
    trial: TrialChoice | None = None,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """A plan the customer does not replace anything with: a first plan, an add-on or a one-off.

    ``seat_usage``: units of continuous features already in use (entities, carried seats); a usage-based
    seat price bills those beyond ``included`` up front for the first period, as every renewal does.
    """
    resolved = resolve_quantities(plan, quantities)
    lines = one_off_lines(plan, resolved, plan_quantity)
    interval = plan.billing_interval()
    if interval is None:
        return AttachQuote(
            ChangeKind.NEW,
            plan,
            now,
            InvoiceDraft(tuple(lines), plan.currency),
            None,
            now,
            None,
            None,
            None,
            resolved,
        )
    if trial is not None:
        anchor = trial.ends_at
        period = Period(now, trial.ends_at)
        next_cycle = _next_cycle(plan, resolved, anchor, Period(now, anchor), plan_quantity, seat_usage)
    else:
        anchor = now
        lines += recurring_lines(plan, resolved, anchor, now, plan_quantity)
        period = Period(now, add_interval(now, *interval))
        lines += seat_lines_for(plan, seat_usage, anchor, period)
        next_cycle = _next_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    return AttachQuote(
        kind=ChangeKind.NEW,
        plan=plan,
        now=now,
        due_now=InvoiceDraft(tuple(lines), plan.currency),
        next_cycle=next_cycle,
        starts_at=now,
        anchor=anchor,
        period=period,
        trial_ends_at=trial.ends_at if trial else None,
        prepaid_quantities=resolved,
    )


def quote_upgrade(
    current: Subscription,
    plan: Plan,
    now: int,
    quantities: Mapping[str, Decimal] | None = None,
    trial: TrialChoice | None = None,
    proration_behavior: str = PRORATE_IMMEDIATELY,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """Immediate switch: credit unused old time, charge remaining new time, bill old usage now.

    Seats (continuous usage-based items) are paid up front like the base price, so they are credited and
    charged the same way: the old plan's seats in use for their unused time, the new plan's for the time
    left (``seat_usage``: the units in use the new plan takes over).
    """
    resolved = resolve_quantities(plan, quantities, previous=current)
    prorate = proration_behavior != PRORATION_NONE
    if not prorate and current.plan.is_free and not plan.is_free:
        raise BillingRuleError("proration_behavior 'none' cannot be used when upgrading from a free plan")
    old_trialing = current.trialing_at(now)
    old_period = _current_period(current)
    lines: list[LineItem] = []
    if not old_trialing:
        lines += usage_charge_lines(current, old_period)
        if prorate and old_period is not None:
            lines += _time_scaled_lines(
                current.plan, current.prepaid_quantities, current.anchor, now, current.quantity, credit=True
            )
            lines += seat_time_lines(current.plan, current.usage, current.anchor, now, credit=True)
    lines += one_off_lines(plan, resolved, plan_quantity)
    new_interval = plan.billing_interval()
    keep_anchor = (
        new_interval is not None
        and new_interval == current.plan.billing_interval()
        and old_period is not None
        and not old_trialing
        and trial is None
    )
    anchor: int | None
    period: Period | None
    next_cycle: NextCycle | None = None
    if new_interval is None:
        anchor, period = None, None
    elif trial is not None:
        anchor, period = trial.ends_at, Period(now, trial.ends_at)
        next_cycle = _next_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    elif keep_anchor:
        assert old_period is not None
        anchor, period = current.anchor, old_period
        if prorate:
            lines += _time_scaled_lines(plan, resolved, anchor, now, plan_quantity, credit=False)
            lines += seat_time_lines(plan, seat_usage, anchor, now, credit=False)
        next_cycle = _next_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    else:
        anchor = now
        period = Period(now, add_interval(now, *new_interval))
        lines += recurring_lines(plan, resolved, anchor, now, plan_quantity)
        lines += seat_lines_for(plan, seat_usage, anchor, period)
        next_cycle = _next_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    return AttachQuote(
        kind=ChangeKind.UPGRADE,
        plan=plan,
        now=now,
        due_now=InvoiceDraft(tuple(lines), plan.currency),
        next_cycle=next_cycle,
        starts_at=now,
        anchor=anchor,
        period=period,
        trial_ends_at=trial.ends_at if trial else None,
        prepaid_quantities=resolved,
        outgoing_plan_id=current.plan.id,
        outgoing_ends_at=now,
    )


def change_effective_at(current: Subscription, now: int) -> int:
    """When a scheduled change takes over: the trial end while trialing, else the period end."""
    if current.trialing_at(now):
        assert current.trial_ends_at is not None
        return current.trial_ends_at
    if current.period_end is not None and current.period_end > now:
        return current.period_end
    return now


def quote_downgrade(
    current: Subscription,
    plan: Plan,
    now: int,
    quantities: Mapping[str, Decimal] | None = None,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """Scheduled switch at the period end: nothing due now; the next cycle bills the target plan."""
    resolved = resolve_quantities(plan, quantities, previous=current)
    effective = change_effective_at(current, now)
    interval = plan.billing_interval()
    anchor: int | None = None
    period: Period | None = None
    arrears = tuple(usage_line_stubs(current.plan, _current_period(current)))
    if interval is not None:
        anchor = effective
        period = Period(effective, add_interval(effective, *interval))
        lines = recurring_lines(plan, resolved, anchor, effective, plan_quantity)
        lines += seat_lines_for(plan, seat_usage, anchor, period)
        next_cycle = NextCycle(
            effective, InvoiceDraft(tuple(lines), plan.currency), arrears + usage_line_stubs(plan, period)
        )
    else:
        next_cycle = NextCycle(effective, InvoiceDraft((), plan.currency), arrears)
    return AttachQuote(
        kind=ChangeKind.DOWNGRADE,
        plan=plan,
        now=now,
        due_now=InvoiceDraft((), plan.currency),
        next_cycle=next_cycle,
        starts_at=effective,
        anchor=anchor,
        period=period,
        trial_ends_at=None,
        prepaid_quantities=resolved,
        outgoing_plan_id=current.plan.id,
        outgoing_ends_at=effective,
    )


def _reactivation(current: Subscription, now: int) -> AttachQuote:
    """Re-attaching a canceling plan: it simply stays; nothing is charged."""
    plan = current.plan
    period = _current_period(current)
    next_cycle = None
    if period is not None and plan.billing_interval() is not None:
        next_cycle = _next_cycle(
            plan, current.prepaid_quantities, current.anchor, period, current.quantity, current.usage
        )
    return AttachQuote(
        ChangeKind.SAME,
        plan,
        now,
        InvoiceDraft((), plan.currency),
        next_cycle,
        now,
        current.anchor,
        period,
        current.trial_ends_at,
        dict(current.prepaid_quantities),
    )


def quote_attach(
    current: Subscription | None,
    plan: Plan,
    now: int,
    quantities: Mapping[str, Decimal] | None = None,
    trial: TrialChoice | None = None,
    proration_behavior: str = PRORATE_IMMEDIATELY,
    plan_schedule: str | None = None,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """Price an attach of ``plan`` given the customer's current main plan in the same group and scope.

    ``plan_schedule`` ("immediate" or "end_of_cycle") overrides the upgrade/downgrade timing. Re-attaching
    a canceling current plan is a free reactivation; re-attaching an active one is refused (409).
    ``seat_usage``: units of continuous features the new plan starts with (seats billed up front).
    """
    kind = classify(
        current.plan if current else None,
        plan,
        current.prepaid_quantities if current else None,
        quantities,
    )
    if kind is ChangeKind.SAME:
        assert current is not None
        if current.canceled_at is None:
            raise BillingRuleError(
                f"Cannot attach because the customer's current product '{current.plan.name}' is the same "
                "as the product being attached",
                code="plan_already_attached",
                status=409,
            )
        return _reactivation(current, now)
    if kind is ChangeKind.NEW or current is None:
        return quote_new(plan, now, quantities, trial, plan_quantity, seat_usage)
    if plan_schedule == "end_of_cycle":
        kind = ChangeKind.DOWNGRADE
    elif plan_schedule == "immediate":
        kind = ChangeKind.UPGRADE
    if kind is ChangeKind.DOWNGRADE:
        return quote_downgrade(current, plan, now, quantities, plan_quantity, seat_usage)
    return quote_upgrade(current, plan, now, quantities, trial, proration_behavior, plan_quantity, seat_usage)


def quote_cancel(
    subscription: Subscription, now: int, immediately: bool, prorate: bool = True
) -> CancelQuote:
    """Cancel now (prorated credit for unused time, seats paid up front included, outstanding usage
    billed) or at the period end."""
    if not immediately:
        return CancelQuote(
            InvoiceDraft((), subscription.plan.currency), change_effective_at(subscription, now)
        )
    lines: list[LineItem] = []
    period = _current_period(subscription)
    if not subscription.trialing_at(now):
        lines += usage_charge_lines(subscription, period)
        if prorate and period is not None:
            lines += _time_scaled_lines(
                subscription.plan,
                subscription.prepaid_quantities,
                subscription.anchor,
                now,
                subscription.quantity,
                credit=True,
            )
            lines += seat_time_lines(
                subscription.plan, subscription.usage, subscription.anchor, now, credit=True
            )
    return CancelQuote(InvoiceDraft(tuple(lines), subscription.plan.currency), now)


def _quantity_line(
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


def quote_quantity_change(
    subscription: Subscription,
    requested: Mapping[str, Decimal],
    now: int,
    proration_behavior: str | None = None,
) -> QuantityQuote:
    """Change prepaid quantities mid-cycle, billed per each item's ``proration`` settings."""
    plan = subscription.plan
    merged = dict(subscription.prepaid_quantities)
    merged.update(resolve_quantities(plan, requested, previous=subscription))
    due: list[LineItem] = []
    deferred: list[LineItem] = []
    deltas: dict[str, Decimal] = {}
    trialing = subscription.trialing_at(now)
    for feature_id in requested:
        item = plan.item_for(feature_id)
        assert item is not None and item.price is not None
        old_q = subscription.prepaid_quantities.get(feature_id, item.included)
        new_q = merged[feature_id]
        deltas[feature_id] = prepaid_units(item, new_q) - prepaid_units(item, old_q)
        cost_delta = prepaid_cost(item, new_q) - prepaid_cost(item, old_q)
        if cost_delta == 0 or trialing or proration_behavior == PRORATION_NONE:
            continue
        if not item.price.recurring:
            if cost_delta > 0:
                amount = _minor(cost_delta, plan.currency)
                due.append(_quantity_line(plan, item, amount, old_q, new_q, None, "charged now"))
            continue
        period = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count)
        remaining = Period(max(now, period.start), period.end)
        prorated = _prorated_minor(cost_delta, period, now, plan.currency)
        if cost_delta > 0:
            mode = item.proration.on_increase
            if mode is OnIncrease.BILL_IMMEDIATELY:
                due.append(
                    _quantity_line(
                        plan, item, _minor(cost_delta, plan.currency), old_q, new_q, period, "billed now"
                    )
                )
            elif mode is OnIncrease.PRORATE_IMMEDIATELY:
                due.append(_quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated now"))
            elif mode is OnIncrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    _quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated on next invoice")
                )
        else:
            decrease = item.proration.on_decrease
            if decrease in (OnDecrease.PRORATE, OnDecrease.PRORATE_IMMEDIATELY):
                due.append(_quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited now"))
            elif decrease is OnDecrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    _quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited on next invoice")
                )
    next_cycle = None
    current_period = _current_period(subscription)
    if current_period is not None and plan.billing_interval() is not None:
        base = _next_cycle(
            plan, merged, subscription.anchor, current_period, subscription.quantity, subscription.usage
        )
        next_cycle = NextCycle(
            base.starts_at,
            InvoiceDraft(base.invoice.lines + tuple(deferred), plan.currency),
            base.usage_lines,
        )
    return QuantityQuote(
        InvoiceDraft(tuple(due), plan.currency),
        next_cycle,
        merged,
        deltas,
        InvoiceDraft(tuple(deferred), plan.currency),
    )


def quote_renewal(subscription: Subscription, boundary_at: int) -> RenewalQuote:
    """Invoice at ``boundary_at``: the ended period's overage plus the next period's fixed prices.

    At a trial end nothing was metered for money, so only the first full period is billed.
    """
    plan = subscription.plan
    interval = plan.billing_interval()
    if interval is None:
        raise BillingRuleError(f"Plan {plan.id} has no recurring price to renew")
    ended = _current_period(subscription)
    lines: list[LineItem] = []
    trial_end = subscription.trial_ends_at is not None and boundary_at <= subscription.trial_ends_at
    if not trial_end:
        lines += usage_charge_lines(subscription, ended)
    lines += recurring_lines(
        plan, subscription.prepaid_quantities, subscription.anchor, boundary_at, subscription.quantity
    )
    next_period = period_at(subscription.anchor, boundary_at, *interval)
    lines += seat_lines(subscription, next_period)
    return RenewalQuote(InvoiceDraft(tuple(lines), plan.currency), next_period)


def quote_final_usage(subscription: Subscription) -> InvoiceDraft:
    """Arrears usage billed when a subscription ends at its period end."""
    return InvoiceDraft(
        tuple(usage_charge_lines(subscription, _current_period(subscription))), subscription.plan.currency
    )


def check_multi_attach(plans: Sequence[Plan], current_plan_ids: Iterable[str]) -> None:
    """Refuse two main plans of one group, or a plan the customer already has as its main plan."""
    seen: dict[str, str] = {}
    owned = set(current_plan_ids)
    for plan in plans:
        if plan.add_on or plan.is_one_off:
            continue
        if plan.group in seen:
            raise BillingRuleError(
                f"Plans {seen[plan.group]} and {plan.id} are in the same group "
                "and cannot be attached together"
            )
        seen[plan.group] = plan.id
        if plan.id in owned:
            raise BillingRuleError(f"Customer already has this product active: {plan.id}")


def combine_due(quotes: Sequence[AttachQuote]) -> InvoiceDraft:
    """One invoice for a multi-attach (every quote must share a currency)."""
    currencies = {quote.due_now.currency for quote in quotes}
    if len(currencies) > 1:
        raise BillingRuleError(
            "All plans in a multi-attach must use the same currency", code="currency_mismatch"
        )
    lines: tuple[LineItem, ...] = ()
    for quote in quotes:
        lines += quote.due_now.lines
    return InvoiceDraft(lines, currencies.pop() if currencies else "usd")
