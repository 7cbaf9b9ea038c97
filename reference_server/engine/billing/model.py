"""Plain inputs of the billing engine: plans, prices, items and subscriptions.

The server core maps its stored rows onto these frozen dataclasses; the engine never touches I/O, so every
billing rule can be unit-tested with literal values. Amounts are ``Decimal`` major units exactly as the API
states them (20 means $20, 0.008 is allowed); quantities are ``Decimal`` feature units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from .money import DEFAULT_CURRENCY
from .periods import APPROX_DAYS, Interval


class BillingMethod(str, Enum):
    PREPAID = "prepaid"
    USAGE_BASED = "usage_based"


class TierBehavior(str, Enum):
    GRADUATED = "graduated"
    VOLUME = "volume"


class OnIncrease(str, Enum):
    BILL_IMMEDIATELY = "bill_immediately"
    PRORATE_IMMEDIATELY = "prorate_immediately"
    PRORATE_NEXT_CYCLE = "prorate_next_cycle"
    BILL_NEXT_CYCLE = "bill_next_cycle"


class OnDecrease(str, Enum):
    PRORATE = "prorate"
    PRORATE_IMMEDIATELY = "prorate_immediately"
    PRORATE_NEXT_CYCLE = "prorate_next_cycle"
    NONE = "none"
    NO_PRORATIONS = "no_prorations"


@dataclass(frozen=True)
class Tier:
    """One price band. ``to`` counts total units including the item's ``included``; None is "inf"."""

    to: Decimal | None
    amount: Decimal = Decimal(0)
    flat_amount: Decimal | None = None


@dataclass(frozen=True)
class ItemPrice:
    """Price of a plan item: ``amount`` per ``billing_units`` or ``tiers``."""

    interval: Interval
    billing_method: BillingMethod
    amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    tier_behavior: TierBehavior = TierBehavior.GRADUATED
    interval_count: int = 1
    billing_units: Decimal = Decimal(1)
    max_purchase: Decimal | None = None

    @property
    def recurring(self) -> bool:
        return self.interval is not Interval.ONE_OFF


@dataclass(frozen=True)
class Proration:
    on_increase: OnIncrease = OnIncrease.PRORATE_IMMEDIATELY
    on_decrease: OnDecrease = OnDecrease.PRORATE_IMMEDIATELY


@dataclass(frozen=True)
class PlanItem:
    """A feature grant, optionally priced."""

    feature_id: str
    feature_name: str | None = None
    included: Decimal = Decimal(0)
    unlimited: bool = False
    price: ItemPrice | None = None
    proration: Proration = field(default_factory=Proration)
    # A non-consumable feature (seats): a usage-based price bills the units in use up front each
    # period, and changes mid-period follow ``proration`` (Autumn's prorated continuous use).
    continuous: bool = False

    @property
    def display_name(self) -> str:
        return self.feature_name or self.feature_id

    @property
    def prepaid(self) -> bool:
        return self.price is not None and self.price.billing_method is BillingMethod.PREPAID

    @property
    def usage_based(self) -> bool:
        return self.price is not None and self.price.billing_method is BillingMethod.USAGE_BASED


@dataclass(frozen=True)
class BasePrice:
    amount: Decimal
    interval: Interval
    interval_count: int = 1

    @property
    def recurring(self) -> bool:
        return self.interval is not Interval.ONE_OFF


@dataclass(frozen=True)
class FreeTrial:
    duration_length: int
    duration_type: str = "month"
    card_required: bool = True
    on_end: str = "bill"


@dataclass(frozen=True)
class Plan:
    """A plan version as the engine needs it."""

    id: str
    name: str
    price: BasePrice | None = None
    items: tuple[PlanItem, ...] = ()
    group: str = ""
    add_on: bool = False
    auto_enable: bool = False
    free_trial: FreeTrial | None = None
    version: int = 1
    currency: str = DEFAULT_CURRENCY

    @property
    def priced_items(self) -> tuple[PlanItem, ...]:
        return tuple(item for item in self.items if item.price is not None)

    @property
    def is_free(self) -> bool:
        """No base price and no feature prices."""
        return self.price is None and not self.priced_items

    @property
    def is_one_off(self) -> bool:
        """Every price is a one-time price (and there is at least one)."""
        intervals = self._price_intervals()
        return bool(intervals) and all(i is Interval.ONE_OFF for i in intervals)

    @property
    def has_fixed_price(self) -> bool:
        """A base price or a prepaid item: something charged up front rather than in arrears."""
        return self.price is not None or any(item.prepaid for item in self.items)

    def billing_interval(self) -> tuple[Interval, int] | None:
        """The interval the subscription renews on: the base price's, else the first recurring item's."""
        if self.price is not None and self.price.recurring:
            return self.price.interval, self.price.interval_count
        for item in self.priced_items:
            assert item.price is not None
            if item.price.recurring:
                return item.price.interval, item.price.interval_count
        return None

    def item_for(self, feature_id: str) -> PlanItem | None:
        for item in self.items:
            if item.feature_id == feature_id:
                return item
        return None

    def _price_intervals(self) -> list[Interval]:
        intervals = [self.price.interval] if self.price is not None else []
        intervals.extend(item.price.interval for item in self.priced_items if item.price is not None)
        return intervals


def interval_days(interval: Interval, interval_count: int) -> float:
    """Approximate length, used to order intervals (a year is "longer" than a month)."""
    return APPROX_DAYS[interval] * interval_count if interval is not Interval.ONE_OFF else 0.0


@dataclass(frozen=True)
class Subscription:
    """A customer's attached instance of a plan, as far as billing needs it.

    ``prepaid_quantities`` are total desired units per prepaid feature (including ``included``), the same
    number the API's ``feature_quantities[].quantity`` carries. ``usage`` is the usage recorded for each
    usage-based feature in the current period (including the ``included`` part).
    """

    plan: Plan
    anchor: int
    started_at: int
    period_start: int | None = None
    period_end: int | None = None
    prepaid_quantities: Mapping[str, Decimal] = field(default_factory=dict)
    usage: Mapping[str, Decimal] = field(default_factory=dict)
    trial_ends_at: int | None = None
    canceled_at: int | None = None
    expires_at: int | None = None
    quantity: int = 1

    def trialing_at(self, at: int) -> bool:
        return self.trial_ends_at is not None and at < self.trial_ends_at

