"""What a priced item costs for a number of units.

Units are rounded up to whole ``billing_units`` packs before pricing. Tier bounds count total units
including the item's free ``included`` units, so the billable range is ``(included, included + units]``.
Results are exact Decimals in major units; rounding to minor units happens once per invoice line.
"""

from __future__ import annotations

from decimal import Decimal

from .model import ItemPrice, PlanItem, TierBehavior
from .money import ceil_int

_ZERO = Decimal(0)


def round_up_to_units(units: Decimal, billing_units: Decimal) -> Decimal:
    """``units`` rounded up to a multiple of ``billing_units`` (101 with packs of 100 -> 200)."""
    if units <= 0:
        return _ZERO
    return ceil_int(units / billing_units) * billing_units


def price_units(price: ItemPrice, included: Decimal, units: Decimal) -> Decimal:
    """Exact cost of ``units`` billable units sitting above ``included`` free units."""
    billable = round_up_to_units(units, price.billing_units)
    if billable <= 0:
        return _ZERO
    if not price.tiers:
        return (billable / price.billing_units) * (price.amount or _ZERO)
    if price.tier_behavior is TierBehavior.VOLUME:
        return _volume(price, included, billable)
    return _graduated(price, included, billable)


def _graduated(price: ItemPrice, included: Decimal, billable: Decimal) -> Decimal:
    low, high = included, included + billable
    total = _ZERO
    band_start = _ZERO
    for tier in price.tiers:
        band_end = tier.to
        start = max(low, band_start)
        end = high if band_end is None else min(high, band_end)
        if end > start:
            total += (end - start) / price.billing_units * tier.amount
            if tier.flat_amount:
                total += tier.flat_amount
        if band_end is None or band_end >= high:
            break
        band_start = band_end
    return total


def _volume(price: ItemPrice, included: Decimal, billable: Decimal) -> Decimal:
    position = included + billable
    chosen = price.tiers[-1]
    for tier in price.tiers:
        if tier.to is None or position <= tier.to:
            chosen = tier
            break
    return billable / price.billing_units * chosen.amount + (chosen.flat_amount or _ZERO)


def prepaid_packs(item: PlanItem, quantity: Decimal) -> int:
    """Packs bought for a requested total ``quantity`` (which includes ``included``)."""
    assert item.price is not None
    extra = max(_ZERO, quantity - item.included)
    return ceil_int(extra / item.price.billing_units) if extra > 0 else 0


def prepaid_units(item: PlanItem, quantity: Decimal) -> Decimal:
    """Prepaid grant for a requested total quantity: whole packs times ``billing_units``."""
    assert item.price is not None
    return prepaid_packs(item, quantity) * item.price.billing_units


def prepaid_cost(item: PlanItem, quantity: Decimal) -> Decimal:
    """Exact cost of the packs a requested total ``quantity`` buys."""
    assert item.price is not None
    return price_units(item.price, item.included, prepaid_units(item, quantity))


def overage_units(item: PlanItem, usage: Decimal) -> Decimal:
    """Usage above the item's included units (what a usage-based price bills in arrears)."""
    return max(_ZERO, usage - item.included)


def overage_cost(item: PlanItem, usage: Decimal) -> Decimal:
    """Exact cost of the usage above ``included`` at this item's rate."""
    assert item.price is not None
    return price_units(item.price, item.included, overage_units(item, usage))
