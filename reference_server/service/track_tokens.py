"""``balances.track_tokens``: AI token usage priced in dollars and tracked on an AI credit system.

As in Autumn: the AI credit system is the ``feature_id`` given (404 when unknown, 400 when it is
not an ``ai_credit_system``), else the one AI credit system the customer (or the entity) holds a
balance of (404 when none, 400 when several).  The token counts are priced with the model's
models.dev rates and the feature's markups (:mod:`reference_server.service.model_prices`); the
dollar cost is then tracked on the feature exactly as ``balances.track`` tracks a value, with the
model, the token counts and the pricing recorded in the event's properties.  The whole request is
one write transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from reference_server.engine.entitlements import Feature
from reference_server.errors import ApiError, customer_not_found, feature_not_found
from reference_server.service import check_track
from reference_server.service.context import Ctx
from reference_server.service.entities import with_seat_charge
from reference_server.service.model_prices import price_tokens
from reference_server.service.usage import resolve_subject
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import load_subject, scoped

TOKEN_FIELDS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_tokens": "cache_read",
    "cache_write_tokens": "cache_write",
    "audio_input_tokens": "audio_input",
    "audio_output_tokens": "audio_output",
    "reasoning_tokens": "reasoning",
}


def _ai_feature(ctx: Ctx, conn: Connection, cat: Catalog, body: dict[str, Any]) -> Feature:
    fid = body.get("feature_id")
    if fid:
        feature = cat.features.get(fid)
        if feature is None:
            raise feature_not_found(fid)
        if feature.type != "ai_credit_system":
            raise ApiError(400, "invalid_request", f"Feature {fid} is not an AI credit system feature")
        return feature
    ai_ids = {f.id for f in cat.features.values() if f.type == "ai_credit_system"}
    loaded = load_subject(conn, ctx.tenant, body["customer_id"], ai_ids) if ai_ids else None
    if ai_ids and loaded is None:
        raise customer_not_found(body["customer_id"])
    held: list[str] = []
    if loaded is not None:
        customer, sources = loaded
        now = ctx.now(customer.clock_offset_ms)
        entity = resolve_subject(conn, customer, body.get("entity_id"))
        for s in scoped(sources, entity):
            if s.feature_id in ai_ids and s.is_live(now) and s.feature_id not in held:
                held.append(s.feature_id)
    if not held:
        raise ApiError(404, "feature_not_found", "No AI credit system feature found for this customer")
    if len(held) > 1:
        raise ApiError(
            400,
            "invalid_request",
            "Multiple AI credit system features found for this customer. "
            "Please specify a feature_id to disambiguate.",
        )
    return cat.features[held[0]]


def _track_body(body: dict[str, Any], feature: Feature) -> tuple[dict[str, Any], float]:
    tokens = {pool: int(body[key]) for key, pool in TOKEN_FIELDS.items() if body.get(key) is not None}
    pricing = price_tokens(str(body["model_id"]), feature.markups, tokens)
    properties: dict[str, Any] = dict(body.get("properties") or {})
    properties["model"] = body["model_id"]
    properties.update({key: body[key] for key in TOKEN_FIELDS if body.get(key) is not None})
    properties.update(
        cost=pricing.cost,
        base_cost=pricing.base_cost,
        markup=pricing.markup,
        markup_source=pricing.markup_source,
        tier_applied=pricing.tier_applied,
        rates=pricing.rates,
    )
    track_body: dict[str, Any] = {
        "customer_id": body["customer_id"],
        "feature_id": feature.id,
        "value": pricing.cost,
        "properties": properties,
    }
    for key in ("entity_id", "timestamp", "overage_behavior", "async"):
        if body.get(key) is not None:
            track_body[key] = body[key]
    return track_body, pricing.cost


def track_tokens(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.db.write() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
            feature = _ai_feature(ctx, conn, cat, body)
            track_body, cost = _track_body(body, feature)
            _value, behavior, lock, expand = check_track.track_args(track_body)
            return check_track.track_in(ctx, conn, track_body, cost, behavior, lock, expand)

    response = with_seat_charge(ctx, run)
    return check_track.queued_response(body, response["value"]) if body.get("async") else response
