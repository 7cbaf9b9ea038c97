"""A plan item as stored, from a request's item (in ``items`` or a variant's ``customize.add_items``):
defaults filled in, its price (amount or tiers), reset, proration and rollover checked against its
feature; and the key Autumn matches two items by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autumn_sdk._generated.json_types import PlanItemJson
from autumn_sdk._generated.models import PlanItemParams, UpdatePlanVariantCustomizeAddItem
from reference_server.errors import feature_not_found, invalid
from reference_server.service.extra_fields import extra_field
from reference_server.store.catalog import Catalog

PlanItem = PlanItemParams | UpdatePlanVariantCustomizeAddItem
"""A plan item as a request gives it: in ``items``, or in a variant's ``customize.add_items``."""


def normalize_item(item: PlanItem, cat: Catalog) -> dict[str, Any]:
    """An item as stored and returned: defaults filled in, validated against its feature."""
    fid = item.feature_id
    feature = cat.features.get(fid)
    if feature is None:
        raise feature_not_found(fid)
    if feature.type == "boolean":
        return {"feature_id": fid, "included": 0, "unlimited": False, "reset": None, "price": None}
    out: dict[str, Any] = {
        "feature_id": fid,
        "included": item.included or 0,
        "unlimited": bool(item.unlimited),
        "reset": None,
        "price": None,
    }
    reset = item.reset
    if reset is not None and feature.consumable:
        out["reset"] = {"interval": reset.interval, "interval_count": reset.interval_count or 1}
    price = item.price
    if price is not None:
        has_amount, has_tiers = price.amount is not None, bool(price.tiers)
        if has_amount == has_tiers:
            raise invalid("price: exactly one of amount or tiers must be given", "invalid_inputs")
        method = price.billing_method
        p: dict[str, Any] = {
            "interval": price.interval,
            "interval_count": price.interval_count or 1,
            "billing_units": price.billing_units or 1,
            "billing_method": method,
            "max_purchase": price.max_purchase,
        }
        if price.tiers:
            p["tiers"] = [tier.model_dump(mode="json", exclude_unset=True) for tier in price.tiers]
            p["tier_behavior"] = price.tier_behavior or "graduated"
            first_to = price.tiers[0].to
            if first_to != "inf" and first_to is not None and float(first_to) <= out["included"]:
                raise invalid("price.tiers[0].to must be greater than included", "invalid_inputs")
        else:
            p["amount"] = price.amount
        if (
            out["reset"]
            and method != "prepaid"
            and (
                out["reset"]["interval"] != p["interval"]
                or out["reset"]["interval_count"] != p["interval_count"]
            )
        ):
            raise invalid("reset.interval must match price.interval for usage-based prices", "invalid_inputs")
        if item.proration is not None and method == "usage_based" and feature.consumable:
            # Seats (non-consumable) prorate their usage-based price on changes; consumables bill usage.
            raise invalid("proration cannot be set on a usage_based price", "invalid_inputs")
        out["price"] = p
        if out["reset"] is None and feature.consumable and p["interval"] != "one_off":
            out["reset"] = {"interval": p["interval"], "interval_count": p["interval_count"]}
    if item.proration is not None:
        out["proration"] = item.proration.model_dump(mode="json", exclude_unset=True)
    ro = item.rollover
    if ro is not None:
        if not feature.consumable:
            raise invalid("rollover is not allowed on a non-consumable feature", "invalid_product_item")
        if out["reset"] is None or out["reset"]["interval"] == "one_off":
            raise invalid("rollover requires a reset interval", "invalid_product_item")
        out["rollover"] = {"max": ro.max, "expiry_duration_type": ro.expiry_duration_type}
        if ro.max_percentage is not None:
            out["rollover"]["max_percentage"] = ro.max_percentage
        if ro.expiry_duration_length is not None:
            out["rollover"]["expiry_duration_length"] = ro.expiry_duration_length
    display = extra_field(item, "display")  # not in the spec; stored items carry it
    if display:
        out["display"] = display
    return out


def item_json(item: Mapping[str, Any]) -> PlanItemJson:
    """A stored item (:func:`normalize_item`'s) as plans answer it: its keys of the Plan answer."""
    out: PlanItemJson = {
        "feature_id": item["feature_id"],
        "included": item["included"],
        "unlimited": item["unlimited"],
        "reset": item["reset"],
        "price": item["price"],
    }
    if "proration" in item:
        out["proration"] = item["proration"]
    if "rollover" in item:
        out["rollover"] = item["rollover"]
    if "display" in item:
        out["display"] = item["display"]
    return out


def item_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    """Autumn's match key of a plan item: feature, billing method, interval and interval count."""
    price, reset = item.get("price") or {}, item.get("reset") or {}
    return (
        item["feature_id"],
        price.get("billing_method"),
        price.get("interval") or reset.get("interval"),
        price.get("interval_count") or reset.get("interval_count"),
    )


def matches_item_filter(item: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    """Whether ``item`` matches a ``remove_items`` filter (Autumn's ``PlanItemFilter``): every field the
    filter gives must match the item's match key; an item without an interval count has count 1, and
    ``interval`` matches the price's interval, else the reset's."""
    price, reset = item.get("price") or {}, item.get("reset") or {}
    actual = {
        "feature_id": item.get("feature_id"),
        "billing_method": price.get("billing_method"),
        "interval": price.get("interval") or reset.get("interval"),
        "interval_count": price.get("interval_count") or reset.get("interval_count") or 1,
    }
    return all(flt.get(key) is None or flt[key] == value for key, value in actual.items())
