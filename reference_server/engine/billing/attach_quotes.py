"""What attaching a plan costs: a new plan, an upgrade (prorated now), a downgrade (at the period end)
or the reactivation of a canceling plan; and the one invoice of several attached at once.

Every entry point is pure: given plans, the current subscription and ``now`` it returns a quote. Previews
render a quote; the real call charges the same quote, so the two always agree to the cent.

Proration follows Autumn: an upgrade credits the unused time of the old fixed prices and charges the
remaining time of the new ones (each line rounded once, half up), bills outstanding usage at the old rate,
and keeps the billing anchor when the interval is unchanged. Downgrades wait for the period end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .cycle_reset import check_cycle_reset
from .cycles import (
    PRORATE_IMMEDIATELY,
    PRORATION_NONE,
    change_effective_at,
    closing_lines,
    current_period,
    renewal_cycle,
)
from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, NextCycle
from .lines import (
    one_off_lines,
    recurring_lines,
    resolve_quantities,
    seat_lines_for,
    seat_time_lines,
    time_scaled_lines,
    usage_line_stubs,
)
from .model import Plan, Subscription
from .periods import Period, add_interval
from .transitions import ChangeKind, classify
from .trials import TrialChoice


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
    ends_at: int | None = None
    """When the plan ends (``ends_at``; :func:`.attach_dates.bound_quote`), None: until cancelled."""
    outgoing_paid_recurring: bool = False
    """The plan replaced at once had a recurring price (set by :func:`quote_upgrade`)."""

    @property
    def changes_paid_subscription_now(self) -> bool:
        """An immediate change of an existing paid subscription: the current plan, with a recurring price,
        replaced at once by a plan with one (so the running period is credited and charged now). Not a
        first paid plan, an upgrade from a free or one-off plan, a switch at the period end or a
        reactivation, which create a subscription or change nothing now."""
        return (
            self.kind is ChangeKind.UPGRADE
            and self.outgoing_paid_recurring
            and self.plan.billing_interval() is not None
        )

    @property
    def scheduled(self) -> bool:
        """The target plan starts later (a downgrade waiting for the period end)."""
        return self.starts_at > self.now

    @property
    def total(self) -> int:
        return self.due_now.total


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
        next_cycle = renewal_cycle(plan, resolved, anchor, Period(now, anchor), plan_quantity, seat_usage)
    else:
        anchor = now
        lines += recurring_lines(plan, resolved, anchor, now, plan_quantity)
        period = Period(now, add_interval(now, *interval))
        lines += seat_lines_for(plan, seat_usage, anchor, period)
        next_cycle = renewal_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
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
    reset_anchor: bool = False,
) -> AttachQuote:
    """Immediate switch: credit unused old time, charge remaining new time, bill old usage now.

    The running anchor is kept when the interval does not change, unless ``reset_anchor``
    (``billing_cycle_anchor: "now"``): then the new plan's cycle starts now and its first period is
    charged in full, as when the interval changes.

    Seats (continuous usage-based items) are paid up front like the base price, so they are credited and
    charged the same way: the old plan's seats in use for their unused time, the new plan's for the time
    left (``seat_usage``: the units in use the new plan takes over).
    """
    resolved = resolve_quantities(plan, quantities, previous=current)
    prorate = proration_behavior != PRORATION_NONE
    if not prorate and current.plan.is_free and not plan.is_free:
        raise BillingRuleError("proration_behavior 'none' cannot be used when upgrading from a free plan")
    old_trialing = current.trialing_at(now)
    old_period = current_period(current)
    lines = closing_lines(current, now, prorate)
    lines += one_off_lines(plan, resolved, plan_quantity)
    new_interval = plan.billing_interval()
    keep_anchor = (
        not reset_anchor
        and new_interval is not None
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
        next_cycle = renewal_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    elif keep_anchor:
        assert old_period is not None
        anchor, period = current.anchor, old_period
        if prorate:
            lines += time_scaled_lines(plan, resolved, anchor, now, plan_quantity, credit=False)
            lines += seat_time_lines(plan, seat_usage, anchor, now, credit=False)
        next_cycle = renewal_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
    else:
        anchor = now
        period = Period(now, add_interval(now, *new_interval))
        lines += recurring_lines(plan, resolved, anchor, now, plan_quantity)
        lines += seat_lines_for(plan, seat_usage, anchor, period)
        next_cycle = renewal_cycle(plan, resolved, anchor, period, plan_quantity, seat_usage)
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
        outgoing_paid_recurring=not current.plan.is_free and current.plan.billing_interval() is not None,
    )


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
    arrears = tuple(usage_line_stubs(current.plan, current_period(current)))
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
    period = current_period(current)
    next_cycle = None
    if period is not None and plan.billing_interval() is not None:
        next_cycle = renewal_cycle(
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
    reset_anchor: bool = False,
) -> AttachQuote:
    """Price an attach of ``plan`` given the customer's current main plan in the same group and scope.

    ``plan_schedule`` ("immediate" or "end_of_cycle") overrides the upgrade/downgrade timing. Re-attaching
    a canceling current plan is a free reactivation; re-attaching an active one is refused (409).
    ``seat_usage``: units of continuous features the new plan starts with (seats billed up front).
    ``reset_anchor`` (``billing_cycle_anchor: "now"``): the plan's billing cycle starts now; see
    :func:`_check_reset_anchor` for where that cannot apply.
    """
    quote = _quote_attach(
        current,
        plan,
        now,
        quantities,
        trial,
        proration_behavior,
        plan_schedule,
        plan_quantity,
        seat_usage,
        reset_anchor,
    )
    if reset_anchor:
        _check_reset_anchor(quote)
    return quote


def _check_reset_anchor(quote: AttachQuote) -> None:
    """Where ``billing_cycle_anchor: "now"`` has no cycle to reset, refused as Autumn refuses it."""
    check_cycle_reset(quote.plan, quote.trial_ends_at is not None)
    if quote.kind is ChangeKind.DOWNGRADE:
        raise BillingRuleError(
            "billing_cycle_anchor resets are not supported for scheduled switches. Use an immediate "
            "upgrade, or remove billing_cycle_anchor."
        )
    if quote.kind is ChangeKind.SAME:
        raise BillingRuleError(
            "billing_cycle_anchor cannot reset the cycle of a canceling plan being reactivated: it keeps "
            "its running cycle. Remove billing_cycle_anchor."
        )


def _quote_attach(
    current: Subscription | None,
    plan: Plan,
    now: int,
    quantities: Mapping[str, Decimal] | None,
    trial: TrialChoice | None,
    proration_behavior: str,
    plan_schedule: str | None,
    plan_quantity: int,
    seat_usage: Mapping[str, Decimal] | None,
    reset_anchor: bool,
) -> AttachQuote:
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
    return quote_upgrade(
        current, plan, now, quantities, trial, proration_behavior, plan_quantity, seat_usage, reset_anchor
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
