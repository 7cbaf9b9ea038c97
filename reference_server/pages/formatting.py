"""How the pages write money, dates, plan prices and people: ``$20.00/month``, ``2026-01-31``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlsplit

from reference_server.engine.billing.money import currency_exponent, minor_to_major
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.plan_records import BasePriceRecord

_CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_money(minor: int, currency: str) -> str:
    """``$20.00``, ``-$10.00``, ``¥1000``; unknown currencies as ``20.00 CHF``."""
    major = minor_to_major(abs(minor), currency)
    sign = "-" if minor < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(currency.lower())
    places = currency_exponent(currency)
    text = f"{major:,.{places}f}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def format_date(ms: float | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def price_label(price: BasePriceRecord | None, currency: str = "usd") -> str | None:
    """A plan's base price as people read it: ``$20.00/month``, ``$99.00 once``; None when free."""
    if not price or price.get("amount") in (None, 0):
        return None
    minor = int(Decimal(str(price["amount"])) * 10 ** currency_exponent(currency))
    amount = format_money(minor, currency)
    interval = str(price.get("interval") or "month")
    if interval == "one_off":
        return f"{amount} once"
    count = int(price.get("interval_count") or 1)
    return f"{amount}/{interval}" if count == 1 else f"{amount} every {count} {interval}s"


def customer_label(customer: CustomerRef) -> str:
    return customer.email or customer.name or customer.id


def app_origin(url: str | None) -> str | None:
    """``https://app.example.com`` of a success URL: where "back to the app" goes."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/"
