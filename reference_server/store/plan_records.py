"""What a :class:`~reference_server.store.catalog.Plan` record holds in its price, items and free trial.

Not the API's ``PlanPriceJson`` / ``PlanItemJson`` / ``PlanFreeTrialJson``: a record is a catalogue
version (``plans.price``, ``plans.items``, ``plans.free_trial``, normalized by
``service.plan_values`` / ``service.plan_items``, close to the API's shape), or a customized version
(``billing.convert.customized_plan``, stored in ``subscription_billing.custom_plan``) whose parts are
the request's ``customize`` JSON as sent (``model_dump(mode="json", exclude_unset=True)``): keys the
client left out are missing, keys it sent as null are null.  Paid license seats add items of their own
(``billing.license_seats``).  So every key a request may omit is ``NotRequired`` here, and nullable
where the request allows null.  ``config`` is ``PlanConfigJson`` as it is: the stored value is
exactly the API's.  ``billing_controls`` is the engine's ``plan_controls.ControlsRecord`` (normalized by
``engine.plan_controls.normalize``).
"""

from __future__ import annotations

from typing import Literal, TypedDict

from typing_extensions import NotRequired

from autumn_sdk._generated.json_types import (
    PlanItemPriceTierAdditionalCurrencyJson,
    PlanItemProrationJson,
    PlanPriceAdditionalCurrencyJson,
    PlanPriceDisplayJson,
)
from reference_server.engine.plan_controls import ControlsRecord

PriceInterval = Literal["one_off", "week", "month", "quarter", "semi_annual", "year"]
ResetInterval = Literal["one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year"]


class BasePriceRecord(TypedDict):
    """A base price: ``{amount, interval[, interval_count]}`` in the catalogue, the request's
    ``BasePrice`` in a customized version."""

    amount: int | float
    interval: PriceInterval
    interval_count: NotRequired[int | float | None]
    additional_currencies: NotRequired[list[PlanPriceAdditionalCurrencyJson] | None]


class FreeTrialRecord(TypedDict):
    """A free trial: every key but ``on_end`` / ``unique_fingerprint`` in the catalogue, the
    request's ``FreeTrialParams`` in a customized version."""

    duration_length: int | float
    duration_type: NotRequired[Literal["day", "month", "year"] | None]
    card_required: NotRequired[bool | None]
    on_end: NotRequired[Literal["bill", "revert"] | None]
    unique_fingerprint: NotRequired[bool]


class ItemResetRecord(TypedDict):
    interval: ResetInterval
    interval_count: NotRequired[int | float | None]


class ItemPriceTierRecord(TypedDict):
    """A tier as the request gives it (the catalogue keeps the request's tiers as sent)."""

    to: int | float | Literal["inf"]
    amount: NotRequired[int | float | None]
    flat_amount: NotRequired[int | float | None]
    additional_currencies: NotRequired[list[PlanItemPriceTierAdditionalCurrencyJson] | None]


class ItemPriceRecord(TypedDict):
    """An item's price: the catalogue's has every key but one of ``amount`` / ``tiers``; a seat's
    has no ``max_purchase``; a customized one has what the request sends."""

    amount: NotRequired[int | float | None]
    additional_currencies: NotRequired[list[PlanPriceAdditionalCurrencyJson] | None]
    tiers: NotRequired[list[ItemPriceTierRecord] | None]
    tier_behavior: NotRequired[Literal["graduated", "volume"] | None]
    interval: PriceInterval
    interval_count: NotRequired[int | float | None]
    billing_units: NotRequired[int | float | None]
    billing_method: Literal["prepaid", "usage_based"]
    max_purchase: NotRequired[int | float | None]


class ItemRolloverRecord(TypedDict):
    max: NotRequired[int | float | None]
    max_percentage: NotRequired[int | float | None]
    expiry_duration_type: Literal["month", "forever"]
    expiry_duration_length: NotRequired[int | float | None]


class PlanItemRecord(TypedDict):
    """A plan item: the catalogue's always has ``included``, ``unlimited``, ``reset`` and ``price``
    (null when none); a seat item (``license_plan_name``) has no ``unlimited`` or ``reset``."""

    feature_id: str
    included: NotRequired[int | float | None]
    unlimited: NotRequired[bool | None]
    pooled: NotRequired[bool | None]
    reset: NotRequired[ItemResetRecord | None]
    price: NotRequired[ItemPriceRecord | None]
    proration: NotRequired[PlanItemProrationJson | None]
    rollover: NotRequired[ItemRolloverRecord | None]
    display: NotRequired[PlanPriceDisplayJson]
    """Not in the spec's request item; a catalogue item keeps the one sent."""
    license_plan_name: NotRequired[str]
    """A paid license seat's item only: the license plan's name, the engine's name for the line."""


class CustomPlanRecord(TypedDict):
    """``subscription_billing.custom_plan``: a customized plan's parts (``billing.convert.plan_snapshot``;
    without its paid seats' items), its only writer."""

    price: BasePriceRecord | None
    items: list[PlanItemRecord]
    free_trial: FreeTrialRecord | None


PlanControlsRecord = ControlsRecord
"""``plans.billing_controls``: the defaults a plan gives its customers (every list; no ``null`` inside)."""
