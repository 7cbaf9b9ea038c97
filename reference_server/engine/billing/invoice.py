"""Invoice lines and drafts produced by the billing engine."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from .money import DEFAULT_CURRENCY
from .periods import Period


class LineKind(str, Enum):
    """Why a line exists; processors and the portal group lines by it."""

    BASE = "base"
    PREPAID = "prepaid"
    USAGE = "usage"
    UNUSED_TIME = "unused_time"
    REMAINING_TIME = "remaining_time"
    QUANTITY_CHANGE = "quantity_change"
    CUSTOM = "custom"
    """A line the caller gave (``custom_line_items``), in place of the computed ones."""
    DISCOUNT = "discount"
    """A coupon's reduction of the invoice's charges (negative; :mod:`.discounts`)."""


@dataclass(frozen=True)
class LineDiscount:
    """A coupon's share of one line: ``amount`` is what it changes the line by, in signed minor units
    (negative on a charge; positive on a credit it takes back). The invoice itself carries it as a
    :attr:`LineKind.DISCOUNT` line; previews show it on the line, as Autumn's line items do."""

    reward_id: str
    reward_name: str
    amount: int
    percent_off: Decimal | None = None


@dataclass(frozen=True)
class LineItem:
    """One invoice line. ``amount`` is signed integer minor units (credits are negative)."""

    kind: LineKind
    display_name: str
    description: str
    amount: int
    plan_id: str
    feature_id: str | None = None
    quantity: Decimal = Decimal(1)
    period: Period | None = None
    discounts: tuple[LineDiscount, ...] = ()
    """The coupons' shares of this line (``amount`` stays the line before them; :mod:`.discounts`)."""


@dataclass(frozen=True)
class InvoiceDraft:
    """Lines due together, in one currency."""

    lines: tuple[LineItem, ...] = ()
    currency: str = DEFAULT_CURRENCY

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True)
class UsageLine:
    """A usage-based item that will be billed in arrears at the end of ``period``."""

    display_name: str
    plan_id: str
    feature_id: str
    period: Period | None


@dataclass(frozen=True)
class NextCycle:
    """What the customer pays at the next renewal (fixed lines) and what is metered until then."""

    starts_at: int
    invoice: InvoiceDraft
    usage_lines: tuple[UsageLine, ...] = ()
