"""Plans CRUD (billing-semantics §1.2-1.3): create, update (with versions and variants), delete; the
Plan object as the API shows it, and in the legacy "product" shape."""

from __future__ import annotations

from typing import Literal

from autumn_sdk._generated.json_types import (
    CheckPreviewProductItemJson,
    CheckPreviewProductJson,
    PlanCustomerEligibilityJson,
    PlanJson,
    SuccessResponseJson,
)
from autumn_sdk._generated.models import CreatePlanParams, DeletePlanParams, UpdatePlanParams
from reference_server.engine.entitlements import Feature
from reference_server.errors import ApiError, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.features import ID_RE
from reference_server.service.license_links import save_plan_links
from reference_server.service.plan_items import item_json
from reference_server.service.plan_stripe import create_plan_in_stripe
from reference_server.service.plan_values import (
    VALUE_KEYS,
    controls_json,
    created_values,
    free_trial_json,
    plan_from_values,
    price_json,
    updated_values,
)
from reference_server.service.plan_variants import (
    check_variant_request,
    link_base,
    update_variants,
    variant_details,
)
from reference_server.service.plan_versions import (
    apply_to_other_versions,
    check_version_flags,
    pricing_changed,
)
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Catalog, Plan, bump_catalog_version


def create_plan(ctx: Ctx, params: CreatePlanParams) -> PlanJson:
    plan_id = params.plan_id
    if not ID_RE.match(plan_id):
        raise invalid("plan_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        if cat.versions(plan_id):
            raise ApiError(400, "product_already_exists", f"Product {plan_id} already exists")
        values = created_values(params, cat)
        now = ctx.now()
        pk = catalog_repo.insert_plan(conn, ctx.tenant, plan_id, 1, now, values)
        created = plan_from_values(pk, plan_id, 1, now, ctx.tenant.env, values)
        save_plan_links(conn, cat, created, params.licenses, now=now)
        if params.create_in_stripe:
            create_plan_in_stripe(ctx, conn, pk, now)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return plan_json(created, cat)


def _with_is_default(params: UpdatePlanParams) -> UpdatePlanParams:
    """``is_default`` is Autumn's name for ``auto_enable`` on plans.update (the default plan a new
    customer gets); sending both with different values is refused."""
    if params.is_default is None:
        return params
    if params.auto_enable is not None and params.auto_enable != params.is_default:
        raise invalid("is_default and auto_enable disagree; send one of them", "invalid_inputs")
    return params.model_copy(update={"auto_enable": params.is_default})


def update_plan(ctx: Ctx, params: UpdatePlanParams) -> PlanJson:
    plan_id = params.plan_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        current = cat.plans.get(plan_id)
        if current is None:
            raise plan_not_found(plan_id)
        params = _with_is_default(params)
        sent = params.model_fields_set
        check_variant_request(current, params)
        values = updated_values(current, params, cat)
        new_id = params.new_plan_id or plan_id
        if new_id != plan_id and cat.versions(new_id):
            raise ApiError(400, "product_already_exists", f"Product {new_id} already exists")
        changes_pricing = pricing_changed(current, values)
        has_customers = catalog_repo.customer_count(conn, [current.pk]) > 0
        disable_version = bool(params.disable_version)
        force_version = bool(params.force_version)
        all_versions = bool(params.all_versions)
        check_version_flags(disable_version, force_version, all_versions)
        # force_version versions whenever the request changes anything (like Autumn, a request
        # carrying nothing but plan_id and the flag is a no-op); all_versions edits in place.
        forced = force_version and any(key in sent for key in (*VALUE_KEYS, "new_plan_id"))
        if forced or (changes_pricing and has_customers and not disable_version and not all_versions):
            catalog_repo.update_version(conn, current.pk, {"is_latest": False})
            version = current.version + 1
            pk = catalog_repo.insert_plan(
                conn, ctx.tenant, new_id, version, ctx.now(), values, base_plan_id=current.base_plan_id
            )
        else:
            pk, version = current.pk, current.version
            catalog_repo.update_version(conn, pk, {"id": new_id, **values})
            if new_id != plan_id:
                catalog_repo.update_plan_versions(conn, ctx.tenant, plan_id, {"id": new_id})
                catalog_repo.rename_customer_plans(
                    conn, plan_id, [p.pk for p in cat.versions(plan_id)], new_id
                )
        if "metadata" in sent:  # metadata is the plan's, not a version's: every version carries it
            catalog_repo.update_plan_versions(conn, ctx.tenant, new_id, {"metadata": values["metadata"]})
        if all_versions:
            apply_to_other_versions(
                conn, [p for p in cat.versions(plan_id) if p.pk != current.pk], current, values
            )
        created = current.created_at if pk == current.pk else ctx.now()
        updated = plan_from_values(pk, new_id, version, created, ctx.tenant.env, values, current.base_plan_id)
        update_variants(
            ctx, conn, cat, params, current, updated, (force_version, disable_version, all_versions)
        )
        if "base_plan_id" in sent:
            updated.base_plan_id = link_base(conn, ctx, cat, updated, params.base_plan_id)
        save_plan_links(conn, cat, updated, params.licenses, now=ctx.now(), previous_pk=current.pk)
        if params.create_in_stripe:
            create_plan_in_stripe(ctx, conn, pk, ctx.now())
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return plan_json(updated, cat)


def delete_plan(ctx: Ctx, params: DeletePlanParams) -> SuccessResponseJson:
    plan_id = params.plan_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        versions = cat.versions(plan_id)
        if not versions:
            raise plan_not_found(plan_id)
        targets = versions if params.all_versions else [versions[-1]]
        count = catalog_repo.customer_count(conn, [p.pk for p in targets])
        if count:
            raise invalid(
                f"Product {plan_id} has {count} customers on it and cannot be deleted. Archive it instead."
            )
        catalog_repo.delete_versions(conn, [p.pk for p in targets])
        if len(targets) == len(versions):  # the base is gone: its variants become plans of their own
            catalog_repo.rebase_variants(conn, ctx.tenant, plan_id, None)
        if not params.all_versions and len(versions) > 1:
            catalog_repo.update_version(conn, versions[-2].pk, {"is_latest": True})
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
    return {"success": True}


def plan_json(
    plan: Plan, cat: Catalog, *, eligibility: PlanCustomerEligibilityJson | None = None
) -> PlanJson:
    """A plan as the API answers it, from its stored values."""
    out: PlanJson = {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "group": plan.group,
        "version": plan.version,
        "add_on": plan.add_on,
        "auto_enable": plan.auto_enable,
        "price": price_json(plan.price) if plan.price is not None else None,
        "items": [item_json(it) for it in plan.items],
        "created_at": plan.created_at,
        "env": "live" if plan.env == "live" else "sandbox",
        "archived": plan.archived,
        "base_variant_id": plan.base_plan_id,
        "config": {"ignore_past_due": bool(plan.config.get("ignore_past_due", False))},
        "metadata": plan.metadata,
    }
    if plan.billing_controls:
        out["billing_controls"] = controls_json(plan.billing_controls)
    if plan.free_trial:
        out["free_trial"] = free_trial_json(plan.free_trial)
    if plan.base_plan_id is not None:
        out["variant_details"] = variant_details(plan, plan.base_plan_id, cat)
    if eligibility is not None:
        out["customer_eligibility"] = eligibility
    return out


def _legacy_feature_type(f: Feature | None) -> Literal["boolean", "single_use", "continuous_use"] | None:
    if f is None:
        return None
    if f.type == "boolean":
        return "boolean"
    return (
        "single_use" if f.consumable or f.type in ("credit_system", "ai_credit_system") else "continuous_use"
    )


def product_json(plan: Plan, cat: Catalog) -> CheckPreviewProductJson:
    """A plan in Autumn's legacy "product" shape, which check previews still use."""
    items: list[CheckPreviewProductItemJson] = []
    if plan.price:
        items.append(
            {
                "type": "price",
                "price": plan.price["amount"],
                "interval": None if plan.price["interval"] == "one_off" else plan.price["interval"],
                "interval_count": plan.price.get("interval_count") or 1,
            }
        )
    for it in plan.items:
        f = cat.features.get(it["feature_id"])
        price = it.get("price")
        reset = it.get("reset")
        interval = reset.get("interval") if reset else None
        entry: CheckPreviewProductItemJson = {
            "type": "priced_feature" if price else "feature",
            "feature_id": it["feature_id"],
            "feature_type": _legacy_feature_type(f),
            "included_usage": "inf" if it.get("unlimited") else it.get("included", 0),
            "interval": interval if interval != "one_off" else None,
            "interval_count": (reset.get("interval_count") if reset else None) or 1,
        }
        if price:
            entry["usage_model"] = "prepaid" if price["billing_method"] == "prepaid" else "pay_per_use"
            entry["billing_units"] = price.get("billing_units", 1)
            if price.get("tiers"):
                entry["tiers"] = price["tiers"]
            else:
                entry["price"] = price.get("amount")
        items.append(entry)
    trial = plan.free_trial
    return {
        "id": plan.id,
        "name": plan.name,
        "group": plan.group or None,
        "env": "live" if plan.env == "live" else "sandbox",
        "is_add_on": plan.add_on,
        "is_default": plan.auto_enable,
        "archived": plan.archived,
        "version": plan.version,
        "created_at": plan.created_at,
        "items": items,
        "free_trial": {
            "duration": trial.get("duration_type") or "month",  # the catalogue's is never null
            "length": trial["duration_length"],
            "unique_fingerprint": bool(trial.get("unique_fingerprint", False)),
            "card_required": trial.get("card_required") is not False,
        }
        if trial
        else None,
        "base_variant_id": plan.base_plan_id,
        "properties": {"is_free": plan.is_free, "is_one_off": plan.is_one_off, "has_trial": bool(trial)},
    }
