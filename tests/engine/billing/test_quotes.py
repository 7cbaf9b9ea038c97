"""Attach, upgrade, downgrade, cancel, quantity and renewal quotes, to the cent."""

from __future__ import annotations

import pytest

from reference_server.engine.billing import (
    BasePrice,
    BillingRuleError,
    ChangeKind,
    FreeTrial,
    Interval,
    LineKind,
    OnDecrease,
    OnIncrease,
    Plan,
    PlanItem,
    Proration,
    Subscription,
    choose_trial,
    classify,
    quote_attach,
    quote_cancel,
    quote_quantity_change,
    quote_renewal,
)
from reference_server.engine.billing.attach_quotes import check_multi_attach, combine_due
from reference_server.engine.billing.closing_quotes import quote_final_usage
from reference_server.engine.billing.periods import add_interval
from reference_server.engine.billing.seats import quote_seat_change
from tests.engine.builders import (
    FREE,
    PREMIUM,
    PRO,
    PRO_TRIAL,
    D,
    messages,
    monthly,
    ms,
    prepaid_item,
    usage_item,
)

START = ms(2026, 4, 1)  # April has 30 days
HALFWAY = ms(2026, 4, 16)
END = ms(2026, 5, 1)


def sub(plan: Plan, start: int = START, **kwargs: object) -> Subscription:
    interval = plan.billing_interval()
    end = add_interval(start, *interval) if interval else None
    return Subscription(
        plan, anchor=start, started_at=start, period_start=start if end else None, period_end=end, **kwargs
    )  # type: ignore[arg-type]


def test_new_paid_plan_charges_the_full_price_for_one_period() -> None:
    quote = quote_attach(None, PRO, START)
    assert quote.kind is ChangeKind.NEW
    assert quote.total == 2000
    assert quote.period is not None and (quote.period.start, quote.period.end) == (START, END)
    assert quote.next_cycle is not None
    assert quote.next_cycle.starts_at == END
    assert quote.next_cycle.invoice.total == 2000


def test_free_plan_costs_nothing_and_has_no_period() -> None:
    quote = quote_attach(None, FREE, START)
    assert quote.total == 0
    assert quote.period is None
    assert quote.next_cycle is None


def test_upgrade_halfway_charges_fifteen() -> None:
    quote = quote_attach(sub(PRO), PREMIUM, HALFWAY)
    assert quote.kind is ChangeKind.UPGRADE
    amounts = {line.kind: line.amount for line in quote.due_now.lines}
    assert amounts == {LineKind.UNUSED_TIME: -1000, LineKind.REMAINING_TIME: 2500}
    assert quote.total == 1500
    assert quote.anchor == START  # the billing anchor is kept
    assert quote.outgoing_ends_at == HALFWAY
    assert quote.next_cycle is not None and quote.next_cycle.invoice.total == 5000


def test_upgrade_at_cycle_start_charges_the_difference() -> None:
    assert quote_attach(sub(PRO), PREMIUM, START).total == 3000


def test_upgrade_rounds_each_line_once_half_up() -> None:
    at = START + 10 * 86_400_000 + 3_600_000  # 19 days 23 hours left of 30 days
    quote = quote_attach(sub(PRO), PREMIUM, at)
    credit, charge = (line.amount for line in quote.due_now.lines)
    assert credit == -1331  # 2000 * 479/720 = 1330.55 -> 1331
    assert charge == 3326  # 5000 * 479/720 = 3326.38 -> 3326
    assert quote.total == 1995


def test_free_to_paid_is_an_upgrade_with_a_fresh_anchor() -> None:
    quote = quote_attach(sub(FREE), PRO, HALFWAY)
    assert quote.kind is ChangeKind.UPGRADE
    assert quote.total == 2000
    assert quote.anchor == HALFWAY


def test_upgrade_bills_outstanding_usage_at_the_old_rate() -> None:
    old = monthly("payg", "10", usage_item(included=100, amount="0.5"))
    new = monthly("scale", "40", usage_item(included=1000, amount="0.1"))
    current = sub(old, usage={"messages": D(160)})
    quote = quote_attach(current, new, HALFWAY)
    usage = [line for line in quote.due_now.lines if line.kind is LineKind.USAGE]
    assert [(line.amount, line.quantity, line.plan_id) for line in usage] == [(3000, 60, "payg")]
    assert quote.total == 3000 - 500 + 2000


def test_monthly_to_yearly_upgrade_restarts_the_anchor() -> None:
    yearly = Plan("pro_year", "Pro yearly", price=BasePrice(D(200), Interval.YEAR), items=(messages(100),))
    assert classify(PRO, yearly) is ChangeKind.UPGRADE
    quote = quote_attach(sub(PRO), yearly, HALFWAY)
    assert quote.total == 20000 - 1000
    assert quote.period is not None and quote.period.start == HALFWAY
    assert quote.period.end == ms(2027, 4, 16)


def test_downgrade_is_scheduled_for_the_period_end_and_costs_nothing_now() -> None:
    quote = quote_attach(sub(PREMIUM), PRO, HALFWAY)
    assert quote.kind is ChangeKind.DOWNGRADE
    assert quote.total == 0
    assert quote.scheduled
    assert quote.starts_at == END
    assert quote.outgoing_ends_at == END
    assert quote.next_cycle is not None and quote.next_cycle.invoice.total == 2000


def test_paid_to_free_is_a_downgrade() -> None:
    quote = quote_attach(sub(PRO), FREE, HALFWAY)
    assert quote.kind is ChangeKind.DOWNGRADE
    assert quote.total == 0
    assert quote.starts_at == END


def test_plan_schedule_overrides_the_timing() -> None:
    assert quote_attach(sub(PREMIUM), PRO, HALFWAY, plan_schedule="immediate").kind is ChangeKind.UPGRADE
    assert quote_attach(sub(PRO), PREMIUM, HALFWAY, plan_schedule="end_of_cycle").kind is ChangeKind.DOWNGRADE


def test_same_plan_is_refused_unless_it_is_canceling() -> None:
    with pytest.raises(BillingRuleError) as caught:
        quote_attach(sub(PRO), PRO, HALFWAY)
    assert (caught.value.status, caught.value.code) == (409, "plan_already_attached")
    reactivation = quote_attach(sub(PRO, canceled_at=START + 1, expires_at=END), PRO, HALFWAY)
    assert reactivation.kind is ChangeKind.SAME
    assert reactivation.total == 0


def test_equal_prices_count_as_upgrade_and_usage_only_plans_upgrade() -> None:
    twin = monthly("twin", "20", messages(50))
    assert classify(PRO, twin) is ChangeKind.UPGRADE
    a = monthly("a", None, usage_item(amount="0.5"))
    b = monthly("b", None, usage_item(amount="0.1"))
    assert classify(a, b) is ChangeKind.UPGRADE
    assert classify(FREE, FREE) is ChangeKind.SAME


def test_add_ons_and_one_offs_are_always_new() -> None:
    add_on = monthly("extra", "5", messages(200), add_on=True)
    one_off = Plan("pack", "Pack", price=BasePrice(D(10), Interval.ONE_OFF), items=(messages(50),))
    assert quote_attach(sub(PRO), add_on, HALFWAY).kind is ChangeKind.NEW
    quote = quote_attach(sub(PRO), one_off, HALFWAY)
    assert quote.kind is ChangeKind.NEW
    assert quote.total == 1000
    assert quote.next_cycle is None


def test_prepaid_feature_quantities_are_charged_upfront() -> None:
    plan = monthly("pro", "20", prepaid_item(included=0, amount="10", units=100))
    quote = quote_attach(None, plan, START, {"messages": D(100)})
    assert quote.total == 3000  # scenario P1: preview total 30
    assert quote.prepaid_quantities == {"messages": 100}
    prepaid = [line for line in quote.due_now.lines if line.kind is LineKind.PREPAID]
    assert [(line.amount, line.quantity) for line in prepaid] == [(1000, 100)]


def test_prepaid_quantity_rounds_up_to_whole_packs() -> None:
    plan = monthly("pro", None, prepaid_item(included=500, amount="10", units=1000))
    quote = quote_attach(None, plan, START, {"messages": D(3000)})
    assert quote.total == 3000  # 2500 extra -> 3 packs of 1000


def test_unknown_prepaid_feature_is_rejected() -> None:
    with pytest.raises(BillingRuleError) as caught:
        quote_attach(None, PRO, START, {"messages": D(10)})
    assert caught.value.code == "invalid_inputs"


def test_upgrade_keeps_the_previous_recurring_prepaid_quantity() -> None:
    old = monthly("pro", "20", prepaid_item(amount="10", units=100))
    new = monthly("premium", "50", prepaid_item(amount="8", units=100))
    current = sub(old, prepaid_quantities={"messages": D(300)})
    quote = quote_attach(current, new, START)
    assert quote.prepaid_quantities == {"messages": 300}
    assert quote.total == (5000 + 2400) - (2000 + 3000)


def test_trial_charges_nothing_now_and_bills_at_trial_end() -> None:
    trial = choose_trial(PRO_TRIAL, START, trial_used=False)
    assert trial is not None
    quote = quote_attach(None, PRO_TRIAL, START, trial=trial)
    assert quote.total == 0
    assert quote.trial_ends_at == START + 14 * 86_400_000
    assert quote.anchor == quote.trial_ends_at
    assert quote.next_cycle is not None
    assert (quote.next_cycle.starts_at, quote.next_cycle.invoice.total) == (quote.trial_ends_at, 2000)


def test_trial_is_used_once_unless_customized() -> None:
    assert choose_trial(PRO_TRIAL, START, trial_used=True) is None
    custom = choose_trial(PRO_TRIAL, START, trial_used=True, override=FreeTrial(1, "month"))
    assert custom is not None and custom.ends_at == ms(2026, 5, 1)
    assert choose_trial(PRO_TRIAL, START, trial_used=False, skip_trial=True) is None


def test_trial_end_renewal_bills_the_first_full_period() -> None:
    trial_end = START + 14 * 86_400_000
    trialing = Subscription(
        PRO_TRIAL,
        anchor=trial_end,
        started_at=START,
        period_start=START,
        period_end=trial_end,
        trial_ends_at=trial_end,
    )
    renewal = quote_renewal(trialing, trial_end)
    assert renewal.invoice.total == 2000
    assert renewal.next_period.start == trial_end
    assert renewal.next_period.end == add_interval(trial_end, Interval.MONTH)


def test_downgrade_during_trial_waits_for_the_trial_end() -> None:
    trial_end = START + 14 * 86_400_000
    trialing = Subscription(
        PREMIUM,
        anchor=trial_end,
        started_at=START,
        period_start=START,
        period_end=trial_end,
        trial_ends_at=trial_end,
    )
    assert quote_attach(trialing, PRO, START + 86_400_000).starts_at == trial_end


def test_renewal_bills_arrears_usage_and_the_next_period() -> None:
    plan = monthly("payg", "10", usage_item(included=100, amount="0.5", units=1))
    current = sub(plan, usage={"messages": D(200)})
    renewal = quote_renewal(current, END)
    assert {line.kind: line.amount for line in renewal.invoice.lines} == {
        LineKind.USAGE: 5000,
        LineKind.BASE: 1000,
    }
    assert (renewal.next_period.start, renewal.next_period.end) == (END, ms(2026, 6, 1))


def test_cancel_immediately_credits_unused_time_and_bills_usage() -> None:
    plan = monthly("payg", "20", usage_item(included=100, amount="0.5"))
    quote = quote_cancel(sub(plan, usage={"messages": D(110)}), HALFWAY, immediately=True)
    assert quote.ends_at == HALFWAY
    assert quote.due_now.total == 500 - 1000


def test_cancel_at_period_end_charges_nothing_now() -> None:
    quote = quote_cancel(sub(PRO), HALFWAY, immediately=False)
    assert quote.ends_at == END
    assert quote.due_now.total == 0
    assert quote_final_usage(sub(PRO)).total == 0


def seats_plan(on_increase: OnIncrease, on_decrease: OnDecrease) -> Plan:
    item = prepaid_item(included=0, amount="10", units=1, feature="seats")
    item = type(item)(
        item.feature_id,
        item.feature_name,
        item.included,
        price=item.price,
        proration=Proration(on_increase, on_decrease),
    )
    return monthly("team", None, item)


@pytest.mark.parametrize(
    ("on_increase", "due", "deferred"),
    [
        (OnIncrease.PRORATE_IMMEDIATELY, 2500, 0),
        (OnIncrease.BILL_IMMEDIATELY, 5000, 0),
        (OnIncrease.PRORATE_NEXT_CYCLE, 0, 2500),
        (OnIncrease.BILL_NEXT_CYCLE, 0, 0),
    ],
)
def test_quantity_increase_follows_on_increase(on_increase: OnIncrease, due: int, deferred: int) -> None:
    plan = seats_plan(on_increase, OnDecrease.PRORATE_IMMEDIATELY)
    current = sub(plan, prepaid_quantities={"seats": D(5)})
    quote = quote_quantity_change(current, {"seats": D(10)}, HALFWAY)
    assert quote.total == due
    assert quote.balance_deltas == {"seats": 5}
    assert quote.deferred.total == deferred  # what the update stores for the next renewal invoice
    assert quote.next_cycle is not None
    assert quote.next_cycle.invoice.total == 10000 + deferred


@pytest.mark.parametrize(
    ("on_decrease", "due", "deferred"),
    [
        (OnDecrease.PRORATE_IMMEDIATELY, -2500, 0),
        (OnDecrease.PRORATE, -2500, 0),
        (OnDecrease.PRORATE_NEXT_CYCLE, 0, -2500),
        (OnDecrease.NONE, 0, 0),
        (OnDecrease.NO_PRORATIONS, 0, 0),
    ],
)
def test_quantity_decrease_follows_on_decrease(on_decrease: OnDecrease, due: int, deferred: int) -> None:
    plan = seats_plan(OnIncrease.PRORATE_IMMEDIATELY, on_decrease)
    current = sub(plan, prepaid_quantities={"seats": D(10)})
    quote = quote_quantity_change(current, {"seats": D(5)}, HALFWAY)
    assert quote.total == due
    assert quote.deferred.total == deferred
    assert quote.next_cycle is not None
    assert quote.next_cycle.invoice.total == 5000 + deferred


def test_quantity_change_with_proration_none_bills_nothing() -> None:
    plan = seats_plan(OnIncrease.BILL_IMMEDIATELY, OnDecrease.PRORATE)
    current = sub(plan, prepaid_quantities={"seats": D(5)})
    quote = quote_quantity_change(current, {"seats": D(7)}, HALFWAY, proration_behavior="none")
    assert quote.total == 0
    assert quote.prepaid_quantities == {"seats": 7}


def test_billing_units_delta_changes_the_balance_by_whole_packs() -> None:
    plan = monthly("pro", None, prepaid_item(included=0, amount="12", units=12))
    current = sub(plan, prepaid_quantities={"messages": D(120)})
    quote = quote_quantity_change(current, {"messages": D(180)}, START)
    assert quote.balance_deltas == {"messages": 60}
    assert quote.total == 6000


def test_multi_attach_combines_and_validates_groups() -> None:
    add_on = monthly("extra", "20", messages(10), add_on=True)
    one_off = Plan("pack", "Pack", price=BasePrice(D(10), Interval.ONE_OFF), add_on=True)
    check_multi_attach([PRO, add_on, one_off], [])
    quotes = [quote_attach(None, add_on, START), quote_attach(None, one_off, START)]
    assert combine_due(quotes).total == 3000
    with pytest.raises(BillingRuleError):
        check_multi_attach([PRO, PREMIUM], [])
    with pytest.raises(BillingRuleError):
        check_multi_attach([PRO], ["pro"])


def usage_seats_plan(on_increase: OnIncrease, on_decrease: OnDecrease) -> Plan:
    """$20/month with 2 seats included and $10 per extra seat, usage-based on a continuous feature."""
    item = PlanItem(
        "seats",
        "Seats",
        included=D(2),
        price=usage_item(included=2, amount="10").price,
        proration=Proration(on_increase, on_decrease),
        continuous=True,
    )
    return monthly("team", "20", item)


@pytest.mark.parametrize(
    ("on_increase", "on_decrease", "added", "removed", "deferred"),
    [
        (OnIncrease.PRORATE_IMMEDIATELY, OnDecrease.PRORATE_IMMEDIATELY, 500, -500, (0, 0)),
        (OnIncrease.BILL_IMMEDIATELY, OnDecrease.NONE, 1000, 0, (0, 0)),
        (OnIncrease.PRORATE_NEXT_CYCLE, OnDecrease.NO_PRORATIONS, 0, 0, (500, 0)),
        (OnIncrease.BILL_NEXT_CYCLE, OnDecrease.PRORATE_NEXT_CYCLE, 0, 0, (0, -500)),
    ],
)
def test_seat_changes_follow_the_items_proration(
    on_increase: OnIncrease,
    on_decrease: OnDecrease,
    added: int,
    removed: int,
    deferred: tuple[int, int],
) -> None:
    current = sub(usage_seats_plan(on_increase, on_decrease))
    assert quote_seat_change(current, "seats", D(1), D(2), HALFWAY).total == 0  # still within included
    add = quote_seat_change(current, "seats", D(2), D(3), HALFWAY)
    remove = quote_seat_change(current, "seats", D(3), D(2), HALFWAY)
    assert (add.total, remove.total) == (added, removed)
    # *_next_cycle: the prorated half month waits for the renewal invoice instead
    assert (add.deferred.total, remove.deferred.total) == deferred


def test_seats_are_not_billed_during_a_trial_and_renew_upfront() -> None:
    plan = usage_seats_plan(OnIncrease.PRORATE_IMMEDIATELY, OnDecrease.PRORATE_IMMEDIATELY)
    trialing = sub(plan, trial_ends_at=END)
    assert quote_seat_change(trialing, "seats", D(2), D(5), HALFWAY).total == 0
    in_use = sub(plan, usage={"seats": D(5)})
    renewal = quote_renewal(in_use, END)
    # No arrears for seats (paid upfront): the next period's base plus 3 seats beyond the included.
    assert [line.amount for line in renewal.invoice.lines] == [2000, 3000]
    assert quote_final_usage(in_use).total == 0
