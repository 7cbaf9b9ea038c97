"""Money rounding, anchored periods and tier pricing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reference_server.engine.billing import Interval, ItemPrice, PlanItem, Tier, TierBehavior
from reference_server.engine.billing.model import BillingMethod
from reference_server.engine.billing.money import major_to_minor, minor_to_json, to_decimal
from reference_server.engine.billing.periods import add_months, boundary, next_boundary_after, period_at
from reference_server.engine.billing.pricing import (
    overage_cost,
    prepaid_cost,
    prepaid_packs,
    prepaid_units,
    price_units,
    round_up_to_units,
)
from tests.engine.builders import D, ms


def test_major_to_minor_is_exact_for_binary_unfriendly_floats() -> None:
    assert major_to_minor(0.1) == 10
    assert major_to_minor(19.99) == 1999
    assert major_to_minor(0.005) == 1  # half up
    assert major_to_minor(1000, "jpy") == 1000
    assert to_decimal(0.1) == Decimal("0.1")


def test_minor_to_json_gives_integers_when_whole() -> None:
    assert minor_to_json(3000) == 30
    assert isinstance(minor_to_json(3000), int)
    assert minor_to_json(1550) == 15.5
    assert minor_to_json(-1000) == -10


def test_month_end_anchor_clamps_without_drifting() -> None:
    anchor = ms(2026, 1, 31)
    assert boundary(anchor, Interval.MONTH, 1, 1) == ms(2026, 2, 28)
    assert boundary(anchor, Interval.MONTH, 1, 2) == ms(2026, 3, 31)
    assert boundary(anchor, Interval.MONTH, 1, 13) == ms(2027, 2, 28)
    assert add_months(ms(2024, 1, 31), 1) == ms(2024, 2, 29)


@pytest.mark.parametrize(
    ("interval", "count", "expected_end"),
    [
        (Interval.HOUR, 1, ms(2026, 1, 31, 1)),
        (Interval.DAY, 3, ms(2026, 2, 3)),
        (Interval.WEEK, 1, ms(2026, 2, 7)),
        (Interval.MONTH, 1, ms(2026, 2, 28)),
        (Interval.QUARTER, 1, ms(2026, 4, 30)),
        (Interval.SEMI_ANNUAL, 1, ms(2026, 7, 31)),
        (Interval.YEAR, 1, ms(2027, 1, 31)),
        (Interval.MONTH, 2, ms(2026, 3, 31)),
    ],
)
def test_first_period_end_for_each_interval(interval: Interval, count: int, expected_end: int) -> None:
    anchor = ms(2026, 1, 31)
    period = period_at(anchor, anchor, interval, count)
    assert period.start == anchor
    assert period.end == expected_end


def test_period_containing_a_later_moment() -> None:
    anchor = ms(2026, 1, 31)
    period = period_at(anchor, ms(2026, 3, 15), Interval.MONTH, 1)
    assert (period.start, period.end) == (ms(2026, 2, 28), ms(2026, 3, 31))
    assert next_boundary_after(anchor, ms(2026, 3, 31), Interval.MONTH) == ms(2026, 4, 30)
    assert period_at(anchor, ms(2026, 1, 1), Interval.MONTH, 1).end == anchor


def test_billing_units_round_up() -> None:
    assert round_up_to_units(D(101), D(100)) == 200
    assert round_up_to_units(D(0), D(100)) == 0


def test_graduated_tiers_example_from_the_docs() -> None:
    price = ItemPrice(
        Interval.MONTH,
        BillingMethod.USAGE_BASED,
        tiers=(Tier(D(1000), D("0.01")), Tier(D(10000), D("0.008")), Tier(None, D("0.005"))),
    )
    assert price_units(price, D(0), D(15000)) == D(107)


def test_graduated_tiers_count_included_units_in_their_bounds() -> None:
    price = ItemPrice(
        Interval.MONTH,
        BillingMethod.USAGE_BASED,
        tiers=(Tier(D(1000), D("0.01")), Tier(None, D("0.005"))),
    )
    # 100 free units: the first paid band holds 900 units (9.00), the next 1000 cost 0.005 each (5.00).
    assert price_units(price, D(100), D(1900)) == D(14)


def test_volume_tiers_price_everything_at_one_rate_plus_flat() -> None:
    price = ItemPrice(
        Interval.MONTH,
        BillingMethod.PREPAID,
        tiers=(Tier(D(100), D(1), D(5)), Tier(None, D("0.5"), D(20))),
        tier_behavior=TierBehavior.VOLUME,
    )
    assert price_units(price, D(0), D(50)) == D(55)
    assert price_units(price, D(0), D(200)) == D(120)


def test_prepaid_packs_round_up_and_exclude_included() -> None:
    item = PlanItem(
        "messages",
        included=D(500),
        price=ItemPrice(Interval.MONTH, BillingMethod.PREPAID, amount=D(10), billing_units=D(1000)),
    )
    assert prepaid_packs(item, D(3000)) == 3
    assert prepaid_units(item, D(3000)) == 3000
    assert prepaid_cost(item, D(3000)) == 30
    assert prepaid_packs(item, D(400)) == 0


def test_usage_overage_cost() -> None:
    item = PlanItem(
        "messages",
        included=D(100),
        price=ItemPrice(Interval.MONTH, BillingMethod.USAGE_BASED, amount=D("0.5")),
    )
    assert overage_cost(item, D(200)) == 50
    assert overage_cost(item, D(80)) == 0
