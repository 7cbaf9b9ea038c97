"""Plan variants on plans.update: ``variants`` (created or updated directly), ``update_variant_ids``
(the base's change carried to them), ``base_plan_id`` (linking a plan to a base), and
``Plan.variant_details``.

A variant is a plan of its own (own id, versions and customers) linked to a base plan; its shape is
the base's with a ``customize`` patch applied (price, add_items, remove_items, free_trial).
``variant_details.customize`` is the patch that turns the base's latest version into the variant,
computed from the two plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    BasePriceJson,
    FreeTrialParamsJson,
    PlanItemFilterJson,
    PlanVariantDetailsCustomizeAddItemJson,
    PlanVariantDetailsCustomizeBillingControlsJson,
    PlanVariantDetailsCustomizeJson,
    PlanVariantDetailsJson,
)
from autumn_sdk._generated.models import (
    UpdatePlanParams,
    UpdatePlanVariant,
    UpdatePlanVariantCustomize,
)
from reference_server.engine.plan_controls import KEYS
from reference_server.errors import invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.features import ID_RE
from reference_server.service.license_links import save_plan_links
from reference_server.service.plan_items import filter_json, item_key, matches_item_filter, normalize_item
from reference_server.service.plan_values import (
    GivenValues,
    PlanValues,
    PricedParts,
    SettingKey,
    checked_values,
    config_value,
    free_trial_value,
    plan_from_values,
    price_json,
    price_value,
    priced_parts,
    reread,
    stored_values,
    updated_controls,
)
from reference_server.service.plan_versions import diffed_values, pricing_changed, save_version
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.plan_records import BasePriceRecord, FreeTrialRecord, PlanItemRecord

_VARIANT_BLOCKED_SETTINGS: tuple[SettingKey, ...] = ("description", "group", "add_on", "config", "metadata")
"""Settings a variant takes from its base: updating them on the variant itself is refused."""


_PROPAGATED_SETTINGS: tuple[SettingKey, ...] = ("description", "group", "add_on", "config", "metadata")
"""Settings a base's update copies to every variant (a variant keeps its own name)."""


def _item_filter(item: PlanItemRecord) -> PlanItemFilterJson:
    """The ``remove_items`` filter selecting exactly this item's match key."""
    feature_id, method, interval, count = item_key(item)
    out: PlanItemFilterJson = {"feature_id": feature_id}
    if method is not None:
        out["billing_method"] = method
    if interval is not None:
        out["interval"] = interval
        out["interval_count"] = int(count or 1)  # the spec's filter counts whole intervals
    return out


def _added_item(item: Mapping[str, Any]) -> PlanVariantDetailsCustomizeAddItemJson:
    """A stored item as ``customize.add_items`` answers it: its keys that are set (not null)."""
    out: PlanVariantDetailsCustomizeAddItemJson = {"feature_id": item["feature_id"]}
    if item.get("included") is not None:
        out["included"] = item["included"]
    if item.get("unlimited") is not None:
        out["unlimited"] = item["unlimited"]
    if item.get("reset") is not None:
        out["reset"] = item["reset"]
    if item.get("price") is not None:
        out["price"] = item["price"]
    if item.get("proration") is not None:
        out["proration"] = item["proration"]
    if item.get("rollover") is not None:
        out["rollover"] = item["rollover"]
    return out


def _base_price(price: BasePriceRecord | None) -> BasePriceJson | None:
    return price_json(price) if price is not None else None


def _trial_params(trial: FreeTrialRecord | None) -> FreeTrialParamsJson | None:
    """A stored free trial (``free_trial_value``'s: ``duration_type`` and ``card_required`` set) as
    ``customize.free_trial`` answers it."""
    if trial is None:
        return None
    out: FreeTrialParamsJson = {"duration_length": trial["duration_length"]}
    duration_type, card_required = trial.get("duration_type"), trial.get("card_required")
    if duration_type is not None:
        out["duration_type"] = duration_type
    if card_required is not None:
        out["card_required"] = card_required
    on_end = trial.get("on_end")
    if on_end is not None:
        out["on_end"] = on_end
    return out


def customize_between(base: PricedParts, variant: PricedParts) -> PlanVariantDetailsCustomizeJson:
    """The ``customize`` patch turning ``base`` into ``variant`` (both: price, items, free_trial)."""
    out: PlanVariantDetailsCustomizeJson = {}
    if variant["price"] != base["price"]:
        out["price"] = _base_price(variant["price"])
    base_items = {item_key(i): i for i in base["items"]}
    variant_items = {item_key(i): i for i in variant["items"]}
    removed = [_item_filter(i) for k, i in base_items.items() if variant_items.get(k) != i]
    added = [_added_item(i) for k, i in variant_items.items() if base_items.get(k) != i]
    if removed:
        out["remove_items"] = removed
    if added:
        out["add_items"] = added
    if variant["free_trial"] != base["free_trial"]:
        out["free_trial"] = _trial_params(variant["free_trial"])
    return out


def variant_details(plan: Plan, base_plan_id: str, cat: Catalog) -> PlanVariantDetailsJson:
    """``Plan.variant_details`` of a variant of ``base_plan_id``: its base and the patch from the
    base's latest version."""
    details: PlanVariantDetailsJson = {"base_plan_id": base_plan_id}
    base = cat.plans.get(base_plan_id)
    if base is not None:
        customize = customize_between(priced_parts(base), priced_parts(plan))
        controls = _controls_between(base.billing_controls or {}, plan.billing_controls or {})
        if controls:
            customize["billing_controls"] = controls
        details["customize"] = customize
    return details


def _controls_between(
    base: Mapping[str, Any], variant: Mapping[str, Any]
) -> PlanVariantDetailsCustomizeBillingControlsJson:
    """The ``billing_controls`` patch turning the base's controls into the variant's: each list that
    differs, as the variant has it (``[]`` for one the variant clears)."""
    differs = {key for key in KEYS if (variant.get(key) or []) != (base.get(key) or [])}
    out: PlanVariantDetailsCustomizeBillingControlsJson = {}
    if "auto_topups" in differs:
        out["auto_topups"] = variant.get("auto_topups") or []
    if "spend_limits" in differs:
        out["spend_limits"] = variant.get("spend_limits") or []
    if "usage_limits" in differs:
        out["usage_limits"] = variant.get("usage_limits") or []
    if "usage_alerts" in differs:
        out["usage_alerts"] = variant.get("usage_alerts") or []
    if "overage_allowed" in differs:
        out["overage_allowed"] = variant.get("overage_allowed") or []
    return out


def _customize(entry: UpdatePlanVariant) -> UpdatePlanVariantCustomize:
    """A ``variants`` entry's ``customize`` patch as its model: the spec also admits any object, which
    validation leaves a plain dict when it is empty or not a valid patch."""
    if isinstance(entry.customize, UpdatePlanVariantCustomize):
        return entry.customize
    try:
        return UpdatePlanVariantCustomize.model_validate(entry.customize)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise invalid(f"variants.customize.{where}: {error['msg']}", "invalid_inputs") from exc


def _customized_values(
    base_values: PlanValues, customize: UpdatePlanVariantCustomize, cat: Catalog, name: str
) -> PlanValues:
    """A variant's values: the base's with ``customize`` applied, under the variant's name."""
    sent = customize.model_fields_set
    items = [
        i
        for i in base_values["items"]
        if not any(matches_item_filter(i, filter_json(flt)) for flt in customize.remove_items or ())
    ]
    v = reread({**base_values, "items": items}, cat)
    v["name"] = name
    v["auto_enable"] = False
    if "price" in sent:
        v["price"] = price_value(customize.price)
    for raw in customize.add_items or ():
        added = normalize_item(raw, cat)
        v["items"] = [i for i in v["items"] if item_key(i) != item_key(added)] + [added]
    if "free_trial" in sent:
        v["free_trial"] = free_trial_value(customize.free_trial)
    if customize.billing_controls is not None:  # the base's controls, list by list as plans.update
        patch = customize.billing_controls.model_dump(mode="json", exclude_unset=True)
        v["billing_controls"] = updated_controls(v.get("billing_controls"), patch)
    return checked_values(v, cat)


def _variant_of(cat: Catalog, variant_id: str, base_id: str) -> Plan:
    variant = cat.plans.get(variant_id)
    if variant is None:
        raise plan_not_found(variant_id)
    if variant.base_plan_id != base_id:
        raise invalid(f"Plan {variant_id} is not a variant of {base_id}", "invalid_propagation_target")
    return variant


def _variant_versions(
    conn: Connection,
    plan: Plan,
    values: PlanValues,
    entry: UpdatePlanVariant | None,
    flags: tuple[bool, bool, bool],
) -> bool:
    """Whether a variant's update creates a new version: its own flags, then the base update's,
    then (as for any plan) whether it changed pricing under customers."""
    force_version, disable_version, all_versions = flags
    if entry is not None and entry.force_version:
        return True
    if entry is not None and entry.disable_version:
        return False
    if force_version:
        return True
    if disable_version or all_versions:
        return False
    return pricing_changed(plan, values) and catalog_repo.customer_count(conn, [plan.pk]) > 0


def _setting(key: str, value: Any) -> Any:
    """A setting as compared for a variant: empty group, description and metadata are one value,
    and config is its one flag."""
    if key == "config":
        return bool((value or {}).get("ignore_past_due", False))
    if key in ("group", "description", "metadata"):
        return value or None
    return bool(value) if key == "add_on" else value


def _sent_settings(params: UpdatePlanParams) -> dict[SettingKey, Any]:
    """The variant-blocked settings the request sends, in their stored form."""
    sent = params.model_fields_set
    values: dict[SettingKey, Any] = {
        "description": params.description,
        "group": params.group,
        "add_on": params.add_on,
        "config": config_value(params.config),
        "metadata": params.metadata,
    }
    return {key: values[key] for key in _VARIANT_BLOCKED_SETTINGS if key in sent}


def check_variant_request(plan: Plan, params: UpdatePlanParams) -> None:
    """Refuse what a variant cannot take directly, and variants of a plan becoming a variant."""
    is_variant = plan.base_plan_id is not None or bool(params.base_plan_id)
    if is_variant and (params.auto_enable or (plan.auto_enable and params.base_plan_id)):
        raise invalid("Variants cannot be the default plan.", "variant_cannot_be_default")
    if plan.base_plan_id is not None:
        current = stored_values(plan)
        for key, value in _sent_settings(params).items():
            if _setting(key, value) != _setting(key, current[key]):
                raise invalid(
                    f"Cannot update {key} directly on a variant plan.", "invalid_propagation_target"
                )
    if params.base_plan_id and (params.variants or params.update_variant_ids):
        raise invalid("Cannot create a variant from another variant.", "nested_variant_not_allowed")


def link_base(conn: Connection, ctx: Ctx, cat: Catalog, plan: Plan, base_id: str | None) -> str | None:
    """``base_plan_id`` on plans.update: link the plan (every version) to a base, or detach it."""
    if base_id is not None:
        base = cat.plans.get(base_id)
        if base is None:
            raise plan_not_found(base_id)
        if base_id == plan.id:
            raise invalid("A plan cannot be a variant of itself", "invalid_propagation_target")
        if base.base_plan_id is not None:
            raise invalid("Cannot create a variant from another variant.", "nested_variant_not_allowed")
        if any(p.base_plan_id == plan.id for p in cat.plans.values()):
            raise invalid(
                f"Plan {plan.id} has variants of its own and cannot become a variant",
                "nested_variant_not_allowed",
            )
    catalog_repo.update_plan_versions(conn, ctx.tenant, plan.id, {"base_plan_id": base_id})
    return base_id


def update_variants(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    params: UpdatePlanParams,
    before: Plan,
    base: Plan,
    flags: tuple[bool, bool, bool],
) -> None:
    """``variants`` (direct updates and creations), ``update_variant_ids`` (the base's diff) and the
    base's settings, which every variant follows."""
    entries = list(params.variants or [])
    propagate = list(params.update_variant_ids or [])
    if (entries or propagate) and before.base_plan_id is not None:
        raise invalid("Cannot create a variant from another variant.", "nested_variant_not_allowed")
    by_id: dict[str, UpdatePlanVariant] = {}
    for entry in entries:
        vid = entry.variant_plan_id
        if entry.force_version and entry.disable_version:
            raise invalid("Cannot use both force_version and disable_version", "conflicting_version_flags")
        if vid in by_id:
            raise invalid(f"Variant {vid} appears twice in variants", "invalid_inputs")
        if vid in (before.id, base.id):
            raise invalid("A plan cannot be a variant of itself", "invalid_propagation_target")
        by_id[vid] = entry
    base_values = stored_values(base)
    done: set[str] = set()
    for vid, entry in by_id.items():
        existing = cat.plans.get(vid)
        if existing is None:
            if cat.versions(vid):
                raise invalid(f"Product {vid} already exists.", "product_already_exists", 409)
            if not entry.name:
                raise invalid(
                    f"Variant {vid} does not exist. Provide name to create it.", "invalid_propagation_target"
                )
            if base.archived:
                raise invalid("Cannot fork an archived base plan.", "cannot_fork_archived_base")
            if not ID_RE.match(vid):
                raise invalid("variant_plan_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
            values = _customized_values(base_values, _customize(entry), cat, entry.name)
            now = ctx.now()
            pk = catalog_repo.insert_plan(conn, ctx.tenant, vid, 1, now, values, base_plan_id=base.id)
            created = plan_from_values(pk, vid, 1, now, ctx.tenant.env, values, base.id)
            save_plan_links(conn, cat, created, None, now=now)
        else:
            variant = _variant_of(cat, vid, before.id)
            values = _customized_values(base_values, _customize(entry), cat, entry.name or variant.name)
            values["archived"] = variant.archived
            values["auto_enable"] = variant.auto_enable
            versions = _variant_versions(conn, variant, values, entry, flags)
            save_version(ctx, conn, variant, values, new_version=versions)
        done.add(vid)
    settings = tuple(k for k in _PROPAGATED_SETTINGS if base_values[k] != getattr(before, k))
    for vid in dict.fromkeys(propagate):
        if vid in done:
            continue
        variant = _variant_of(cat, vid, before.id)
        diffed: GivenValues = {
            **stored_values(variant),
            **diffed_values(variant, before, base_values, settings),
        }
        values = checked_values(reread(diffed, cat), cat) | {"archived": variant.archived}
        versions = _variant_versions(conn, variant, values, None, flags)
        save_version(ctx, conn, variant, values, new_version=versions)
        done.add(vid)
    if settings:
        patch: dict[str, object] = {k: base_values[k] for k in settings}
        for variant in cat.plans.values():
            if variant.base_plan_id == before.id and variant.id not in done:
                catalog_repo.update_plan_versions(conn, ctx.tenant, variant.id, patch)
    if base.id != before.id:
        catalog_repo.rebase_variants(conn, ctx.tenant, before.id, base.id)
