"""What an attach, update, cancel or renewal costs, as line items due now and at the next cycle.

Every entry point is pure: given plans, the current subscription and ``now`` it returns a quote. Previews
render a quote; the real call charges the same quote, so the two always agree to the cent.

Proration follows Autumn: an upgrade credits the unused time of the old fixed prices and charges the
remaining time of the new ones (each line rounded once, half up), bills outstanding usage at the old rate,
and keeps the billing anchor when the interval is unchanged. Downgrades wait for the period end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, NextCycle
from .lines import (
    backdated_lines,
    minor,
    one_off_lines,
    prorated_minor,
    quantity_line,
    recurring_lines,
    resolve_quantities,
    seat_lines,
    seat_lines_for,
    seat_time_lines,
    time_scaled_lines,
    usage_charge_lines,
    usage_line_stubs,
)
from .model import OnDecrease, OnIncrease, Plan, Subscription
from .periods import Interval, Period, add_interval, period_at, period_index
from .pricing import prepaid_cost, prepaid_units
from .transitions import ChangeKind, classify
from .trials import TrialChoice

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
    backdated_from: int | None = None
    """A backdated start (in the past): the instance's start and anchor, billed from there."""

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
class RenewalQuote:
    """Invoice at a period boundary: arrears usage of the ended period plus the next period up front."""

    invoice: InvoiceDraft
    next_period: Period


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
            lines += time_scaled_lines(
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
            lines += time_scaled_lines(plan, resolved, anchor, now, plan_quantity, credit=False)
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
            lines += time_scaled_lines(
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
                amount = minor(cost_delta, plan.currency)
                due.append(quantity_line(plan, item, amount, old_q, new_q, None, "charged now"))
            continue
        period = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count)
        remaining = Period(max(now, period.start), period.end)
        prorated = prorated_minor(cost_delta, period, now, plan.currency)
        if cost_delta > 0:
            mode = item.proration.on_increase
            if mode is OnIncrease.BILL_IMMEDIATELY:
                due.append(
                    quantity_line(
                        plan, item, minor(cost_delta, plan.currency), old_q, new_q, period, "billed now"
                    )
                )
            elif mode is OnIncrease.PRORATE_IMMEDIATELY:
                due.append(quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated now"))
            elif mode is OnIncrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated on next invoice")
                )
        else:
            decrease = item.proration.on_decrease
            if decrease in (OnDecrease.PRORATE, OnDecrease.PRORATE_IMMEDIATELY):
                due.append(quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited now"))
            elif decrease is OnDecrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited on next invoice")
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


def backdated_periods(plan: Plan, starts_at: int, now: int) -> int:
    """How many periods of its recurring prices a plan backdated to ``starts_at`` covers up to ``now``
    (Stripe's backdated first invoice has a line per price and period)."""
    count = 0
    prices: list[tuple[Interval, int]] = []
    if plan.price is not None and plan.price.recurring:
        prices.append((plan.price.interval, plan.price.interval_count))
    prices += [
        (i.price.interval, i.price.interval_count) for i in plan.priced_items if i.price and i.price.recurring
    ]
    for interval, interval_count in prices:
        count += period_index(starts_at, now, interval, interval_count) + 1
    return count


def backdate_quote(
    quote: AttachQuote, starts_at: int, seat_usage: Mapping[str, Decimal] | None = None
) -> AttachQuote:
    """A new subscription's quote moved back to ``starts_at``: anchored there, its recurring prices billed
    for every period since, up to and including the current one (seats in use only for the current
    period); nothing it replaces may be billed (the caller allows only a new plan or a free one replaced)."""
    plan = quote.plan
    interval = plan.billing_interval()
    if interval is None:
        raise BillingRuleError(
            "Past starts_at requires a paid recurring plan and does not support one-off plans."
        )
    resolved = quote.prepaid_quantities
    period = period_at(starts_at, quote.now, *interval)
    lines = backdated_lines(plan, resolved, starts_at, quote.now)
    lines += seat_lines_for(plan, seat_usage, starts_at, period)
    return dataclasses.replace(
        quote,
        due_now=InvoiceDraft(tuple(lines), plan.currency),
        next_cycle=_next_cycle(plan, resolved, starts_at, period, 1, seat_usage),
        anchor=starts_at,
        period=period,
        backdated_from=starts_at,
    )
