"""Features CRUD (billing-semantics §1.1): boolean, metered, credit systems and their markups."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import IntegrityError

from reference_server.engine.balances import feature_json
from reference_server.engine.entitlements import Feature
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Catalog, bump_catalog_version, feature_from_row

ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
RESET_INTERVALS = ("one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year")


FEATURE_TYPES = ("boolean", "metered", "credit_system", "ai_credit_system")
MARKUP_FIELDS = ("default_markup", "provider_markups", "model_markups")


def _markups(body: dict[str, Any], ftype: str, requested: dict[str, Any]) -> dict[str, Any] | None:
    """An AI credit system's markups as stored (None: none set); other types take none."""
    if ftype != "ai_credit_system":
        given = [k for k in MARKUP_FIELDS if requested.get(k) is not None]
        if given:
            raise invalid(f"{given[0]}: only ai_credit_system features take markups", "invalid_feature")
        return None
    values = {k: body[k] for k in MARKUP_FIELDS if body.get(k) is not None}
    return values or None


def _validate_feature(
    body: dict[str, Any], catalog: Catalog, feature_id: str, requested: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The stored values of a feature; ``requested`` is the request's own body (``body`` may merge in
    the current feature's values on update)."""
    ftype = body["type"]
    if ftype not in FEATURE_TYPES:
        raise invalid("type: must be one of: " + ", ".join(FEATURE_TYPES), "invalid_inputs")
    requested = body if requested is None else requested
    if ftype == "ai_credit_system" and requested.get("credit_schema"):
        raise invalid("credit_schema: AI credit systems price usage with model_markups", "invalid_feature")
    consumable = body.get("consumable")
    if ftype == "boolean":
        consumable = False
    elif ftype in ("credit_system", "ai_credit_system") or consumable is None:
        consumable = True
    schema = list(body.get("credit_schema") or [])
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
        "name": body.get("name") or feature_id,
        "type": ftype,
        "consumable": bool(consumable),
        "event_names": list(body.get("event_names") or []),
        "credit_schema": [
            {"metered_feature_id": e["metered_feature_id"], "credit_cost": e["credit_cost"]} for e in schema
        ],
        "display": body.get("display"),
        "archived": bool(body.get("archived", False)),
        "markups": _markups(body, ftype, requested),
    }


def create_feature(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    fid = body["feature_id"]
    if not ID_RE.match(fid):
        raise invalid("feature_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        if fid in cat.features:
            raise ApiError(409, "duplicate_feature_id", f"Feature with id {fid} already exists")
        values = _validate_feature(body, cat, fid)
        now = ctx.now()
        try:
            catalog_repo.insert_feature(conn, ctx.tenant, fid, now, values)
        except IntegrityError as exc:
            raise ApiError(409, "duplicate_feature_id", f"Feature with id {fid} already exists") from exc
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        return feature_json(Feature(id=fid, created_at=now, **values))


def get_feature(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    f = cat.features.get(body["feature_id"])
    if f is None:
        raise feature_not_found(body["feature_id"])
    return feature_json(f)


def list_features(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    return {"list": [feature_json(f) for f in cat.features.values()]}


def update_feature(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    fid = body["feature_id"]
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.fresh(conn, ctx.tenant)
        current = cat.features.get(fid)
        if current is None:
            raise feature_not_found(fid)
        merged = feature_json(current)
        merged.update({k: v for k, v in body.items() if k not in ("feature_id", "new_feature_id")})
        if "model_markups" in body and body["model_markups"] is None:  # null keeps them, as in Autumn
            merged["model_markups"] = (current.markups or {}).get("model_markups")
        values = _validate_feature(merged, cat, fid, body)
        new_id = body.get("new_feature_id") or fid
        if new_id != fid:
            if not ID_RE.match(new_id):
                raise invalid("new_feature_id: must match ^[a-zA-Z0-9_-]+$", "invalid_inputs")
            if new_id in cat.features:
                raise ApiError(409, "duplicate_feature_id", f"Feature with id {new_id} already exists")
        catalog_repo.update_feature(conn, ctx.tenant, fid, new_id, values)
        bump_catalog_version(conn, ctx.state.catalog_cache, ctx.tenant)
        row = catalog_repo.feature_row(conn, ctx.tenant, new_id)
        return feature_json(feature_from_row(row))


def delete_feature(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    fid = body["feature_id"]
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
