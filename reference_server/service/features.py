"""Features CRUD (billing-semantics §1.1): boolean, metered, credit systems and their markups."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import (
    CreateFeatureModelMarkupJson,
    CreditSchemaEntryJson,
    FeatureDisplayJson,
    FeatureJson,
    ListFeaturesResponseJson,
    SuccessResponseJson,
)
from autumn_sdk._generated.models import (
    CreateFeatureModelMarkup,
    CreateFeatureParams,
    CreditSchemaEntry,
    DeleteFeatureParams,
    FeatureUnitNames,
    GetFeatureParams,
    UpdateFeatureParams,
)
from reference_server.engine.balances import feature_json
from reference_server.engine.entitlements import Feature, FeatureMarkups, FeatureType, markups_set
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.extra_fields import extra_field
from reference_server.service.extra_params import NoParams
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Catalog, bump_catalog_version, feature_from_row

ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
RESET_INTERVALS = ("one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year")


FEATURE_TYPES = ("boolean", "metered", "credit_system", "ai_credit_system")


def _model_markup(markup: CreateFeatureModelMarkup) -> CreateFeatureModelMarkupJson:
    """One model's markup as stored: the costs and markup the request gives."""
    out: CreateFeatureModelMarkupJson = {}
    if markup.markup is not None:
        out["markup"] = markup.markup
    if markup.input_cost is not None:
        out["input_cost"] = markup.input_cost
    if markup.output_cost is not None:
        out["output_cost"] = markup.output_cost
    return out


def _given_markups(params: CreateFeatureParams | UpdateFeatureParams) -> FeatureMarkups:
    """The markups the request sets to a value (not null), as stored."""
    out: FeatureMarkups = {}
    if params.default_markup is not None:
        out["default_markup"] = params.default_markup
    if params.provider_markups is not None:
        out["provider_markups"] = {
            name: {"markup": markup.markup} for name, markup in params.provider_markups.items()
        }
    if params.model_markups is not None:
        out["model_markups"] = {name: _model_markup(m) for name, m in params.model_markups.items()}
    return out


def _markups(
    markups: FeatureMarkups, ftype: str, requested: CreateFeatureParams | UpdateFeatureParams
) -> FeatureMarkups | None:
    """An AI credit system's markups as stored (None: none set); other types take none."""
    if ftype != "ai_credit_system":
        given = list(_given_markups(requested))
        if given:
            raise invalid(f"{given[0]}: only ai_credit_system features take markups", "invalid_feature")
        return None
    return markups_set(markups) or None


class _StoredFeature(TypedDict):
    """A feature's columns as written (``features`` table), checked and complete."""

    name: str
    type: FeatureType
    consumable: bool
    event_names: list[str]
    credit_schema: list[CreditSchemaEntryJson]
    display: FeatureDisplayJson | None
    archived: bool
    markups: FeatureMarkups | None


@dataclass
class _FeatureFields:
    """A feature's fields before validation: the request's, over the current feature's on update.
    ``credit_schema``, ``display`` and ``markups`` are in their stored (JSON) form."""

    name: str | None
    type: FeatureType | None
    consumable: bool | None
    event_names: list[str]
    credit_schema: list[CreditSchemaEntryJson]
    display: FeatureDisplayJson | None
    archived: bool
    markups: FeatureMarkups


def _credit_schema(entries: list[CreditSchemaEntry] | None) -> list[CreditSchemaEntryJson]:
    return [{"metered_feature_id": e.metered_feature_id, "credit_cost": e.credit_cost} for e in entries or []]


def _display(display: FeatureUnitNames | None) -> FeatureDisplayJson | None:
    return {"singular": display.singular, "plural": display.plural} if display is not None else None


def _validate_feature(
    fields: _FeatureFields,
    catalog: Catalog,
    feature_id: str,
    requested: CreateFeatureParams | UpdateFeatureParams,
) -> _StoredFeature:
    """The stored values of a feature; ``requested`` is the request itself (``fields`` may hold the
    current feature's values on update)."""
    ftype = fields.type
    if ftype is None or ftype not in FEATURE_TYPES:
        raise invalid("type: must be one of: " + ", ".join(FEATURE_TYPES), "invalid_inputs")
    if ftype == "ai_credit_system" and requested.credit_schema:
        raise invalid("credit_schema: AI credit systems price usage with model_markups", "invalid_feature")
    consumable = fields.consumable
    if ftype == "boolean":
        consumable = False
    elif ftype in ("credit_system", "ai_credit_system") or consumable is None:
        consumable = True
    schema = list(fields.credit_schema)
    if ftype == "credit_system":
        if not schema:
            raise invalid("Credit system must have at least one credit_schema entry", "invalid_feature")
        seen: set[str] = set()
        for entry in schema:
            mid = entry["metered_feature_id"]
            if mid in seen:
                raise invalid(f"Duplicate metered_feature_id {mid} in credit_schema", "invalid_feature")
            seen.add(mid)
            target = catalog.features.get(mid)
            if target is None:
                raise feature_not_found(mid)
            if target.type != "metered" or not target.consumable:
                raise invalid(
                    f"Credit schema feature {mid} must be a consumable metered feature", "invalid_feature"
                )
    else:
        schema = []
    return {
        "name": fields.name or feature_id,
        "type": ftype,
        "consumable": bool(consumable),
        "event_names": list(fields.event_names),
        "credit_schema": schema,
        "display": fields.display,
        "archived": fields.archived,
        "markups": _markups(fields.markups, ftype, requested),
    }


def create_feature(ctx: Ctx, params: CreateFeatureParams) -> FeatureJson:
    fid = params.feature_id
    if not ID_RE.match(fid):
        raise invalid("feature_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
    fields = _FeatureFields(
        name=params.name,
        type=params.type,
        consumable=params.consumable,
        event_names=list(params.event_names or []),
        credit_schema=_credit_schema(params.credit_schema),
        display=_display(params.display),
        # Not a field of the spec's create body; the server has always honoured it.
        archived=bool(extra_field(params, "archived")),
        markups=_given_markups(params),
    )
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        if fid in cat.features:
            raise ApiError(409, "duplicate_feature_id", f"Feature with id {fid} already exists")
        values = _validate_feature(fields, cat, fid, params)
        now = ctx.now()
        try:
            catalog_repo.insert_feature(conn, ctx.tenant, fid, now, values)
        except IntegrityError as exc:
            raise ApiError(409, "duplicate_feature_id", f"Feature with id {fid} already exists") from exc
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return feature_json(Feature(id=fid, created_at=now, **values))


def get_feature(ctx: Ctx, params: GetFeatureParams) -> FeatureJson:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    f = cat.features.get(params.feature_id)
    if f is None:
        raise feature_not_found(params.feature_id)
    return feature_json(f)


def list_features(ctx: Ctx, params: NoParams) -> ListFeaturesResponseJson:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    return {"list": [feature_json(f) for f in cat.features.values()]}


def _updated_fields(current: Feature, params: UpdateFeatureParams) -> _FeatureFields:
    """The current feature's fields with those the request sends (an explicit null included)."""
    sent = params.model_fields_set
    markups: FeatureMarkups = {**(current.markups or {})}
    given = _given_markups(params)
    # null clears a markup, but model_markups: null keeps them
    if "default_markup" in given:
        markups["default_markup"] = given["default_markup"]
    elif "default_markup" in sent:
        markups.pop("default_markup", None)
    if "provider_markups" in given:
        markups["provider_markups"] = given["provider_markups"]
    elif "provider_markups" in sent:
        markups.pop("provider_markups", None)
    if "model_markups" in given:
        markups["model_markups"] = given["model_markups"]
    return _FeatureFields(
        name=params.name if "name" in sent else current.name or current.id,
        type=params.type if "type" in sent else current.type,
        consumable=params.consumable if "consumable" in sent else current.consumable,
        event_names=list(params.event_names or []) if "event_names" in sent else list(current.event_names),
        credit_schema=_credit_schema(params.credit_schema)
        if "credit_schema" in sent
        else [
            {"metered_feature_id": c["metered_feature_id"], "credit_cost": c["credit_cost"]}
            for c in current.credit_schema
        ],
        display=_display(params.display) if "display" in sent else current.display or None,
        archived=bool(params.archived) if "archived" in sent else current.archived,
        markups=markups,
    )


def update_feature(ctx: Ctx, params: UpdateFeatureParams) -> FeatureJson:
    fid = params.feature_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        current = cat.features.get(fid)
        if current is None:
            raise feature_not_found(fid)
        values = _validate_feature(_updated_fields(current, params), cat, fid, params)
        new_id = params.new_feature_id or fid
        if new_id != fid:
            if not ID_RE.match(new_id):
                raise invalid("new_feature_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
            if new_id in cat.features:
                raise ApiError(409, "duplicate_feature_id", f"Feature with id {new_id} already exists")
        catalog_repo.update_feature(conn, ctx.tenant, fid, new_id, values)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        row = catalog_repo.feature_row(conn, ctx.tenant, new_id)
        return feature_json(feature_from_row(row))


def delete_feature(ctx: Ctx, params: DeleteFeatureParams) -> SuccessResponseJson:
    fid = params.feature_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        if fid not in cat.features:
            raise feature_not_found(fid)
        if any(item["feature_id"] == fid for p in cat.plans_by_pk.values() for item in p.items):
            raise ApiError(
                409,
                "feature_in_use",
                f"Feature {fid} is used in a product. Please delete the product or archive it instead.",
            )
        if cat.credit_systems_for.get(fid):
            raise ApiError(
                409,
                "feature_in_use",
                f"Feature {fid} is used by credit system {cat.credit_systems_for[fid][0].id}; archive it.",
            )
        catalog_repo.delete_feature(conn, ctx.tenant, fid)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
    return {"success": True}


# ---------------------------------------------------------------- plans
