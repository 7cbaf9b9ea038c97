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

from autumn_sdk._generated.json_types import TrackResponseJson
from autumn_sdk._generated.models import TrackParams, TrackTokensParams
from reference_server.engine.entitlements import Feature
from reference_server.errors import ApiError, customer_not_found, feature_not_found
from reference_server.service.context import Ctx
from reference_server.service.entities import with_seat_charge
from reference_server.service.model_prices import price_tokens
from reference_server.service.track import queued_response, track_args, track_in
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


def _ai_feature(ctx: Ctx, conn: Connection, cat: Catalog, params: TrackTokensParams) -> Feature:
    fid = params.feature_id
    if fid:
        feature = cat.features.get(fid)
        if feature is None:
            raise feature_not_found(fid)
        if feature.type != "ai_credit_system":
            raise ApiError(400, "invalid_request", f"Feature {fid} is not an AI credit system feature")
        return feature
    ai_ids = {f.id for f in cat.features.values() if f.type == "ai_credit_system"}
    loaded = load_subject(conn, ctx.tenant, params.customer_id, ai_ids) if ai_ids else None
    if ai_ids and loaded is None:
        raise customer_not_found(params.customer_id)
    held: list[str] = []
    if loaded is not None:
        customer, sources = loaded
        now = ctx.now(customer.clock_offset_ms)
        entity = resolve_subject(conn, customer, params.entity_id)
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


def _track_params(params: TrackTokensParams, feature: Feature) -> TrackParams:
    """The track of the priced tokens: their dollar cost on ``feature``, the pricing in its properties."""
    counts = {key: getattr(params, key) for key in TOKEN_FIELDS}
    given = {key: count for key, count in counts.items() if count is not None}
    pricing = price_tokens(params.model_id, feature.markups, {TOKEN_FIELDS[k]: n for k, n in given.items()})
    properties: dict[str, Any] = dict(params.properties or {})
    properties["model"] = params.model_id
    properties.update(given)
    properties.update(
        cost=pricing.cost,
        base_cost=pricing.base_cost,
        markup=pricing.markup,
        markup_source=pricing.markup_source,
        tier_applied=pricing.tier_applied,
        rates=pricing.rates,
    )
    return TrackParams(
        customer_id=params.customer_id,
        feature_id=feature.id,
        entity_id=params.entity_id,
        value=pricing.cost,
        properties=properties,
        timestamp=params.timestamp,
        overage_behavior=params.overage_behavior,
    )


def track_tokens(ctx: Ctx, params: TrackTokensParams) -> TrackResponseJson:
    def run() -> TrackResponseJson:
        with ctx.db.write() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
            feature = _ai_feature(ctx, conn, cat, params)
            track = _track_params(params, feature)
            value, behavior, lock, expand = track_args(track)
            return track_in(ctx, conn, track, value, behavior, lock, expand)

    response = with_seat_charge(ctx, run)
    if params.async_:
        return queued_response(response["value"], params.customer_id, params.entity_id)
    return response
