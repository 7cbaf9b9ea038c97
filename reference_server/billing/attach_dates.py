"""``billing.attach``'s ``starts_at`` and ``ends_at`` (and its preview's) given the customer's state, and the
backdating a past start shares with ``billing.multi_attach``.

The rules that need only the plan and the request, and the quotes, are pure
(:mod:`reference_server.engine.billing.attach_dates`, :mod:`reference_server.engine.billing.backdating`);
here they meet the customer's subscriptions. :func:`dated_quote` turns the attach's own quote into the
scheduled, backdated or ending one; :func:`reference_server.billing.plan_changes.apply_attach` writes it
and :mod:`reference_server.billing.renewals` bills what comes later (the scheduled start, the renewals, the
period the plan ends in).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import Connection

from reference_server.billing.convert import engine_plan
from reference_server.billing.invoice_mode import enabled_mode
from reference_server.billing.payment_collection import rule_error
from reference_server.billing.plan_changes import AttachState
from reference_server.billing.resolve import AttachRequest
from reference_server.billing.seats import starting_seat_usage
from reference_server.engine.billing import (
    AttachQuote,
    BillingRuleError,
    ChangeKind,
    Subscription,
    TrialChoice,
)
from reference_server.engine.billing.attach_dates import (
    StartTiming,
    bound_quote,
    check_end,
    check_start,
    paid_recurring,
    quote_scheduled_start,
    start_timing,
)
from reference_server.engine.billing.backdating import backdate_quote, backdated_periods
from reference_server.errors import ApiError, invalid

Prepared = tuple[AttachState, AttachQuote, TrialChoice | None]
"""One plan of an attach (or of a multi-attach), resolved and priced."""

BACKDATE_LINE_LIMIT = 250
"""Most lines Stripe puts on a backdated subscription's first invoice (one per price and period)."""
PAST_START_CHECKOUT = "Past starts_at cannot be used when Stripe Checkout is required."
"""A backdated attach that would send the customer to a checkout page (it needs a card or invoice mode)."""


def backdate(conn: Connection, prepared: list[Prepared], starts_at: int, plan_refusal: str) -> list[Prepared]:
    """``starts_at`` in the past: every paid recurring plan starts at that moment, anchored there, and its
    prices are billed for each period since (Autumn's backdated subscription); free plans start now.

    As in Autumn: only with at least one paid recurring plan and no one-off plan (``plan_refusal``
    otherwise), none while the customer has a paid subscription or a scheduled plan, no trial, and at
    most 250 backdated lines. Whether the payment may go through checkout is the caller's to check."""
    first = prepared[0][0]
    plans = [engine_plan(state.plan, state.cat) for state, _, _ in prepared]
    if not any(paid_recurring(p) for p in plans) or any(p.is_one_off for p in plans):
        raise invalid(plan_refusal, "invalid_request")
    for inst in first.instances:
        held = first.cat.plans_by_pk.get(inst.plan_pk)
        billed = engine_plan(held, first.cat) if held is not None else None
        if inst.status == "scheduled" or (
            inst.status == "active" and billed is not None and paid_recurring(billed)
        ):
            raise invalid(
                "Past starts_at is only supported when creating a new Stripe subscription.", "invalid_request"
            )
    if any(quote.trial_ends_at is not None for _, quote, _ in prepared):
        raise invalid("Past starts_at cannot be used together with a free trial.", "invalid_request")
    if sum(backdated_periods(p, starts_at, first.now) for p in plans) > BACKDATE_LINE_LIMIT:
        raise invalid(
            "Past starts_at is too far in the past. Stripe supports backdating only when the first invoice "
            f"has at most {BACKDATE_LINE_LIMIT} line items.",
            "invalid_request",
        )
    out = []
    for (state, quote, trial), eplan in zip(prepared, plans, strict=True):
        if paid_recurring(eplan):
            current_pk = state.current.pk if state.current is not None else None
            seats = starting_seat_usage(
                conn, state.cat, state.customer.pk, state.plan, state.entity, current_pk
            )
            try:
                quote = backdate_quote(quote, starts_at, seats)
            except BillingRuleError as exc:
                raise rule_error(exc) from exc
        out.append((state, quote, trial))
    return out


def _unsupported(what: str) -> ApiError:
    return ApiError(
        400,
        "unsupported_field",
        f"{what} is part of Autumn's API but the reference server does not support it yet; leave it out "
        "(see the README's list of unsupported fields)",
    )


def dated_quote(
    state: AttachState,
    quote: AttachQuote,
    current: Subscription | None,
    trial: TrialChoice | None,
    seats: Mapping[str, Decimal] | None = None,
) -> AttachQuote:
    """The attach's ``quote`` as its ``starts_at`` and ``ends_at`` ask (unchanged without them), after
    Autumn's refusals of them (400 ``invalid_request``; what this server does not model, 400
    ``unsupported_field``). ``current``: the plan of the group it replaces, as the engine sees it;
    ``trial``: the free trial the attach would start; ``seats``: the seats it starts with."""
    params, now = state.params, state.now
    plan = engine_plan(state.plan, state.cat)
    seat_usage = dict(seats or {})
    try:
        timing = check_start(
            params.starts_at,
            now,
            plan,
            plan_schedule=params.plan_schedule,
            invoice_mode=enabled_mode(params.invoice_mode) is not None,
            trial=trial is not None,
        )
    except BillingRuleError as exc:
        raise rule_error(exc) from exc
    if timing is not StartTiming.NOW and quote.kind is ChangeKind.SAME:
        raise _unsupported("starts_at when re-attaching the current plan (which keeps its running cycle)")
    if timing is StartTiming.FUTURE:
        assert params.starts_at is not None
        if params.enable_plan_immediately:
            raise _unsupported(
                "enable_plan_immediately with a future starts_at (access before billing starts)"
            )
        if params.billing_cycle_anchor == "now":
            raise invalid(
                "billing_cycle_anchor resets are not supported for scheduled switches. Use an immediate "
                "upgrade, or remove billing_cycle_anchor."
            )
        try:
            quote = quote_scheduled_start(
                current, plan, now, params.starts_at, quote.prepaid_quantities, seat_usage=seat_usage
            )
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
    elif timing is StartTiming.PAST:
        assert params.starts_at is not None
        ((_, quote, _),) = backdate(
            state.conn,
            [(state, quote, trial)],
            params.starts_at,
            "Past starts_at is only supported for paid recurring plans.",
        )
    if params.ends_at is None:
        return quote
    start = params.starts_at if params.starts_at is not None else quote.starts_at
    try:
        check_end(params.ends_at, now, start, plan)
    except BillingRuleError as exc:
        raise rule_error(exc) from exc
    if quote.kind is ChangeKind.SAME:
        raise _unsupported("ends_at when re-attaching the current plan (which keeps its running cycle)")
    return bound_quote(quote, params.ends_at, seat_usage)


def refuse_past_start_checkout(params: AttachRequest, now: int) -> None:
    """A past ``starts_at`` cannot go through a checkout page that collects a card (Stripe Checkout does
    not backdate): 400, as Autumn refuses it when the attach runs (its preview does not know yet)."""
    if start_timing(params.starts_at, now) is StartTiming.PAST:
        raise invalid(PAST_START_CHECKOUT)
