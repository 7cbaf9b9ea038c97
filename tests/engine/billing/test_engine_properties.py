"""Property tests of the pure engine: periods always contain their moment, proration is bounded."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from reference_server.engine.billing import (
    BasePrice,
    Interval,
    Plan,
    PlanItem,
    Subscription,
    period_at,
    quote_attach,
    quote_cancel,
)
from reference_server.engine.billing.periods import boundary
from tests.engine.builders import ms

ANCHORS = st.integers(min_value=ms(2000, 1, 1), max_value=ms(2090, 1, 1))
INTERVALS = st.sampled_from([i for i in Interval if i is not Interval.ONE_OFF])
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10000), places=2)


@settings(max_examples=300, deadline=None)
@given(
    anchor=ANCHORS,
    offset=st.integers(min_value=-(10**11), max_value=10**11),
    interval=INTERVALS,
    count=st.integers(min_value=1, max_value=4),
)
def test_the_period_at_a_moment_contains_it(anchor: int, offset: int, interval: Interval, count: int) -> None:
    at = anchor + offset
    period = period_at(anchor, at, interval, count)
    assert period.start <= at < period.end


@settings(max_examples=200, deadline=None)
@given(
    anchor=ANCHORS,
    interval=INTERVALS,
    count=st.integers(min_value=1, max_value=3),
    k=st.integers(min_value=0, max_value=40),
)
def test_boundaries_increase_and_come_from_the_anchor(
    anchor: int, interval: Interval, count: int, k: int
) -> None:
    assert boundary(anchor, interval, count, k) < boundary(anchor, interval, count, k + 1)
    assert boundary(anchor, interval, count, 0) == anchor


def monthly(plan_id: str, amount: Decimal) -> Plan:
    return Plan(plan_id, plan_id, price=BasePrice(amount, Interval.MONTH), items=(PlanItem("m"),))


START, END = ms(2026, 4, 1), ms(2026, 5, 1)


@settings(max_examples=300, deadline=None)
@given(old=PRICES, extra=PRICES, elapsed=st.integers(min_value=0, max_value=END - START - 1))
def test_upgrade_charge_is_the_prorated_difference_within_a_cent(
    old: Decimal, extra: Decimal, elapsed: int
) -> None:
    new = old + extra
    current = Subscription(
        monthly("a", old), anchor=START, started_at=START, period_start=START, period_end=END
    )
    quote = quote_attach(current, monthly("b", new), START + elapsed)
    share = Decimal(END - START - elapsed) / Decimal(END - START)
    exact = (new - old) * 100 * share
    assert abs(Decimal(quote.total) - exact) <= 1
    assert quote.total >= 0
    assert sum(line.amount for line in quote.due_now.lines if line.amount < 0) >= -old * 100


@settings(max_examples=200, deadline=None)
@given(price=PRICES, elapsed=st.integers(min_value=0, max_value=END - START - 1))
def test_downgrades_cost_nothing_now_and_cancel_refunds_at_most_the_price(
    price: Decimal, elapsed: int
) -> None:
    current = Subscription(
        monthly("a", price + 1), anchor=START, started_at=START, period_start=START, period_end=END
    )
    assert quote_attach(current, monthly("b", price), START + elapsed).total == 0
    refund = quote_cancel(current, START + elapsed, immediately=True).due_now.total
    assert -(price + 1) * 100 <= refund <= 0
