"""An attach's ``starts_at`` and ``ends_at`` in the engine: the start's timing (a minute either side of now
is now), Autumn's refusals, a later start's quote, and a plan ending inside a period it is billed for."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from reference_server.engine.billing import (
    BasePrice,
    BillingRuleError,
    ChangeKind,
    Interval,
    LineItem,
    LineKind,
    Plan,
    Subscription,
    quote_attach,
    quote_cancel,
    quote_new,
    quote_renewal,
)
from reference_server.engine.billing.attach_dates import (
    START_TOLERANCE_MS,
    StartTiming,
    bound_quote,
    check_end,
    check_start,
    end_credit,
    quote_scheduled_start,
    start_timing,
)
from reference_server.engine.billing.backdating import backdate_quote
from reference_server.engine.billing.cycles import paid_until
from reference_server.engine.billing.periods import Period, add_interval
from reference_server.engine.billing.trials import choose_trial
from tests.engine.builders import FREE, PREMIUM, PRO, PRO_TRIAL, messages, monthly, ms, prepaid_item

START = ms(2026, 4, 1)  # April has 30 days
DAY = 86_400_000
MAY, JUNE = ms(2026, 5, 1), ms(2026, 6, 1)


PACK = Plan("pack", "Pack", price=BasePrice(Decimal(10), Interval.ONE_OFF), items=(messages(500),))
"""A one-off purchase."""


def _sub(
    plan: Plan, start: int = START, canceled_at: int | None = None, expires_at: int | None = None
) -> Subscription:
    interval = plan.billing_interval()
    end = add_interval(start, *interval) if interval else None
    return Subscription(
        plan,
        anchor=start,
        started_at=start,
        period_start=start,
        period_end=end,
        canceled_at=canceled_at,
        expires_at=expires_at,
    )


def _amounts(lines: Sequence[LineItem]) -> list[tuple[LineKind, int]]:
    return [(line.kind, line.amount) for line in lines]


def _check(starts_at: int, plan: Plan, **options: Any) -> StartTiming:
    defaults: dict[str, Any] = {"plan_schedule": None, "invoice_mode": False, "trial": False}
    return check_start(starts_at, START, plan, **{**defaults, **options})


def test_a_start_within_a_minute_of_now_is_now() -> None:
    assert start_timing(None, START) is StartTiming.NOW
    assert start_timing(START + START_TOLERANCE_MS, START) is StartTiming.NOW
    assert start_timing(START - START_TOLERANCE_MS, START) is StartTiming.NOW
    assert start_timing(START + START_TOLERANCE_MS + 1, START) is StartTiming.FUTURE
    assert start_timing(START - START_TOLERANCE_MS - 1, START) is StartTiming.PAST


@pytest.mark.parametrize(
    ("starts_at", "plan", "kwargs", "message"),
    [
        (START + DAY, PRO, {"plan_schedule": "end_of_cycle"}, "plan_schedule: end_of_cycle"),
        (START, PRO, {"plan_schedule": "end_of_cycle"}, "plan_schedule: end_of_cycle"),
        (
            START + DAY,
            PRO,
            {"invoice_mode": True},
            "Future starts_at cannot be used together with invoice mode.",
        ),
        (START + DAY, FREE, {}, "Future starts_at is only supported for paid recurring plans."),
        (START + DAY, PACK, {}, "Future starts_at is only supported for paid recurring plans."),
        (
            START + DAY,
            PRO_TRIAL,
            {"trial": True},
            "Future starts_at cannot be used together with a free trial.",
        ),
        (START - DAY, FREE, {}, "Past starts_at is only supported for paid recurring plans."),
        (START - DAY, PACK, {}, "Past starts_at is only supported for paid recurring plans."),
    ],
)
def test_autumns_start_refusals(starts_at: int, plan: Plan, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(BillingRuleError) as caught:
        _check(starts_at, plan, **kwargs)
    assert message in caught.value.message
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")


def test_starts_that_pass_give_their_timing() -> None:
    none = check_start(None, START, FREE, plan_schedule="end_of_cycle", invoice_mode=True, trial=True)
    assert none is StartTiming.NOW
    assert _check(START, FREE) is StartTiming.NOW
    assert _check(START + DAY, PRO) is StartTiming.FUTURE
    # invoice mode takes a past start; its trial is refused on the backdated quote (billing/)
    assert _check(START - DAY, PRO, invoice_mode=True, trial=True) is StartTiming.PAST


def test_autumns_end_refusals() -> None:
    check_end(None, START, START, FREE)
    check_end(START + DAY, START, START, PRO)
    check_end(START + DAY, START, START, PACK)  # a purchase may expire
    check_end(START - 30_000, START, START - DAY, PRO)  # within the tolerance of now
    for ends_at, start, plan, message in [
        (START - DAY, START, PRO, "ends_at cannot be set to a past timestamp."),
        (START + DAY, START + 2 * DAY, PRO, "ends_at must be after the plan start timestamp."),
        (START + DAY, START + DAY, PRO, "ends_at must be after the plan start timestamp."),
        (START + DAY, START, FREE, "ends_at is only supported for paid plans."),
    ]:
        with pytest.raises(BillingRuleError) as caught:
            check_end(ends_at, START, start, plan)
        assert message in caught.value.message


def test_a_later_start_bills_nothing_now_and_its_first_period_when_it_starts() -> None:
    later = START + 10 * DAY
    quote = quote_scheduled_start(None, PRO, START, later)
    assert quote.kind is ChangeKind.NEW and quote.scheduled and quote.total == 0
    assert (quote.starts_at, quote.anchor, quote.period) == (later, later, Period(later, ms(2026, 5, 11)))
    assert quote.next_cycle is not None and quote.next_cycle.starts_at == later
    assert quote.next_cycle.invoice == quote_new(PRO, later).due_now  # what the start will bill
    assert (quote.outgoing_plan_id, quote.outgoing_ends_at) == (None, None)


def test_a_later_start_switches_the_current_plan_out_then() -> None:
    later = START + 45 * DAY
    quote = quote_scheduled_start(_sub(PREMIUM), PRO, START, later)
    assert quote.kind is ChangeKind.DOWNGRADE and quote.total == 0  # a switch at a later moment
    assert (quote.outgoing_plan_id, quote.outgoing_ends_at) == ("premium", later)
    # the current plan already ends sooner (cancelled at its period end): it keeps that end
    canceling = _sub(PREMIUM, canceled_at=START, expires_at=MAY)
    assert quote_scheduled_start(canceling, PRO, START, later).outgoing_ends_at == MAY
    # a current plan's prepaid quantity carries over, as on a downgrade
    packs = monthly("packs", "5", prepaid_item(amount="10", units=100))
    held = dataclasses.replace(_sub(packs), prepaid_quantities={"messages": Decimal(300)})
    bigger = monthly("bigger", "30", prepaid_item(amount="10", units=100))
    assert quote_scheduled_start(held, bigger, START, later).prepaid_quantities == {"messages": Decimal(300)}


def test_end_credit_gives_back_the_time_after_the_end_of_a_period_billed_in_full() -> None:
    april = Period(START, MAY)
    credit = end_credit(PRO, {}, START, april, START + 10 * DAY)
    assert _amounts(credit) == [(LineKind.UNUSED_TIME, -1333)]  # 20 days of 30 of $20
    assert credit[0].period == Period(START + 10 * DAY, MAY)
    assert end_credit(PRO, {}, START, april, MAY) == []  # it ends with the period
    assert end_credit(PRO, {}, START, april, MAY + DAY) == []
    assert end_credit(PRO, {}, START, None, START + DAY) == []


def test_an_end_inside_the_first_period_bills_it_up_to_the_end_and_renews_no_more() -> None:
    quote = bound_quote(quote_attach(None, PRO, START), START + 10 * DAY)
    assert _amounts(quote.due_now.lines) == [(LineKind.BASE, 2000), (LineKind.UNUSED_TIME, -1333)]
    assert quote.total == 667 and quote.next_cycle is None and quote.ends_at == START + 10 * DAY


def test_an_end_in_a_later_period_bills_that_renewal_up_to_the_end() -> None:
    ends_at = ms(2026, 5, 16)  # May has 31 days: 16 unused
    quote = bound_quote(quote_attach(None, PRO, START), ends_at)
    assert quote.total == 2000
    assert quote.next_cycle is not None
    assert _amounts(quote.next_cycle.invoice.lines) == [(LineKind.BASE, 2000), (LineKind.UNUSED_TIME, -1032)]
    # the renewal the server runs then bills the same, from the subscription's own end
    sub = _sub(PRO, expires_at=ends_at)
    renewal = quote_renewal(sub, MAY)
    credit = end_credit(PRO, {}, START, renewal.next_period, ends_at)
    assert sum(line.amount for line in renewal.invoice.lines + tuple(credit)) == 968
    # an end at the renewal itself: no renewal
    assert bound_quote(quote_attach(None, PRO, START), MAY).next_cycle is None


def test_a_later_start_with_an_end_bills_its_first_period_up_to_the_end() -> None:
    later = START + 5 * DAY  # April 6 to May 6: 30 days
    quote = bound_quote(quote_scheduled_start(None, PRO, START, later), START + 15 * DAY)
    assert quote.total == 0
    assert quote.next_cycle is not None and quote.next_cycle.starts_at == later
    assert _amounts(quote.next_cycle.invoice.lines) == [(LineKind.BASE, 2000), (LineKind.UNUSED_TIME, -1333)]


def test_an_end_after_a_trial_bills_the_first_paid_period_up_to_it() -> None:
    trial = choose_trial(PRO_TRIAL, START, False)
    quote = quote_attach(None, PRO_TRIAL, START, trial=trial)
    trial_end = START + 14 * DAY
    assert bound_quote(quote, START + 10 * DAY).next_cycle is None  # it ends during the trial
    ended = bound_quote(quote, trial_end + 10 * DAY)
    assert ended.total == 0 and ended.next_cycle is not None
    assert [line.kind for line in ended.next_cycle.invoice.lines] == [LineKind.BASE, LineKind.UNUSED_TIME]


def test_a_backdated_plan_ending_this_period_bills_it_up_to_the_end() -> None:
    now = START + 45 * DAY  # May 16
    quote = bound_quote(backdate_quote(quote_attach(None, PRO, now), START), ms(2026, 5, 21))
    assert _amounts(quote.due_now.lines) == [
        (LineKind.BASE, 2000),
        (LineKind.BASE, 2000),
        (LineKind.UNUSED_TIME, -710),  # 11 of May's 31 days
    ]
    assert quote.next_cycle is None


def test_a_purchase_with_an_end_just_ends() -> None:
    quote = quote_attach(None, PACK, START)
    bounded = bound_quote(quote, START + DAY)
    assert bounded.due_now == quote.due_now and bounded.ends_at == START + DAY


def test_a_plan_paid_up_to_its_end_is_credited_only_up_to_it() -> None:
    ends_at = START + 20 * DAY
    sub = _sub(PRO, expires_at=ends_at)
    assert paid_until(sub, Period(START, MAY)) == ends_at
    assert paid_until(_sub(PRO, expires_at=ends_at, canceled_at=START), Period(START, MAY)) is None
    assert paid_until(_sub(PRO, expires_at=MAY), Period(START, MAY)) is None
    # cancelled (or switched) on day 10: the credit is for days 10 to 20, the rest was never paid
    cancel = quote_cancel(sub, START + 10 * DAY, immediately=True)
    assert _amounts(cancel.due_now.lines) == [(LineKind.UNUSED_TIME, -667)]
    upgrade = quote_attach(sub, PREMIUM, START + 10 * DAY)
    assert (LineKind.UNUSED_TIME, -667) in _amounts(upgrade.due_now.lines)
