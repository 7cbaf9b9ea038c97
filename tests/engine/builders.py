"""Builders of the engine's billing values for the tests: UTC dates in Unix milliseconds and plans
(amounts as the API states them, in major units), shared by the pure engine tests and the billing
integration tests that hand plans to a processor or a page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from reference_server.engine.billing import (
    BasePrice,
    BillingMethod,
    FreeTrial,
    Interval,
    ItemPrice,
    Plan,
    PlanItem,
)


def ms(year: int, month: int, day: int, hour: int = 0) -> int:
    """Unix milliseconds for a UTC date."""
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc).timestamp() * 1000)


D = Decimal


def messages(included: int = 100) -> PlanItem:
    return PlanItem("messages", "Messages", included=D(included))


def usage_item(included: int = 100, amount: str = "0.5", units: int = 1) -> PlanItem:
    return PlanItem(
        "messages",
        "Messages",
        included=D(included),
        price=ItemPrice(Interval.MONTH, BillingMethod.USAGE_BASED, amount=D(amount), billing_units=D(units)),
    )


def prepaid_item(
    included: int = 0, amount: str = "10", units: int = 100, feature: str = "messages"
) -> PlanItem:
    return PlanItem(
        feature,
        feature.capitalize(),
        included=D(included),
        price=ItemPrice(Interval.MONTH, BillingMethod.PREPAID, amount=D(amount), billing_units=D(units)),
    )


def monthly(plan_id: str, amount: str | None, *items: PlanItem, **kwargs: object) -> Plan:
    price = BasePrice(D(amount), Interval.MONTH) if amount is not None else None
    return Plan(plan_id, plan_id.capitalize(), price=price, items=items, **kwargs)  # type: ignore[arg-type]


FREE = monthly("free", None, messages(100), auto_enable=True)
PRO = monthly("pro", "20", messages(100))
PREMIUM = monthly("premium", "50", messages(500))
PRO_TRIAL = monthly("pro", "20", messages(100), free_trial=FreeTrial(14, "day", card_required=True))
