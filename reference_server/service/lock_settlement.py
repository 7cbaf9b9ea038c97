"""Storing a balance lock and settling it (billing-semantics §4.4): a check or track holds units
until ``balances.finalize`` (:mod:`.locks`) or the lock's expiry (maintenance) settles them.

A lock deducts at once and stores a receipt of exactly which sources and rollovers paid; confirm
settles the difference to the final value, release (or expiry) gives the units back to the same
sources.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import TrackDeductionJson
from autumn_sdk._generated.models import CheckLock
from reference_server.engine.deduction import DeductionResult
from reference_server.engine.entitlements import Feature, Source, num, r10
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, invalid
from reference_server.service.context import Ctx
from reference_server.service.plan_controls import plan_defaults
from reference_server.service.subscriptions import schedule_maintenance
from reference_server.service.usage import (
    controls_map,
    deduct_feature,
    involved_feature_ids,
    record_event,
)
from reference_server.store import locks as locks_repo
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    get_entity,
    load_sources,
    save_sources,
    scoped,
)

LOCK_MAX_MS = 24 * 3_600_000


def store_lock(
    conn: Connection,
    ctx: Ctx,
    customer: CustomerRow,
    entity: EntityRow | None,
    feature: Feature,
    lock: CheckLock,
    value: float,
    results: list[tuple[Feature, DeductionResult]],
    now: int,
) -> None:
    if feature.type == "metered" and not feature.consumable:
        raise invalid("Lock is not supported for allocated features")
    lock_id = lock.lock_id  # at most 256 characters (the model's limit)
    expires_at = int(lock.expires_at) if lock.expires_at is not None else now + LOCK_MAX_MS
    if expires_at > now + LOCK_MAX_MS:
        raise invalid("lock.expires_at: must be at most 24 hours in the future", "invalid_inputs")
    receipt = [entry for _, r in results for entry in r.receipt]
    try:
        with conn.begin_nested():
            locks_repo.insert_lock(
                conn,
                ctx.tenant,
                lock_id=lock_id,
                customer_pk=customer.pk,
                entity_id=entity.id if entity else None,
                feature_id=feature.id,
                value=value,
                receipt=receipt,
                expires_at=expires_at,
                created_at=now,
            )
    except IntegrityError as exc:
        raise ApiError(409, "lock_already_exists", f"Lock {lock_id} already exists") from exc
    schedule_maintenance(conn, customer.pk, expires_at)


def _give_back(
    sources_by_pk: dict[int, Source], receipt: list[dict[str, Any]], amount: float
) -> list[TrackDeductionJson]:
    """Return ``amount`` (receipt units, newest entries first) to exactly the sources it came from."""
    touched: list[TrackDeductionJson] = []
    need = amount
    for entry in reversed(receipt):
        if need <= 0:
            break
        s = sources_by_pk.get(int(entry["source_pk"]))
        if s is None:
            continue
        part = min(need, float(entry["amount"])) if entry["amount"] > 0 else 0.0
        if part <= 0:
            continue
        if entry.get("rollover_id"):
            for r in s.rollovers:
                if r.id == entry["rollover_id"]:
                    r.balance = r10(r.balance + part)
                    r.usage = r10(max(0.0, r.usage - part))
        else:
            s.balance = r10(s.balance + part)
        s.dirty = True
        need = r10(need - part)
        touched.append(
            {
                "balance_id": s.id,
                "feature_id": s.feature_id,
                "plan_id": s.plan_id,
                "reset": s.reset_json(),
                "value": num(-part),
            }
        )
    return touched


def apply_lock_delta(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    row: Any,
    final: float,
    now: int,
    properties: dict[str, Any] | None,
) -> None:
    locked = float(row.value)
    delta = r10(final - locked)
    if delta != 0:
        feature = cat.features.get(row.feature_id)
        if feature is not None:
            ids = involved_feature_ids(cat, [feature])
            sources = load_sources(conn, customer.pk, ids)
            apply_due_resets(sources, now)
            by_pk = {s.pk: s for s in sources}
            entity = get_entity(conn, customer.pk, row.entity_id) if row.entity_id else None
            subject = scoped(sources, entity)
            if delta < 0 and locked > 0:
                receipt = list(row.receipt or [])
                # The receipt is in each source's own units; scale the feature delta by the locked ratio.
                total = sum(float(e["amount"]) for e in receipt)
                deductions = _give_back(by_pk, receipt, total * (-delta / locked))
            else:
                controls = controls_map(customer, entity, ids, plan_defaults(cat, subject, now))
                res = deduct_feature(cat, feature, subject, delta, controls, now, entity, "cap")
                deductions = res.deductions
            save_sources(conn, sources)
        else:
            deductions = []
        record_event(
            conn,
            ctx,
            customer,
            entity_id=row.entity_id,
            name=row.feature_id,
            value=delta,
            properties=properties,
            deductions=deductions,
            timestamp=now,
        )
    locks_repo.delete_lock(conn, row.pk)


def release_expired_locks(ctx: Ctx, conn: Connection, customer: CustomerRow, now: int) -> None:
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    rows = locks_repo.expired_locks(conn, customer.pk, now)
    for row in rows:
        apply_lock_delta(ctx, conn, cat, customer, row, 0.0, now, None)
