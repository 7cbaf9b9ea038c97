"""What a plan instance's Stripe Subscription should look like: computed from the instance, no I/O.

The API side (:mod:`~reference_server.processors.stripe.subscription_sync`) reads the instances and the
plan's Stripe Prices, asks this module for each :class:`Mirror`, and writes what differs to Stripe;
everything here is a function of its arguments, so it is unit-tested without a database or Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from reference_server.engine.billing.money import to_decimal
from reference_server.processors.stripe.catalog import FixedPrice, PlanObjects, fixed_prices
from reference_server.processors.stripe.metadata import with_server_keys
from reference_server.store.catalog import Plan
from reference_server.store.plan_records import BasePriceRecord, CustomPlanRecord, PlanItemRecord
from reference_server.store.stripe_mirror import MirroredInstance

SHORTEST_DAYS = {"day": 1, "week": 7, "month": 28, "year": 365}
"""The shortest length of one Stripe interval in days (the anchor must come before the first natural date)."""

MAX_TRIAL_DAYS = 730
"""The latest ``trial_end`` Stripe takes, in days from now."""

MIN_ANCHOR_DELAY_S = 3600
"""The earliest anchor, from Stripe's now: time for a failed pause to be set by the next sync first."""


@dataclass(frozen=True)
class Mirror:
    """What one plan instance's Stripe Subscription should be (``state`` is stored once written)."""

    instance_pk: int
    entity_pk: int | None
    group: str | None  # None for an add-on (never handed over to another plan)
    items: tuple[dict[str, Any], ...]  # {"key", "quantity", and "price" or "price_data"}
    metadata: dict[str, str]
    cancel_at_period_end: bool
    period_end: int | None  # ms, the server's
    recurring: tuple[str, int]
    trial_end: int | None = None  # ms, the server's, while the instance is on a free trial
    cancel_at: int | None = None  # ms, the server's, when it ends other than at its period end

    @property
    def state(self) -> dict[str, Any]:
        state = {
            "items": [dict(i) for i in self.items],
            "metadata": dict(self.metadata),
            "cancel_at_period_end": self.cancel_at_period_end,
            "entity_pk": self.entity_pk,
            "group": self.group,
        }
        if self.trial_end is not None:  # absent otherwise: rows written before trials stay current
            state["trial_end"] = self.trial_end
        if self.cancel_at is not None:  # likewise
            state["cancel_at"] = self.cancel_at
        return state


def packs(quantity: Decimal, included: Decimal, pack_units: Decimal) -> int:
    """The packs bought beyond what the plan includes (a started pack counts)."""
    extra = quantity - included
    if extra <= 0:
        return 0
    return int((extra / pack_units).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class BilledPlan:
    """What an instance is billed by (:func:`billed_plan`): a price and items (a
    :class:`~reference_server.processors.stripe.catalog.PricedVersion` to ``fixed_prices``)."""

    price: BasePriceRecord | None
    items: list[PlanItemRecord]


def item_included(plan: BilledPlan, feature_id: str | None) -> Decimal:
    """What the plan's prepaid item of ``feature_id`` includes for free."""
    for item in plan.items or []:
        price = item.get("price")
        if item.get("feature_id") == feature_id and price and price.get("billing_method") == "prepaid":
            return to_decimal(item.get("included") or 0)
    return Decimal(0)


def billed_plan(inst: MirroredInstance, plan: Plan) -> BilledPlan:
    """What the instance is billed by: its customized price and items, else the plan's."""
    custom: CustomPlanRecord | None = inst.custom_plan
    if not custom:
        return BilledPlan(plan.price, plan.items)
    return BilledPlan(custom.get("price"), custom.get("items") or [])


def wanted_prices(inst: MirroredInstance, plan: Plan) -> list[tuple[FixedPrice, int]]:
    """The instance's recurring fixed prices with their quantities (the base: the instance's quantity;
    a prepaid item: the packs bought); empty when nothing of it recurs."""
    billed = billed_plan(inst, plan)
    quantities = {k: to_decimal(v) for k, v in (inst.prepaid_quantities or {}).items()}
    wanted: list[tuple[FixedPrice, int]] = []
    for price in fixed_prices(billed):
        if price.recurring is None:
            continue
        if price.key == "base":
            quantity = max(1, int(inst.quantity or 1))
        else:
            feature = str(price.feature_id)
            quantity = packs(
                quantities.get(feature, Decimal(0)), item_included(billed, feature), price.pack_units
            )
        if quantity > 0:
            wanted.append((price, quantity))
    return wanted


def desired_mirror(
    inst: MirroredInstance,
    plan: Plan,
    wanted: list[tuple[FixedPrice, int]],
    objects: PlanObjects,
    customer_id: str,
    entity_id: str | None,
    now: int,
) -> Mirror:
    """The Stripe Subscription of an instance with recurring ``wanted`` prices (see
    :func:`wanted_prices`): the catalogue's Prices where the instance pays them, inline ``price_data``
    on the plan's Product where it was customized; only the first price's interval (Stripe bills one
    interval per subscription).  Its metadata: the server's keys naming the instance, over the caller's
    the instance carries (``processor_metadata``: the ``metadata`` of the attaches that made it)."""
    recurring = wanted[0][0].recurring
    assert recurring is not None
    catalog = {f.key: f for f in fixed_prices(plan)}
    items: list[dict[str, Any]] = []
    for price, quantity in wanted:
        if price.recurring != recurring:
            continue  # Stripe bills one interval per subscription
        item: dict[str, Any] = {"key": price.key, "quantity": quantity}
        stored = objects.prices.get(price.key)
        if catalog.get(price.key) == price and stored is not None:
            item["price"] = stored.stripe_id
        else:
            item["price_data"] = {
                "currency": price.currency,
                "product": objects.product,
                "unit_amount": price.unit_amount,
                "recurring": {"interval": recurring[0], "interval_count": recurring[1]},
            }
        items.append(item)
    server = {
        "autumn_customer_id": customer_id,
        "autumn_plan_id": inst.plan_id,
        "autumn_plan_version": str(plan.version),
        "autumn_instance_id": inst.subscription_id or f"sub_{inst.pk}",
        "autumn_env": str(plan.env),
    }
    if inst.entity_pk is not None:
        server["autumn_entity_id"] = str(entity_id)
    # the caller's keys (the attaches' ``metadata``) beside the server's, which win
    metadata = with_server_keys(dict(inst.processor_metadata or {}), server)
    trial_ends = inst.trial_ends_at if inst.trial_ends_at is not None and inst.trial_ends_at > now else None
    # An end: a cancellation at Stripe's period end (the trial's while trialing) is
    # ``cancel_at_period_end``; any other (``ends_at``, a later plan starting) is ``cancel_at``, as Autumn
    # sets a subscription's ``cancel_at`` to when its plan ends.
    ends = inst.expires_at
    period_end = trial_ends if trial_ends is not None else inst.current_period_end
    canceled = ends is not None and inst.canceled_at is not None and ends == (period_end or ends)
    return Mirror(
        instance_pk=inst.pk,
        entity_pk=inst.entity_pk,
        group=None if plan.add_on else str(plan.group or ""),
        items=tuple(items),
        metadata=metadata,
        cancel_at_period_end=canceled,
        period_end=inst.current_period_end,
        recurring=recurring,
        trial_end=trial_ends,
        cancel_at=None if canceled else ends,
    )


def anchor(mirror: Mirror, real_now: int) -> int:
    """The server's period end in seconds, kept where Stripe takes an anchor (see the API module)."""
    interval, count = mirror.recurring
    latest = real_now + SHORTEST_DAYS[interval] * count * 86_400 - 60
    earliest = real_now + MIN_ANCHOR_DELAY_S
    wanted = mirror.period_end // 1000 if mirror.period_end is not None else latest
    return max(earliest, min(wanted, latest))


def trial_end(mirror: Mirror, real_now: int) -> int:
    """The server's trial end in seconds, kept where Stripe takes a ``trial_end`` (in the future, at
    most 730 days away; from an hour ahead, like the anchor, so the pause is set before it ends)."""
    assert mirror.trial_end is not None
    wanted = mirror.trial_end // 1000
    return max(real_now + MIN_ANCHOR_DELAY_S, min(wanted, real_now + MAX_TRIAL_DAYS * 86_400))


def cancel_at(mirror: Mirror, real_now: int) -> int:
    """The server's end in seconds, kept where Stripe takes a ``cancel_at`` (in the future, from an
    hour ahead like the anchor: under a test clock the server's end may be in Stripe's past)."""
    assert mirror.cancel_at is not None
    return max(real_now + MIN_ANCHOR_DELAY_S, mirror.cancel_at // 1000)


def item_params(item: dict[str, Any]) -> dict[str, Any]:
    """A mirrored item as Stripe's subscription item parameters."""
    params: dict[str, Any] = {"quantity": item["quantity"], "metadata": {"autumn_price": item["key"]}}
    if "price" in item:
        params["price"] = item["price"]
    else:
        params["price_data"] = item["price_data"]
    return params


def same_price(existing: Any, item: dict[str, Any]) -> bool:
    """Whether a Stripe subscription item already charges the mirrored item's price."""
    price = existing.price
    if "price" in item:
        return bool(str(price.id) == item["price"])
    data = item["price_data"]
    recurring = price.recurring
    return bool(
        str(price.product) == data["product"]
        and int(price.unit_amount or -1) == data["unit_amount"]
        and str(price.currency) == data["currency"]
        and recurring is not None
        and (str(recurring.interval), int(recurring.interval_count))
        == (
            data["recurring"]["interval"],
            data["recurring"]["interval_count"],
        )
    )


def item_changes(existing: dict[str, Any], mirror: Mirror) -> list[dict[str, Any]]:
    """The ``items`` of the update bringing a subscription's items (by ``autumn_price`` key) to
    ``mirror``'s: new ones added, changed prices replaced, quantities set, the rest deleted."""
    left = dict(existing)
    changes: list[dict[str, Any]] = []
    for item in mirror.items:
        have = left.pop(item["key"], None)
        if have is None:
            changes.append(item_params(item))
        elif not same_price(have, item):
            changes.append({"id": str(have.id), **item_params(item)})
        elif int(have.quantity or 0) != item["quantity"]:
            changes.append({"id": str(have.id), "quantity": item["quantity"]})
    changes.extend({"id": str(gone.id), "deleted": True} for gone in left.values())
    return changes


__all__ = [
    "MAX_TRIAL_DAYS",
    "MIN_ANCHOR_DELAY_S",
    "SHORTEST_DAYS",
    "BilledPlan",
    "Mirror",
    "anchor",
    "billed_plan",
    "cancel_at",
    "desired_mirror",
    "item_changes",
    "item_included",
    "item_params",
    "packs",
    "same_price",
    "trial_end",
    "wanted_prices",
]
