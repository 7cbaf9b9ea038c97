"""Plans CRUD (billing-semantics §1.2-1.3): create, update with versions and variants, delete; the
Plan object as the API shows it."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from autumn_sdk._generated.models import (
    BasePrice,
    BillingControlsParams,
    CreatePlanParams,
    DeletePlanParams,
    FreeTrialParams,
    PlanConfig,
    PlanItemFilter,
    PlanItemParams,
    UpdatePlanParams,
    UpdatePlanVariant,
    UpdatePlanVariantCustomize,
    UpdatePlanVariantCustomizeAddItem,
)
from reference_server.engine.entitlements import Feature
from reference_server.engine.plan_controls import check_plan_controls
from reference_server.engine.plan_controls import normalize as normalize_plan_controls
from reference_server.engine.usage_limits import validation_error as usage_limit_error
from reference_server.errors import ApiError, feature_not_found, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.features import ID_RE
from reference_server.service.license_links import save_plan_links
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Catalog, Plan, bump_catalog_version

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
    display = (item.model_extra or {}).get("display")  # not in the spec; stored items carry it
    if display:
        out["display"] = display
    return out


def plan_json(
    plan: Plan, cat: Catalog, *, expand_features: bool = False, eligibility: dict[str, Any] | None = None
) -> dict[str, Any]:
    items = []
    for it in plan.items:
        item = dict(it)
        if expand_features and it["feature_id"] in cat.features:
            f = cat.features[it["feature_id"]]
            item["feature"] = {
                "id": f.id,
                "name": f.name,
                "type": "boolean"
                if f.type == "boolean"
                else f.type
                if f.type in ("credit_system", "ai_credit_system")
                else ("single_use" if f.consumable else "continuous_use"),
                "archived": f.archived,
            }
        items.append(item)
    out: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "description": plan.description,
        "group": plan.group,
        "version": plan.version,
        "add_on": plan.add_on,
        "auto_enable": plan.auto_enable,
        "price": plan.price,
        "items": items,
        "created_at": plan.created_at,
        "env": plan.env,
        "archived": plan.archived,
        "base_variant_id": plan.base_plan_id,
        "config": {"ignore_past_due": bool(plan.config.get("ignore_past_due", False))},
        "metadata": plan.metadata,
    }
    if plan.billing_controls:
        out["billing_controls"] = plan.billing_controls
    if plan.free_trial:
        out["free_trial"] = {
            **plan.free_trial,
            "duration_type": plan.free_trial.get("duration_type") or "month",
            "card_required": plan.free_trial.get("card_required") is not False,
        }
    if plan.base_plan_id is not None:
        out["variant_details"] = variant_details(plan, cat)
    if eligibility is not None:
        out["customer_eligibility"] = eligibility
    return out


def plan_billing_controls(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plan's ``billing_controls`` as stored (None: none), or 400 for what Autumn refuses."""
    controls = normalize_plan_controls(raw)
    if controls is None:
        return None
    message = check_plan_controls(controls) or usage_limit_error(controls["usage_limits"])
    if message is not None:
        raise invalid(message, "invalid_inputs")
    return controls


def _updated_controls(current: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any] | None:
    """plans.update: each control list sent replaces the plan's (``[]`` clears it); the rest stay."""
    if patch is None:
        return current
    return {**(current or {}), **{key: value for key, value in patch.items() if value is not None}}


def _price_value(price: BasePrice | None) -> dict[str, Any] | None:
    """A plan's base price as stored."""
    if price is None:
        return None
    return {
        "amount": price.amount,
        "interval": price.interval,
        **({"interval_count": price.interval_count} if price.interval_count else {}),
    }


def _free_trial_value(free_trial: FreeTrialParams | None) -> dict[str, Any] | None:
    """A plan's free trial as stored."""
    if free_trial is None:
        return None
    extra = free_trial.model_extra or {}
    return {
        "duration_length": free_trial.duration_length,
        "duration_type": free_trial.duration_type or "month",
        "card_required": free_trial.card_required is not False,  # null: the default
        **({"on_end": free_trial.on_end} if free_trial.on_end else {}),
        # Autumn's trial option "one trial per fingerprint" (kept only when set).
        **({"unique_fingerprint": True} if extra.get("unique_fingerprint") else {}),
    }


def _config_value(config: PlanConfig | None) -> dict[str, Any]:
    return {"ignore_past_due": bool(config is not None and config.ignore_past_due)}


def _requested_values(params: CreatePlanParams | UpdatePlanParams, cat: Catalog) -> dict[str, Any]:
    """The plan fields the request sends (an explicit null included), as stored; not
    ``billing_controls``, which the caller merges."""
    sent = params.model_fields_set
    out: dict[str, Any] = {}
    if "name" in sent:
        out["name"] = params.name
    if "description" in sent:
        out["description"] = params.description
    if "group" in sent:
        out["group"] = params.group or ""
    if "add_on" in sent:
        out["add_on"] = bool(params.add_on)
    if "auto_enable" in sent:
        out["auto_enable"] = bool(params.auto_enable)
    if "price" in sent:
        out["price"] = _price_value(params.price)
    if "items" in sent:
        out["items"] = [normalize_item(i, cat) for i in params.items or []]
    if "free_trial" in sent:
        out["free_trial"] = _free_trial_value(params.free_trial)
    if "config" in sent:
        out["config"] = _config_value(params.config)
    if isinstance(params, UpdatePlanParams) and "archived" in sent:
        out["archived"] = bool(params.archived)
    if "metadata" in sent:
        out["metadata"] = dict(params.metadata or {})
    return out


def _reread(values: dict[str, Any], cat: Catalog) -> dict[str, Any]:
    """Stored plan values (any of them) read again as a request gives them and normalized once more,
    so the items follow their features as they are now."""
    out = dict(values)
    if "price" in values:
        out["price"] = _price_value(BasePrice.model_validate(values["price"]) if values["price"] else None)
    if "items" in values:
        out["items"] = [normalize_item(PlanItemParams.model_validate(i), cat) for i in values["items"]]
    if "free_trial" in values:
        trial = values["free_trial"]
        out["free_trial"] = _free_trial_value(FreeTrialParams.model_validate(trial) if trial else None)
    if "config" in values:
        out["config"] = _config_value(PlanConfig.model_validate(values["config"] or {}))
    if "group" in values:
        out["group"] = values["group"] or ""
    for key in ("add_on", "auto_enable", "archived"):
        if key in values:
            out[key] = bool(values[key])
    if "metadata" in values:
        out["metadata"] = dict(values["metadata"] or {})
    return out


def _plan_values(v: dict[str, Any], cat: Catalog) -> dict[str, Any]:
    """A plan version's values as stored, from normalized values (every field, ``billing_controls``
    as given): checked as a whole."""
    items = v["items"]
    seen: set[tuple[str, Any]] = set()
    for i in items:
        key = (i["feature_id"], (i["reset"] or {}).get("interval"))
        if key in seen and cat.features[i["feature_id"]].type == "boolean":
            raise invalid(f"Feature {i['feature_id']} appears twice in items", "invalid_inputs")
        seen.add(key)
    free_trial = v["free_trial"]
    values = {
        "name": v["name"],
        "description": v["description"],
        "group": v["group"],
        "add_on": v["add_on"],
        "auto_enable": v["auto_enable"],
        "price": v["price"],
        "items": items,
        "free_trial": free_trial,
        "config": v["config"],
        "archived": v["archived"],
        "metadata": v["metadata"],
        "billing_controls": plan_billing_controls(v["billing_controls"]),
    }
    is_free = v["price"] is None and not any(i["price"] for i in items)
    trial_no_card = free_trial is not None and not free_trial["card_required"]
    if values["auto_enable"] and not (is_free or trial_no_card):
        raise invalid(
            "auto_enable is only allowed for free plans or plans with a trial that does not require a card",
            "invalid_inputs",
        )
    return values


def _plan_from_values(
    pk: int,
    plan_id: str,
    version: int,
    created_at: int,
    env: str,
    v: dict[str, Any],
    base_plan_id: str | None = None,
) -> Plan:
    return Plan(
        pk=pk,
        id=plan_id,
        version=version,
        created_at=created_at,
        env=env,
        is_latest=True,
        base_plan_id=base_plan_id,
        **v,
    )


def _controls_patch(controls: BillingControlsParams | None) -> dict[str, Any] | None:
    """The request's ``billing_controls`` as the engine reads them (None: not given)."""
    return controls.model_dump(mode="json", exclude_unset=True) if controls is not None else None


def _created_values(params: CreatePlanParams, cat: Catalog) -> dict[str, Any]:
    extra = params.model_extra or {}
    defaults: dict[str, Any] = {
        "name": params.name,
        "description": None,
        "group": "",
        "add_on": False,
        "auto_enable": False,
        "price": None,
        "items": [],
        "free_trial": None,
        "config": _config_value(None),
        # Not a field of the spec's create body; the server has always honoured it.
        "archived": bool(extra.get("archived", False)),
        "metadata": {},
        "billing_controls": _controls_patch(params.billing_controls),
    }
    return _plan_values({**defaults, **_requested_values(params, cat)}, cat)


def create_plan(ctx: Ctx, params: CreatePlanParams) -> dict[str, Any]:
    plan_id = params.plan_id
    if not ID_RE.match(plan_id):
        raise invalid("plan_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        if cat.versions(plan_id):
            raise ApiError(400, "product_already_exists", f"Product {plan_id} already exists")
        values = _created_values(params, cat)
        now = ctx.now()
        pk = catalog_repo.insert_plan(conn, ctx.tenant, plan_id, 1, now, values)
        created = _plan_from_values(pk, plan_id, 1, now, ctx.tenant.env, values)
        save_plan_links(conn, cat, created, params.licenses, now=now)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return plan_json(created, cat)


def _customer_count(conn: Connection, plan_pks: list[int]) -> int:
    return catalog_repo.customer_count(conn, plan_pks)


_UPDATABLE = (
    "name",
    "description",
    "group",
    "add_on",
    "auto_enable",
    "price",
    "items",
    "free_trial",
    "config",
    "archived",
    "metadata",
    "billing_controls",
)
"""plans.update fields that change the plan itself."""

_SHARED_SETTINGS = ("name", "description", "group", "add_on", "config", "metadata")
"""Settings ``all_versions`` copies to every version when the update changed them."""


def _check_version_flags(disable_version: bool, force_version: bool, all_versions: bool) -> None:
    for first, second, both in (
        ("force_version", "disable_version", force_version and disable_version),
        ("all_versions", "disable_version", all_versions and disable_version),
        ("all_versions", "force_version", all_versions and force_version),
    ):
        if both:
            raise invalid(f"Cannot use both {first} and {second}", "conflicting_version_flags")


def _item_key(item: dict[str, Any]) -> tuple[Any, ...]:
    """Autumn's match key of a plan item: feature, billing method, interval and interval count."""
    price, reset = item.get("price") or {}, item.get("reset") or {}
    return (
        item["feature_id"],
        price.get("billing_method"),
        price.get("interval") or reset.get("interval"),
        price.get("interval_count") or reset.get("interval_count"),
    )


def _apply_to_other_versions(
    conn: Connection, others: list[Plan], before: Plan, after: dict[str, Any]
) -> None:
    """``all_versions``: apply what this update changed on the latest version to every other version.

    As in Autumn the change is a diff, not a copy: a changed item is removed and added again,
    matched by its key, so items the other versions have on their own stay as they are.
    """
    for other in others:
        values = _diffed_values(other, before, after, _SHARED_SETTINGS)
        if values:
            catalog_repo.update_version(conn, other.pk, values)


# ---------------------------------------------------------------- variants
#
# A variant is a plan of its own (own id, versions and customers) linked to a base plan; its
# shape is the base's with a ``customize`` patch applied (price, add_items, remove_items,
# free_trial). ``variant_details.customize`` is the patch that turns the base's latest version
# into the variant, computed from the two plans.

_VARIANT_BLOCKED_SETTINGS = ("description", "group", "add_on", "config", "metadata")
"""Settings a variant takes from its base: updating them on the variant itself is refused."""

_PROPAGATED_SETTINGS = ("description", "group", "add_on", "config", "metadata")
"""Settings a base's update copies to every variant (a variant keeps its own name)."""


def _item_filter(item: dict[str, Any]) -> dict[str, Any]:
    """The ``remove_items`` filter selecting exactly this item's match key."""
    feature_id, method, interval, count = _item_key(item)
    out: dict[str, Any] = {"feature_id": feature_id}
    if method is not None:
        out["billing_method"] = method
    if interval is not None:
        out["interval"] = interval
        out["interval_count"] = count or 1
    return out


def _filter_matches(item: dict[str, Any], flt: PlanItemFilter) -> bool:
    """Whether ``item`` matches a ``remove_items`` filter: every field given must match."""
    feature_id, method, interval, count = _item_key(item)
    checks: tuple[tuple[Any, Any], ...] = (
        (flt.feature_id, feature_id),
        (flt.billing_method, method),
        (flt.interval, interval),
        (flt.interval_count, count or (1 if interval else None)),
    )
    return all(wanted is None or wanted == value for wanted, value in checks)


def customize_between(base: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The ``customize`` patch turning ``base`` into ``variant`` (both: price, items, free_trial)."""
    out: dict[str, Any] = {}
    if variant["price"] != base["price"]:
        out["price"] = variant["price"]
    base_items = {_item_key(i): i for i in base["items"]}
    variant_items = {_item_key(i): i for i in variant["items"]}
    removed = [_item_filter(i) for k, i in base_items.items() if variant_items.get(k) != i]
    added = [
        {key: value for key, value in i.items() if value is not None}
        for k, i in variant_items.items()
        if base_items.get(k) != i
    ]
    if removed:
        out["remove_items"] = removed
    if added:
        out["add_items"] = added
    if variant["free_trial"] != base["free_trial"]:
        out["free_trial"] = variant["free_trial"]
    return out


def _shape(plan: Plan) -> dict[str, Any]:
    return {"price": plan.price, "items": plan.items, "free_trial": plan.free_trial}


def variant_details(plan: Plan, cat: Catalog) -> dict[str, Any]:
    """``Plan.variant_details`` of a variant: its base and the patch from the base's latest version."""
    details: dict[str, Any] = {"base_plan_id": plan.base_plan_id}
    base = cat.plans.get(plan.base_plan_id or "")
    if base is not None:
        details["customize"] = customize_between(_shape(base), _shape(plan))
    return details


def _customized_values(
    base_values: dict[str, Any], customize: UpdatePlanVariantCustomize, cat: Catalog, name: str
) -> dict[str, Any]:
    """A variant's values: the base's with ``customize`` applied, under the variant's name."""
    sent = customize.model_fields_set
    items = [
        i
        for i in base_values["items"]
        if not any(_filter_matches(i, flt) for flt in customize.remove_items or ())
    ]
    v = _reread({**base_values, "items": items}, cat)
    v["name"] = name
    v["auto_enable"] = False
    if "price" in sent:
        v["price"] = _price_value(customize.price)
    for raw in customize.add_items or ():
        added = normalize_item(raw, cat)
        v["items"] = [i for i in v["items"] if _item_key(i) != _item_key(added)] + [added]
    if "free_trial" in sent:
        v["free_trial"] = _free_trial_value(customize.free_trial)
    return _plan_values(v, cat)


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


def _diffed_values(
    other: Plan, before: Plan, after: dict[str, Any], settings: tuple[str, ...]
) -> dict[str, Any]:
    """What an update that turned ``before`` into ``after`` changes on ``other``, as a diff.

    A changed item is removed and added again, matched by its key, so items ``other`` has on its
    own stay; price, free trial and the ``settings`` the update changed are copied.
    """
    before_items = {_item_key(i): i for i in before.items}
    after_items = {_item_key(i): i for i in after["items"]}
    removed = {k for k, i in before_items.items() if after_items.get(k) != i}
    added = [i for k, i in after_items.items() if before_items.get(k) != i]
    changes: dict[str, Any] = {key: after[key] for key in settings if after[key] != getattr(before, key)}
    if after["price"] != before.price:
        changes["price"] = after["price"]
    if after["free_trial"] != before.free_trial:
        changes["free_trial"] = after["free_trial"]
    if removed or added:
        kept = [i for i in other.items if _item_key(i) not in removed]
        keys = {_item_key(i) for i in kept}
        changes["items"] = kept + [i for i in added if _item_key(i) not in keys]
    return changes


def _plan_values_of(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "description": plan.description,
        "group": plan.group,
        "add_on": plan.add_on,
        "auto_enable": plan.auto_enable,
        "price": plan.price,
        "items": plan.items,
        "free_trial": plan.free_trial,
        "config": plan.config,
        "archived": plan.archived,
        "metadata": plan.metadata,
        "billing_controls": plan.billing_controls,
    }


def _save_version(
    ctx: Ctx, conn: Connection, current: Plan, values: dict[str, Any], *, new_version: bool
) -> Plan:
    """Write ``values`` to ``current`` in place, or as its next version (which becomes the latest)."""
    if not new_version:
        catalog_repo.update_version(conn, current.pk, values)
        return dataclasses.replace(current, **values)
    catalog_repo.update_version(conn, current.pk, {"is_latest": False})
    now = ctx.now()
    pk = catalog_repo.insert_plan(
        conn, ctx.tenant, current.id, current.version + 1, now, values, base_plan_id=current.base_plan_id
    )
    return _plan_from_values(
        pk, current.id, current.version + 1, now, ctx.tenant.env, values, current.base_plan_id
    )


def _pricing_changed(plan: Plan, values: dict[str, Any]) -> bool:
    return _shape(plan) != {k: values[k] for k in ("price", "items", "free_trial")}


def _variant_versions(
    conn: Connection,
    plan: Plan,
    values: dict[str, Any],
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
    return _pricing_changed(plan, values) and _customer_count(conn, [plan.pk]) > 0


def _variant_of(cat: Catalog, variant_id: str, base_id: str) -> Plan:
    variant = cat.plans.get(variant_id)
    if variant is None:
        raise plan_not_found(variant_id)
    if variant.base_plan_id != base_id:
        raise invalid(f"Plan {variant_id} is not a variant of {base_id}", "invalid_propagation_target")
    return variant


def _link_base(conn: Connection, ctx: Ctx, cat: Catalog, plan: Plan, base_id: str | None) -> str | None:
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


def _setting(key: str, value: Any) -> Any:
    """A setting as compared for a variant: empty group, description and metadata are one value,
    and config is its one flag."""
    if key == "config":
        return bool((value or {}).get("ignore_past_due", False))
    if key in ("group", "description", "metadata"):
        return value or None
    return bool(value) if key == "add_on" else value


def _sent_settings(params: UpdatePlanParams) -> dict[str, Any]:
    """The variant-blocked settings the request sends, in their stored form."""
    sent = params.model_fields_set
    values: dict[str, Any] = {
        "description": params.description,
        "group": params.group,
        "add_on": params.add_on,
        "config": _config_value(params.config),
        "metadata": params.metadata,
    }
    return {key: values[key] for key in _VARIANT_BLOCKED_SETTINGS if key in sent}


def _check_variant_request(plan: Plan, params: UpdatePlanParams) -> None:
    """Refuse what a variant cannot take directly, and variants of a plan becoming a variant."""
    is_variant = plan.base_plan_id is not None or bool(params.base_plan_id)
    if is_variant and (params.auto_enable or (plan.auto_enable and params.base_plan_id)):
        raise invalid("Variants cannot be the default plan.", "variant_cannot_be_default")
    if plan.base_plan_id is not None:
        current = _plan_values_of(plan)
        for key, value in _sent_settings(params).items():
            if _setting(key, value) != _setting(key, current[key]):
                raise invalid(
                    f"Cannot update {key} directly on a variant plan.", "invalid_propagation_target"
                )
    if params.base_plan_id and (params.variants or params.update_variant_ids):
        raise invalid("Cannot create a variant from another variant.", "nested_variant_not_allowed")


def _with_is_default(params: UpdatePlanParams) -> UpdatePlanParams:
    """``is_default`` is Autumn's name for ``auto_enable`` on plans.update (the default plan a new
    customer gets); sending both with different values is refused."""
    if params.is_default is None:
        return params
    if params.auto_enable is not None and params.auto_enable != params.is_default:
        raise invalid("is_default and auto_enable disagree; send one of them", "invalid_inputs")
    return params.model_copy(update={"auto_enable": params.is_default})


def _update_variants(
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
    base_values = _plan_values_of(base)
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
            created = _plan_from_values(pk, vid, 1, now, ctx.tenant.env, values, base.id)
            save_plan_links(conn, cat, created, None, now=now)
        else:
            variant = _variant_of(cat, vid, before.id)
            values = _customized_values(base_values, _customize(entry), cat, entry.name or variant.name)
            values["archived"] = variant.archived
            values["auto_enable"] = variant.auto_enable
            versions = _variant_versions(conn, variant, values, entry, flags)
            _save_version(ctx, conn, variant, values, new_version=versions)
        done.add(vid)
    settings = tuple(k for k in _PROPAGATED_SETTINGS if base_values[k] != getattr(before, k))
    for vid in dict.fromkeys(propagate):
        if vid in done:
            continue
        variant = _variant_of(cat, vid, before.id)
        values = {**_plan_values_of(variant), **_diffed_values(variant, before, base_values, settings)}
        values = _plan_values(_reread(values, cat), cat) | {"archived": variant.archived}
        versions = _variant_versions(conn, variant, values, None, flags)
        _save_version(ctx, conn, variant, values, new_version=versions)
        done.add(vid)
    if settings:
        patch = {k: base_values[k] for k in settings}
        for variant in cat.plans.values():
            if variant.base_plan_id == before.id and variant.id not in done:
                catalog_repo.update_plan_versions(conn, ctx.tenant, variant.id, patch)
    if base.id != before.id:
        catalog_repo.rebase_variants(conn, ctx.tenant, before.id, base.id)


def _updated_values(current: Plan, params: UpdatePlanParams, cat: Catalog) -> dict[str, Any]:
    """The current version's values with what the request sends: each field sent replaces the
    plan's, ``billing_controls`` list by list."""
    requested = _requested_values(params, cat)
    kept = {k: v for k, v in _plan_values_of(current).items() if k not in requested}
    merged = {**_reread(kept, cat), **requested}
    merged["billing_controls"] = _updated_controls(
        current.billing_controls, _controls_patch(params.billing_controls)
    )
    return _plan_values(merged, cat)


def update_plan(ctx: Ctx, params: UpdatePlanParams) -> dict[str, Any]:
    plan_id = params.plan_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        current = cat.plans.get(plan_id)
        if current is None:
            raise plan_not_found(plan_id)
        params = _with_is_default(params)
        sent = params.model_fields_set
        _check_variant_request(current, params)
        values = _updated_values(current, params, cat)
        new_id = params.new_plan_id or plan_id
        if new_id != plan_id and cat.versions(new_id):
            raise ApiError(400, "product_already_exists", f"Product {new_id} already exists")
        pricing_changed = (
            values["items"] != current.items
            or values["price"] != current.price
            or values["free_trial"] != current.free_trial
        )
        has_customers = _customer_count(conn, [current.pk]) > 0
        disable_version = bool(params.disable_version)
        force_version = bool(params.force_version)
        all_versions = bool(params.all_versions)
        _check_version_flags(disable_version, force_version, all_versions)
        # force_version versions whenever the request changes anything (like Autumn, a request
        # carrying nothing but plan_id and the flag is a no-op); all_versions edits in place.
        forced = force_version and any(key in sent for key in (*_UPDATABLE, "new_plan_id"))
        if forced or (pricing_changed and has_customers and not disable_version and not all_versions):
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
            _apply_to_other_versions(
                conn, [p for p in cat.versions(plan_id) if p.pk != current.pk], current, values
            )
        created = current.created_at if pk == current.pk else ctx.now()
        updated = _plan_from_values(
            pk, new_id, version, created, ctx.tenant.env, values, current.base_plan_id
        )
        _update_variants(
            ctx, conn, cat, params, current, updated, (force_version, disable_version, all_versions)
        )
        if "base_plan_id" in sent:
            updated.base_plan_id = _link_base(conn, ctx, cat, updated, params.base_plan_id)
        save_plan_links(conn, cat, updated, params.licenses, now=ctx.now(), previous_pk=current.pk)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return plan_json(updated, cat)


def delete_plan(ctx: Ctx, params: DeletePlanParams) -> dict[str, Any]:
    plan_id = params.plan_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        versions = cat.versions(plan_id)
        if not versions:
            raise plan_not_found(plan_id)
        targets = versions if params.all_versions else [versions[-1]]
        count = _customer_count(conn, [p.pk for p in targets])
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


def _legacy_feature_type(f: Feature | None) -> str | None:
    if f is None:
        return None
    if f.type == "boolean":
        return "boolean"
    return (
        "single_use" if f.consumable or f.type in ("credit_system", "ai_credit_system") else "continuous_use"
    )


def product_json(plan: Plan, cat: Catalog) -> dict[str, Any]:
    """A plan in Autumn's legacy "product" shape, which check previews still use."""
    items: list[dict[str, Any]] = []
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
        reset = it.get("reset") or {}
        entry: dict[str, Any] = {
            "type": "priced_feature" if price else "feature",
            "feature_id": it["feature_id"],
            "feature_type": _legacy_feature_type(f),
            "included_usage": "inf" if it.get("unlimited") else it.get("included", 0),
            "interval": reset.get("interval") if reset.get("interval") != "one_off" else None,
            "interval_count": reset.get("interval_count") or 1,
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
        "env": plan.env,
        "is_add_on": plan.add_on,
        "is_default": plan.auto_enable,
        "archived": plan.archived,
        "version": plan.version,
        "created_at": plan.created_at,
        "items": items,
        "free_trial": {
            "duration": trial.get("duration_type", "month"),
            "length": trial["duration_length"],
            "unique_fingerprint": bool(trial.get("unique_fingerprint", False)),
            "card_required": trial.get("card_required") is not False,
        }
        if trial
        else None,
        "base_variant_id": plan.base_plan_id,
        "properties": {"is_free": plan.is_free, "is_one_off": plan.is_one_off, "has_trial": bool(trial)},
    }
