"""A plan version's values as stored: read from a plans.create / plans.update request (base price,
items, free trial, config, billing controls, the other settings), read back from storage and
normalized again, and checked as a whole."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict, get_args

from autumn_sdk._generated.json_types import (
    PlanBillingControlsJson,
    PlanConfigJson,
    PlanFreeTrialJson,
    PlanPriceJson,
)
from autumn_sdk._generated.models import (
    BasePrice,
    BillingControlsParams,
    CreatePlanParams,
    FreeTrialParams,
    PlanConfig,
    PlanItemParams,
    UpdatePlanParams,
)
from reference_server.engine.plan_controls import ControlsRecord, check_plan_controls
from reference_server.engine.plan_controls import normalize as normalize_plan_controls
from reference_server.engine.usage_limits import validation_error as usage_limit_error
from reference_server.errors import invalid
from reference_server.service.plan_items import normalize_item
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.plan_records import BasePriceRecord, FreeTrialRecord, PlanItemRecord

ControlsJson = Mapping[str, Any]
"""``billing_controls`` as a request sends them (``model_dump(mode="json", exclude_unset=True)``: keys
sent as null are null), perhaps over stored controls: JSON until ``plan_billing_controls`` makes it a
:class:`ControlsRecord`."""

ValueKey = Literal[
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
]
VALUE_KEYS: tuple[ValueKey, ...] = get_args(ValueKey)
"""A plan version's values (every field of :class:`PlanValues`), in order: the fields plans.update
changes the plan itself with."""
SettingKey = Literal["name", "description", "group", "add_on", "config", "metadata"]
"""A plan's settings: the values that do not price it (``auto_enable`` and ``archived`` aside)."""


class PlanValues(TypedDict):
    """A plan version's values as stored (:func:`checked_values`'s): every field of its
    :class:`~reference_server.store.catalog.Plan` but its identity and version."""

    name: str
    description: str | None
    group: str
    add_on: bool
    auto_enable: bool
    price: BasePriceRecord | None
    items: list[PlanItemRecord]
    free_trial: FreeTrialRecord | None
    config: PlanConfigJson
    archived: bool
    metadata: dict[str, Any]
    billing_controls: ControlsRecord | None


class GivenValues(TypedDict, total=False):
    """Some of a plan version's values: what a request sends (as stored), stored values read again,
    a diff carried to other versions. ``billing_controls`` is JSON until :func:`checked_values`."""

    name: str
    description: str | None
    group: str
    add_on: bool
    auto_enable: bool
    price: BasePriceRecord | None
    items: list[PlanItemRecord]
    free_trial: FreeTrialRecord | None
    config: PlanConfigJson
    archived: bool
    metadata: dict[str, Any]
    billing_controls: ControlsJson | None


class PricedParts(TypedDict):
    """The parts of a plan that price it."""

    price: BasePriceRecord | None
    items: list[PlanItemRecord]
    free_trial: FreeTrialRecord | None


def price_value(price: BasePrice | None) -> BasePriceRecord | None:
    """A plan's base price as stored."""
    if price is None:
        return None
    out: BasePriceRecord = {"amount": price.amount, "interval": price.interval}
    if price.interval_count:
        out["interval_count"] = price.interval_count
    return out


def free_trial_value(free_trial: FreeTrialParams | None) -> FreeTrialRecord | None:
    """A plan's free trial as stored."""
    if free_trial is None:
        return None
    extra = free_trial.model_extra or {}
    out: FreeTrialRecord = {
        "duration_length": free_trial.duration_length,
        "duration_type": free_trial.duration_type or "month",
        "card_required": free_trial.card_required is not False,  # null: the default
    }
    if free_trial.on_end:
        out["on_end"] = free_trial.on_end
    if extra.get("unique_fingerprint"):  # Autumn's trial option "one trial per fingerprint" (only when set)
        out["unique_fingerprint"] = True
    return out


def price_json(price: BasePriceRecord) -> PlanPriceJson:
    """A stored base price (:func:`price_value`'s: an ``interval_count`` it has is never null) as plans
    answer it."""
    out: PlanPriceJson = {"amount": price["amount"], "interval": price["interval"]}
    interval_count = price.get("interval_count")
    if interval_count is not None:
        out["interval_count"] = interval_count
    return out


def free_trial_json(trial: FreeTrialRecord) -> PlanFreeTrialJson:
    """A stored free trial (:func:`free_trial_value`'s) as plans answer it."""
    out: PlanFreeTrialJson = {
        "duration_length": trial["duration_length"],
        "duration_type": trial.get("duration_type") or "month",
        "card_required": trial.get("card_required") is not False,
    }
    if "on_end" in trial:
        out["on_end"] = trial["on_end"]
    if "unique_fingerprint" in trial:
        out["unique_fingerprint"] = trial["unique_fingerprint"]
    return out


def controls_json(controls: ControlsRecord) -> PlanBillingControlsJson:
    """Stored ``billing_controls`` (:func:`plan_billing_controls`'s) as plans answer them."""
    out: PlanBillingControlsJson = {}
    if "auto_topups" in controls:
        out["auto_topups"] = [e for e in controls["auto_topups"]]
    if "spend_limits" in controls:
        out["spend_limits"] = [e for e in controls["spend_limits"]]
    if "usage_limits" in controls:
        out["usage_limits"] = [e for e in controls["usage_limits"]]
    if "usage_alerts" in controls:
        out["usage_alerts"] = [e for e in controls["usage_alerts"]]
    if "overage_allowed" in controls:
        out["overage_allowed"] = [e for e in controls["overage_allowed"]]
    return out


def config_value(config: PlanConfig | None) -> PlanConfigJson:
    return {"ignore_past_due": bool(config is not None and config.ignore_past_due)}


def plan_billing_controls(raw: ControlsJson | None) -> ControlsRecord | None:
    """A plan's ``billing_controls`` as stored (None: none), or 400 for what Autumn refuses."""
    controls = normalize_plan_controls(raw)
    if controls is None:
        return None
    message = check_plan_controls(controls) or usage_limit_error(controls["usage_limits"])
    if message is not None:
        raise invalid(message, "invalid_inputs")
    return controls


def updated_controls(current: ControlsJson | None, patch: ControlsJson | None) -> ControlsJson | None:
    """plans.update (and a variant's ``customize``): each control list sent replaces the plan's (``[]``
    clears it); the rest stay."""
    if patch is None:
        return current
    return {**(current or {}), **{key: value for key, value in patch.items() if value is not None}}


def _controls_patch(controls: BillingControlsParams | None) -> ControlsJson | None:
    """The request's ``billing_controls`` as the engine reads them (None: not given)."""
    return controls.model_dump(mode="json", exclude_unset=True) if controls is not None else None


def _requested_values(params: CreatePlanParams | UpdatePlanParams, cat: Catalog) -> GivenValues:
    """The plan fields the request sends (an explicit null included), as stored; not
    ``billing_controls``, which the caller merges."""
    sent = params.model_fields_set
    out: GivenValues = {}
    if "name" in sent and params.name is not None:  # a null name is refused before (request_guard)
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
        out["price"] = price_value(params.price)
    if "items" in sent:
        out["items"] = [normalize_item(i, cat) for i in params.items or []]
    if "free_trial" in sent:
        out["free_trial"] = free_trial_value(params.free_trial)
    if "config" in sent:
        out["config"] = config_value(params.config)
    if isinstance(params, UpdatePlanParams) and "archived" in sent:
        out["archived"] = bool(params.archived)
    if "metadata" in sent:
        out["metadata"] = dict(params.metadata or {})
    return out


def reread(values: GivenValues, cat: Catalog) -> GivenValues:
    """Stored plan values (any of them) read again as a request gives them and normalized once more,
    so the items follow their features as they are now."""
    out = values.copy()
    if "price" in values:
        price = values["price"]
        out["price"] = price_value(BasePrice.model_validate(price) if price else None)
    if "items" in values:
        out["items"] = [normalize_item(PlanItemParams.model_validate(i), cat) for i in values["items"]]
    if "free_trial" in values:
        trial = values["free_trial"]
        out["free_trial"] = free_trial_value(FreeTrialParams.model_validate(trial) if trial else None)
    if "config" in values:
        out["config"] = config_value(PlanConfig.model_validate(values["config"] or {}))
    if "group" in values:
        out["group"] = values["group"] or ""
    if "add_on" in values:
        out["add_on"] = bool(values["add_on"])
    if "auto_enable" in values:
        out["auto_enable"] = bool(values["auto_enable"])
    if "archived" in values:
        out["archived"] = bool(values["archived"])
    if "metadata" in values:
        out["metadata"] = dict(values["metadata"] or {})
    return out


def checked_values(v: GivenValues, cat: Catalog) -> PlanValues:
    """A plan version's values as stored, from normalized values (every field, ``billing_controls``
    as given): checked as a whole."""
    items = v["items"]
    seen: set[tuple[str, str | None]] = set()
    for i in items:
        reset = i.get("reset")
        key = (i["feature_id"], reset.get("interval") if reset else None)
        if key in seen and cat.features[i["feature_id"]].type == "boolean":
            raise invalid(f"Feature {i['feature_id']} appears twice in items", "invalid_inputs")
        seen.add(key)
    free_trial = v["free_trial"]
    values: PlanValues = {
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
    is_free = v["price"] is None and not any(i.get("price") for i in items)
    trial_no_card = free_trial is not None and not free_trial["card_required"]
    if values["auto_enable"] and not (is_free or trial_no_card):
        raise invalid(
            "auto_enable is only allowed for free plans or plans with a trial that does not require a card",
            "invalid_inputs",
        )
    return values


def stored_values(plan: Plan) -> PlanValues:
    """A plan version's values as stored (every field :func:`checked_values` returns)."""
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


def priced_parts(plan: Plan) -> PricedParts:
    """The parts of a plan that price it (base price, items, free trial): what a variant customizes,
    and what a new version is made for when customers are on the plan."""
    return {"price": plan.price, "items": plan.items, "free_trial": plan.free_trial}


def plan_from_values(
    pk: int,
    plan_id: str,
    version: int,
    created_at: int,
    env: str,
    v: PlanValues,
    base_plan_id: str | None = None,
) -> Plan:
    """The latest version of a plan, as just written with ``v`` (values as stored)."""
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


def without(values: PlanValues, given: GivenValues) -> GivenValues:
    """``values`` but the fields ``given`` has."""
    out: GivenValues = {**values}
    for key in VALUE_KEYS:
        if key in given:
            del out[key]
    return out


def created_values(params: CreatePlanParams, cat: Catalog) -> PlanValues:
    """A new plan's values: what plans.create sends over the defaults."""
    extra = params.model_extra or {}
    defaults: GivenValues = {
        "name": params.name,
        "description": None,
        "group": "",
        "add_on": False,
        "auto_enable": False,
        "price": None,
        "items": [],
        "free_trial": None,
        "config": config_value(None),
        # Not a field of the spec's create body; the server has always honoured it.
        "archived": bool(extra.get("archived", False)),
        "metadata": {},
        "billing_controls": _controls_patch(params.billing_controls),
    }
    return checked_values({**defaults, **_requested_values(params, cat)}, cat)


def updated_values(current: Plan, params: UpdatePlanParams, cat: Catalog) -> PlanValues:
    """The current version's values with what the request sends: each field sent replaces the
    plan's, ``billing_controls`` list by list."""
    requested = _requested_values(params, cat)
    merged: GivenValues = {**reread(without(stored_values(current), requested), cat), **requested}
    merged["billing_controls"] = updated_controls(
        current.billing_controls, _controls_patch(params.billing_controls)
    )
    return checked_values(merged, cat)
