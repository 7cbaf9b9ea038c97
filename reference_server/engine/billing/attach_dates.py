"""An attach's ``starts_at`` and ``ends_at``: when the attached plan starts (now, later or in the past) and
when it ends, the refusals Autumn makes of them that need no customer state, and what they do to the quote.

- A start within a minute of now is now (Autumn's tolerance either side).
- A later start schedules the plan (:func:`quote_scheduled_start`): nothing is due now; its first period
  (one-off prices included) is billed when it starts, which the preview shows as its next cycle; the plan it
  replaces in its group ends then (sooner if it already ends before).
- A past start backdates a new subscription (:mod:`.backdating`; the customer-state refusals are the
  caller's).
- An end (:func:`bound_quote`): the plan ends at that moment, renewing no further; the period that contains
  it is billed only up to it, as Stripe prorates a subscription's ``cancel_at``: the invoice that bills the
  period credits the time after the end (:func:`end_credit`), as a cancellation at that moment would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum

from .attach_quotes import AttachQuote, quote_new
from .cycles import current_period
from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, NextCycle
from .lines import resolve_quantities, seat_time_lines, time_scaled_lines, usage_line_stubs
from .model import Plan, Subscription
from .periods import Period, period_at
from .transitions import ChangeKind

START_TOLERANCE_MS = 60_000
"""How far from now a ``starts_at`` or ``ends_at`` still counts as now (Autumn's one minute)."""


class StartTiming(str, Enum):
    PAST = "past"
    NOW = "now"
    FUTURE = "future"


def start_timing(starts_at: int | None, now: int) -> StartTiming:
    """Whether ``starts_at`` is in the past, now (none given, or within the tolerance) or later."""
    if starts_at is None:
        return StartTiming.NOW
    if starts_at > now + START_TOLERANCE_MS:
        return StartTiming.FUTURE
    if starts_at < now - START_TOLERANCE_MS:
        return StartTiming.PAST
    return StartTiming.NOW


def paid_recurring(plan: Plan) -> bool:
    """A plan with a price that renews (not free, not only one-off prices)."""
    return not plan.is_free and plan.billing_interval() is not None


def check_start(
    starts_at: int | None,
    now: int,
    plan: Plan,
    *,
    plan_schedule: str | None,
    invoice_mode: bool,
    trial: bool,
) -> StartTiming:
    """Autumn's refusals of ``starts_at`` given the plan and the request (``trial``: the attach would
    start a free trial); the timing otherwise. A past start's refusals that need the customer's
    subscriptions, its payment path and the backdated line count are the caller's."""
    if starts_at is None:
        return StartTiming.NOW
    if plan_schedule == "end_of_cycle":
        raise BillingRuleError("starts_at cannot be used together with plan_schedule: end_of_cycle.")
    timing = start_timing(starts_at, now)
    if timing is StartTiming.PAST and not paid_recurring(plan):
        raise BillingRuleError("Past starts_at is only supported for paid recurring plans.")
    if timing is StartTiming.FUTURE:
        if invoice_mode:
            raise BillingRuleError("Future starts_at cannot be used together with invoice mode.")
        if not paid_recurring(plan):
            raise BillingRuleError("Future starts_at is only supported for paid recurring plans.")
        if trial:
            raise BillingRuleError("Future starts_at cannot be used together with a free trial.")
    return timing


def check_end(ends_at: int | None, now: int, plan_starts_at: int, plan: Plan) -> None:
    """Autumn's refusals of ``ends_at``: in the past, not after the plan starts (``plan_starts_at``: the
    requested start, else when the attach starts the plan), or on a free plan."""
    if ends_at is None:
        return
    if ends_at < now - START_TOLERANCE_MS:
        raise BillingRuleError(
            "ends_at cannot be set to a past timestamp. Use a future Unix timestamp in milliseconds."
        )
    if ends_at <= plan_starts_at:
        raise BillingRuleError("ends_at must be after the plan start timestamp.")
    if plan.is_free:
        raise BillingRuleError("ends_at is only supported for paid plans.")


def quote_scheduled_start(
    current: Subscription | None,
    plan: Plan,
    now: int,
    starts_at: int,
    quantities: Mapping[str, Decimal] | None = None,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """``plan`` asked to start at ``starts_at``, later than now: nothing is due now; the next cycle is its
    first period as :func:`quote_new` bills it at that moment (one-off prices and seats included, anchored
    there); a ``current`` plan of its group is switched out then, like a downgrade at its period end (the
    quote's kind), unless it already ends before."""
    resolved = resolve_quantities(plan, quantities, previous=current)
    first = quote_new(plan, starts_at, resolved, None, plan_quantity, seat_usage)
    arrears = usage_line_stubs(current.plan, current_period(current)) if current is not None else ()
    outgoing_ends_at = None
    if current is not None:
        ends = current.expires_at
        outgoing_ends_at = starts_at if ends is None or ends > starts_at else ends
    return AttachQuote(
        kind=ChangeKind.DOWNGRADE if current is not None else ChangeKind.NEW,
        plan=plan,
        now=now,
        due_now=InvoiceDraft((), plan.currency),
        next_cycle=NextCycle(starts_at, first.due_now, arrears + usage_line_stubs(plan, first.period)),
        starts_at=starts_at,
        anchor=first.anchor,
        period=first.period,
        trial_ends_at=None,
        prepaid_quantities=resolved,
        outgoing_plan_id=current.plan.id if current is not None else None,
        outgoing_ends_at=outgoing_ends_at,
    )


def end_credit(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    anchor: int,
    period: Period | None,
    ends_at: int,
    plan_quantity: int = 1,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> list[LineItem]:
    """The credit for the time after ``ends_at`` of a ``period`` billed in full (fixed prices and seats
    paid up front, as a cancellation at ``ends_at`` credits them); none when the plan ends at or after
    the period's end (or before it starts)."""
    if period is None or not period.start < ends_at < period.end:
        return []
    lines = time_scaled_lines(plan, quantities, anchor, ends_at, plan_quantity, credit=True)
    lines += seat_time_lines(plan, seat_usage, anchor, ends_at, credit=True)
    return lines


def _plus(draft: InvoiceDraft, lines: list[LineItem]) -> InvoiceDraft:
    return InvoiceDraft(draft.lines + tuple(lines), draft.currency) if lines else draft


def bound_quote(
    quote: AttachQuote, ends_at: int, seat_usage: Mapping[str, Decimal] | None = None
) -> AttachQuote:
    """``quote`` for a plan that ends at ``ends_at``: the invoice billing the period that contains the end
    (due now, or the next cycle: a scheduled start's first period, the first period after a trial, a
    renewal) credits the time after it, and there is no next cycle when the plan ends before it."""
    interval = quote.plan.billing_interval()
    anchor = quote.anchor
    if interval is None or anchor is None:  # a one-off purchase (or free plan): it simply ends then
        return dataclasses.replace(quote, ends_at=ends_at)
    plan, quantities = quote.plan, quote.prepaid_quantities
    due = quote.due_now
    if quote.period is not None and not quote.scheduled and quote.trial_ends_at is None:
        due = _plus(due, end_credit(plan, quantities, anchor, quote.period, ends_at, 1, seat_usage))
    cycle = quote.next_cycle
    if cycle is not None:
        if ends_at <= cycle.starts_at:
            cycle = None
        else:
            billed = period_at(anchor, cycle.starts_at, *interval)
            credit = end_credit(plan, quantities, anchor, billed, ends_at, 1, seat_usage)
            cycle = dataclasses.replace(cycle, invoice=_plus(cycle.invoice, credit))
    return dataclasses.replace(quote, due_now=due, next_cycle=cycle, ends_at=ends_at)
