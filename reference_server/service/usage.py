"""What check, track, locks and the balances API share: subject loading, targets, controls, events.

The deduction rules themselves live in :mod:`reference_server.engine.deduction`; this module turns
a loaded customer into the engine's inputs and records the results.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import BalanceJson
from reference_server.engine.balances import derive_balance
from reference_server.engine.deduction import (
    DeductionResult,
    OverageBehavior,
    Target,
    deduct,
    order_targets,
)
from reference_server.engine.entitlements import Controls, Feature, Source
from reference_server.engine.plan_controls import ControlsRecord
from reference_server.errors import ApiError, entity_not_found
from reference_server.service.context import Ctx
from reference_server.store import idempotency
from reference_server.store.catalog import Catalog
from reference_server.store.db import after_transaction
from reference_server.store.events import insert_event
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    get_entity,
)


def controls_for(
    customer: CustomerRow,
    entity: EntityRow | None,
    feature_id: str,
    plans: ControlsRecord | None = None,
) -> Controls:
    """Entity entries override customer entries, which override the plans' defaults, per feature."""
    c = Controls()
    none: ControlsRecord = {}
    for settings in (plans or none, customer.billing_controls, entity.billing_controls if entity else none):
        for e in settings.get("overage_allowed") or []:
            if e.get("feature_id") == feature_id:
                c.overage_allowed = bool(e.get("enabled", False))
        for limit in settings.get("spend_limits") or []:
            if limit.get("feature_id") == feature_id:
                c.spend_limit = (
                    float(limit["overage_limit"])
                    if limit.get("enabled") and limit.get("overage_limit") is not None
                    else None
                )
                c.spend_limit_percent = limit.get("limit_type") == "usage_percentage"
    return c


def involved_feature_ids(cat: Catalog, feats: list[Feature]) -> set[str]:
    ids = {f.id for f in feats}
    for f in feats:
        ids.update(cs.id for cs in cat.credit_systems_for.get(f.id, []))
    return ids


def build_targets(cat: Catalog, feature: Feature, subject: list[Source], now: int) -> list[Target]:
    targets = [
        Target(s, 1.0, True)
        for s in subject
        if s.feature_id == feature.id and not s.is_flag and s.is_live(now)
    ]
    for cs in cat.credit_systems_for.get(feature.id, []):
        cost = cs.credit_cost(feature.id) or 0.0
        if cost <= 0:
            continue
        targets += [Target(s, cost, False) for s in subject if s.feature_id == cs.id and s.is_live(now)]
    return targets


def controls_map(
    customer: CustomerRow, entity: EntityRow | None, ids: set[str], plans: ControlsRecord | None = None
) -> dict[str, Controls]:
    return {fid: controls_for(customer, entity, fid, plans) for fid in ids}


def resolve_subject(conn: Connection, customer: CustomerRow, entity_id: str | None) -> EntityRow | None:
    if not entity_id:
        return None
    entity = get_entity(conn, customer.pk, entity_id)
    if entity is None:
        raise entity_not_found(entity_id)
    return entity


def claim_idempotency(conn: Connection, ctx: Ctx, scope: str, key: str, now: int) -> None:
    """Claim a body ``idempotency_key`` in the caller's transaction (Autumn's rule: a repeat gets 409;
    a request that fails rolls its transaction back and so releases the key for a retry)."""
    if not idempotency.claim(conn, ctx.tenant.org_pk, ctx.tenant.env, scope, key, now):
        raise ApiError(
            409,
            "duplicate_idempotency_key",
            f"Another request with idempotency key {key} has already been received",
        )
    db, clock = ctx.db, ctx.state.clock
    after_transaction(conn, lambda: idempotency.purge_if_due(db, clock.now_ms()))


def record_event(
    conn: Connection,
    ctx: Ctx,
    customer: CustomerRow,
    *,
    entity_id: str | None,
    name: str,
    value: float,
    properties: dict[str, Any] | None,
    deductions: Sequence[Mapping[str, object]] | None,
    timestamp: int,
) -> str:
    """Store one usage event (track, send_event, lock or finalize) in the caller's transaction."""
    values = event_values(
        ctx,
        customer,
        entity_id=entity_id,
        name=name,
        value=value,
        properties=properties,
        deductions=deductions,
        timestamp=timestamp,
    )
    insert_event(conn, values)
    return str(values["id"])


def event_values(
    ctx: Ctx,
    customer: CustomerRow,
    *,
    entity_id: str | None,
    name: str,
    value: float,
    properties: dict[str, Any] | None,
    deductions: Sequence[Mapping[str, object]] | None,
    timestamp: int,
) -> dict[str, Any]:
    """The columns of one event row (JSON columns as Python values), with a new event id."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "org": ctx.tenant.org_pk,
        "env": ctx.tenant.env,
        "customer_pk": customer.pk,
        "customer_id": customer.id or "",
        "entity_id": entity_id,
        "feature_id": name,
        "value": value,
        "properties": properties or {},
        "deductions": deductions or None,
        "timestamp": timestamp,
    }


def balance_of(cat: Catalog, fid: str, subject: list[Source], now: int, expand: bool) -> BalanceJson | None:
    feature = cat.features[fid]
    return derive_balance(feature, [s for s in subject if s.feature_id == fid], now, expand)


# ---------------------------------------------------------------- track


def deduct_feature(
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    value: float,
    controls: dict[str, Controls],
    now: int,
    entity: EntityRow | None,
    behavior: OverageBehavior,
) -> DeductionResult:
    targets = build_targets(cat, feature, subject, now)
    if not targets:
        return DeductionResult()
    paid_allocated = any(t.own and t.source.continuous and t.source.pay_per_use for t in targets)
    mode: OverageBehavior = "reject" if paid_allocated else behavior
    ordered = order_targets(targets, entity.id if entity else None)
    return deduct(ordered, value, controls, now, mode, feature.id)
