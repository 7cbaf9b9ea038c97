"""A plan as plans.list answers it: the Plan answer, typed as the list's item.

Autumn's spec gives plans.list's item a schema of its own; it is the Plan answer's but for one
node, the tier of a variant's ``customize.add_items`` price (its ``to`` untyped and optional), so a
:class:`PlanJson` is copied into a :class:`ListPlansItemJson` key by key."""

from __future__ import annotations

from autumn_sdk._generated.json_types import (
    ListPlansItemJson,
    ListPlansItemVariantDetailsCustomizeAddItemJson,
    ListPlansItemVariantDetailsCustomizeAddItemPriceJson,
    ListPlansItemVariantDetailsCustomizeAddItemPriceTierJson,
    ListPlansItemVariantDetailsCustomizeJson,
    ListPlansItemVariantDetailsJson,
    PlanItemPriceTierJson,
    PlanJson,
    PlanVariantDetailsCustomizeAddItemJson,
    PlanVariantDetailsCustomizeAddItemPriceJson,
    PlanVariantDetailsCustomizeJson,
    PlanVariantDetailsJson,
)


def listed_plan(plan: PlanJson) -> ListPlansItemJson:
    out: ListPlansItemJson = {
        "id": plan["id"],
        "name": plan["name"],
        "description": plan["description"],
        "group": plan["group"],
        "version": plan["version"],
        "add_on": plan["add_on"],
        "auto_enable": plan["auto_enable"],
        "price": plan["price"],
        "items": plan["items"],
        "created_at": plan["created_at"],
        "env": plan["env"],
        "archived": plan["archived"],
        "base_variant_id": plan["base_variant_id"],
        "config": plan["config"],
        "metadata": plan["metadata"],
    }
    if "free_trial" in plan:
        out["free_trial"] = plan["free_trial"]
    if "variant_details" in plan:
        out["variant_details"] = _listed_details(plan["variant_details"])
    if "billing_controls" in plan:
        out["billing_controls"] = plan["billing_controls"]
    if "customer_eligibility" in plan:
        out["customer_eligibility"] = plan["customer_eligibility"]
    return out


def _listed_details(details: PlanVariantDetailsJson) -> ListPlansItemVariantDetailsJson:
    out: ListPlansItemVariantDetailsJson = {"base_plan_id": details["base_plan_id"]}
    if "customize" in details:
        out["customize"] = _listed_customize(details["customize"])
    return out


def _listed_customize(customize: PlanVariantDetailsCustomizeJson) -> ListPlansItemVariantDetailsCustomizeJson:
    out: ListPlansItemVariantDetailsCustomizeJson = {}
    if "price" in customize:
        out["price"] = customize["price"]
    if "add_items" in customize:
        out["add_items"] = [_listed_item(item) for item in customize["add_items"]]
    if "remove_items" in customize:
        out["remove_items"] = customize["remove_items"]
    if "free_trial" in customize:
        out["free_trial"] = customize["free_trial"]
    if "billing_controls" in customize:
        out["billing_controls"] = customize["billing_controls"]
    return out


def _listed_item(
    item: PlanVariantDetailsCustomizeAddItemJson,
) -> ListPlansItemVariantDetailsCustomizeAddItemJson:
    out: ListPlansItemVariantDetailsCustomizeAddItemJson = {"feature_id": item["feature_id"]}
    if "included" in item:
        out["included"] = item["included"]
    if "unlimited" in item:
        out["unlimited"] = item["unlimited"]
    if "pooled" in item:
        out["pooled"] = item["pooled"]
    if "reset" in item:
        out["reset"] = item["reset"]
    if "price" in item:
        out["price"] = _listed_price(item["price"])
    if "proration" in item:
        out["proration"] = item["proration"]
    if "rollover" in item:
        out["rollover"] = item["rollover"]
    return out


def _listed_price(
    price: PlanVariantDetailsCustomizeAddItemPriceJson,
) -> ListPlansItemVariantDetailsCustomizeAddItemPriceJson:
    out: ListPlansItemVariantDetailsCustomizeAddItemPriceJson = {
        "interval": price["interval"],
        "billing_method": price["billing_method"],
    }
    if "amount" in price:
        out["amount"] = price["amount"]
    if "additional_currencies" in price:
        out["additional_currencies"] = price["additional_currencies"]
    if "tiers" in price:
        out["tiers"] = [_listed_tier(tier) for tier in price["tiers"]]
    if "tier_behavior" in price:
        out["tier_behavior"] = price["tier_behavior"]
    if "interval_count" in price:
        out["interval_count"] = price["interval_count"]
    if "billing_units" in price:
        out["billing_units"] = price["billing_units"]
    if "max_purchase" in price:
        out["max_purchase"] = price["max_purchase"]
    return out


def _listed_tier(tier: PlanItemPriceTierJson) -> ListPlansItemVariantDetailsCustomizeAddItemPriceTierJson:
    out: ListPlansItemVariantDetailsCustomizeAddItemPriceTierJson = {
        "to": tier["to"],
        "amount": tier["amount"],
    }
    if "flat_amount" in tier:
        out["flat_amount"] = tier["flat_amount"]
    if "additional_currencies" in tier:
        out["additional_currencies"] = tier["additional_currencies"]
    return out
