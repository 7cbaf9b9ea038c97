"""Money as integer minor units.

Prices arrive as JSON numbers in major units (20 means $20). They are converted through ``str`` into
``Decimal`` so that 0.1 stays 0.1, and every charge is rounded once, half up, into integer minor units.
Summing integers afterwards keeps previews and real invoices identical to the cent.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from fractions import Fraction

_ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)

DEFAULT_CURRENCY = "usd"


def currency_exponent(currency: str) -> int:
    """Number of decimal places in the currency's minor unit (2 for usd, 0 for jpy)."""
    return 0 if currency.lower() in _ZERO_DECIMAL_CURRENCIES else 2


def to_decimal(value: int | float | str | Decimal) -> Decimal:
    """Exact decimal for an API number; floats go through their shortest repr, never binary expansion."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def round_half_up(value: Decimal | Fraction) -> int:
    """Round to the nearest integer, ties away from zero (the usual invoicing rule)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ceil_int(value: Decimal) -> int:
    """Smallest integer not below ``value``."""
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def major_to_minor(amount: int | float | str | Decimal, currency: str = DEFAULT_CURRENCY) -> int:
    """Convert a major-unit amount (possibly with sub-cent precision) to rounded minor units."""
    scaled = to_decimal(amount) * (Decimal(10) ** currency_exponent(currency))
    return round_half_up(scaled)


def exact_minor(amount: Decimal, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """Major-unit Decimal scaled to minor units without rounding (for sums rounded once at the end)."""
    return amount * (Decimal(10) ** currency_exponent(currency))


def minor_to_major(minor: int, currency: str = DEFAULT_CURRENCY) -> Decimal:
    """Exact major-unit Decimal for a minor-unit integer."""
    return Decimal(minor).scaleb(-currency_exponent(currency))


def minor_to_json(minor: int, currency: str = DEFAULT_CURRENCY) -> int | float:
    """JSON number in major units, as the API reports totals: 3000 cents -> 30, 1550 -> 15.5."""
    major = minor_to_major(minor, currency)
    if major == major.to_integral_value():
        return int(major)
    return float(major)
