"""check, track and the balances API (billing-semantics §2-4).

Hot paths: ``check`` without ``send_event`` runs in one read transaction (one query for the
customer, one for the sources of the feature and its credit systems); ``track`` runs in one write
transaction that locks the customer, deducts in memory and writes back the changed sources and
the event.  Idempotency keys are claimed inside that transaction, so a failed request releases
its key and a repeated one can never deduct twice.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from reference_server.engine.balances import derive_balance, derive_flag
from reference_server.engine.check import metered_allowed
from reference_server.engine.deduction import (
    DeductionResult,
    InsufficientBalance,
    Target,
    deduct,
    order_targets,
)
from reference_server.engine.model import Controls, Feature, Source, num, r10
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import AutumnError, entity_not_found, feature_not_found, invalid
from reference_server.service.catalog_ops import product_json
from reference_server.service.context import Ctx
from reference_server.service.customers import catch_up, needs_maintenance, require_customer
from reference_server.service.subscriptions import load_instances, run_maintenance, schedule_maintenance
from reference_server.store import idempotency, raw
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    get_entity,
    insert_source,
    load_sources,
    load_subject,
    save_sources,
    scoped,
)
from reference_server.store.tables import balance_sources, locks

LOCK_MAX_MS = 24 * 3_600_000


def controls_for(customer: CustomerRow, entity: EntityRow | None, feature_id: str) -> Controls:
    """Entity entries override customer entries for the same feature."""
    c = Controls()
    for settings in (customer.billing_controls, entity.billing_controls if entity else {}):
        for e in settings.get("overage_allowed") or []:
            if e.get("feature_id") == feature_id:
                c.overage_allowed = bool(e.get("enabled", False))
        for e in settings.get("spend_limits") or []:
            if e.get("feature_id") == feature_id:
                c.spend_limit = (
                    float(e["overage_limit"])
                    if e.get("enabled") and e.get("overage_limit") is not None
                    else None
                )
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


def _controls_map(customer: CustomerRow, entity: EntityRow | None, ids: set[str]) -> dict[str, Controls]:
    return {fid: controls_for(customer, entity, fid) for fid in ids}


def _resolve_subject(conn: Connection, customer: CustomerRow, entity_id: str | None) -> EntityRow | None:
    if not entity_id:
        return None
    entity = get_entity(conn, customer.pk, entity_id)
    if entity is None:
        raise entity_not_found(entity_id)
    return entity


def _claim_idempotency(conn: Connection, ctx: Ctx, scope: str, key: str, now: int) -> None:
    if not idempotency.claim(conn, ctx.tenant.org_pk, ctx.tenant.env, scope, key, now):
        raise AutumnError(
            409,
            "duplicate_idempotency_key",
            f"Another request with idempotency key {key} has already been received",
        )


_INSERT_EVENT = raw.Statement(
    "INSERT INTO events (id, org_pk, env, customer_pk, customer_id, entity_id, feature_id, value, "
    "properties, deductions, timestamp) VALUES (:id, :org, :env, :customer_pk, :customer_id, :entity_id, "
    ":feature_id, "
    ":value, :properties, :deductions, :timestamp)"
)


def record_event(
    conn: Connection,
    ctx: Ctx,
    customer: CustomerRow,
    *,
    entity_id: str | None,
    name: str,
    value: float,
    properties: dict[str, Any] | None,
    deductions: list[dict[str, Any]] | None,
    timestamp: int,
) -> str:
    """Store one usage event (track, send_event, lock or finalize) in the caller's transaction."""
    event_id = "evt_" + secrets.token_hex(12)
    raw.execute(
        conn,
        _INSERT_EVENT,
        {
            "id": event_id,
            "org": ctx.tenant.org_pk,
            "env": ctx.tenant.env,
            "customer_pk": customer.pk,
            "customer_id": customer.id or "",
            "entity_id": entity_id,
            "feature_id": name,
            "value": value,
            "properties": raw.json_param(properties or {}),
            "deductions": raw.json_param(deductions) if deductions else None,
            "timestamp": timestamp,
        },
    )
    return event_id


def _balance_of(
    cat: Catalog, fid: str, subject: list[Source], now: int, expand: bool
) -> dict[str, Any] | None:
    feature = cat.features[fid]
    return derive_balance(feature, [s for s in subject if s.feature_id == fid], now, expand)


def _load_subject(
    ctx: Ctx, conn: Connection, cat: Catalog, customer_id: str, ids: set[str], *, lock: bool
) -> tuple[CustomerRow, list[Source], int]:
    """Customer + sources in one query; on write paths, due maintenance first (then a reload)."""
    loaded = load_subject(conn, ctx.tenant, customer_id, ids, lock=lock)
    if loaded is None:
        from reference_server.errors import customer_not_found

        raise customer_not_found(customer_id)
    customer, sources = loaded
    now = ctx.now(customer.clock_offset_ms)
    if lock and customer.maintenance_due_at is not None and customer.maintenance_due_at <= now:
        run_maintenance(ctx, conn, cat, customer, now)
        sources = load_sources(conn, customer.pk, ids)
    return customer, sources, now


# ---------------------------------------------------------------- track


def _deduct_feature(
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    value: float,
    controls: dict[str, Controls],
    now: int,
    entity: EntityRow | None,
    behavior: str,
) -> DeductionResult:
    targets = build_targets(cat, feature, subject, now)
    if not targets:
        return DeductionResult()
    paid_allocated = any(t.own and t.source.continuous and t.source.pay_per_use for t in targets)
    mode = "reject" if paid_allocated else behavior
    ordered = order_targets(targets, entity.id if entity else None)
    return deduct(ordered, value, controls, now, mode, feature.id)  # type: ignore[arg-type]


def _lock_params(body: dict[str, Any]) -> dict[str, Any] | None:
    lock = body.get("lock")
    if not lock or not lock.get("enabled"):
        return None
    return dict(lock)


def track(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    fid, event_name = body.get("feature_id"), body.get("event_name")
    if bool(fid) == bool(event_name):
        raise invalid("Either feature_id or event_name must be provided", "invalid_inputs")
    value = body.get("value")
    value = 1.0 if value is None else float(value)
    behavior = body.get("overage_behavior") or "cap"
    if behavior not in ("cap", "reject", "overflow"):
        raise invalid("overage_behavior: must be one of: cap, reject, overflow", "invalid_inputs")
    lock = _lock_params(body)
    expand = "balance.feature" in (body.get("expand") or [])
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        if fid:
            feature = cat.features.get(fid)
            if feature is None:
                raise feature_not_found(fid)
            feats = [feature]
        else:
            feats = list(cat.features_for_event.get(str(event_name), []))
            if not feats:
                raise AutumnError(404, "invalid_request", f"No features found for event name: {event_name}")
        ids = involved_feature_ids(cat, feats)
        customer, sources, now = _load_subject(ctx, conn, cat, body["customer_id"], ids, lock=True)
        entity = _resolve_subject(conn, customer, body.get("entity_id"))
        if body.get("idempotency_key"):
            _claim_idempotency(conn, ctx, "body", str(body["idempotency_key"]), now)
        apply_due_resets(sources, now)
        subject = scoped(sources, entity)
        controls = _controls_map(customer, entity, ids)
        watcher = ctx.state.extras.get("track_watcher")  # paid billing: alerts, limit reached, auto top-ups
        watch = watcher(ctx, conn, customer, entity, ids) if watcher is not None else None  # type: ignore[operator]
        if watch is not None:
            watch.before(subject, now)
        results: list[tuple[Feature, DeductionResult]] = []
        try:
            for f in feats:
                if f.type == "boolean":
                    continue
                results.append((f, _deduct_feature(cat, f, subject, value, controls, now, entity, behavior)))
        except InsufficientBalance as exc:
            raise AutumnError(400, "insufficient_balance", str(exc)) from exc
        save_sources(conn, sources)
        if watch is not None:
            watch.after(subject, now)
        deductions = [d for _, r in results for d in r.deductions]
        timestamp = int(body.get("timestamp") or now)
        record_event(
            conn,
            ctx,
            customer,
            entity_id=entity.id if entity else None,
            name=str(fid or event_name),
            value=value,
            properties=body.get("properties"),
            deductions=deductions,
            timestamp=timestamp,
        )
        if lock is not None:
            _store_lock(conn, ctx, customer, entity, feats[0], lock, value, results, now)
        response: dict[str, Any] = {"customer_id": customer.id, "value": num(value)}
        if entity is not None:
            response["entity_id"] = entity.id
        if event_name:
            response["event_name"] = event_name
        response.update(_track_balances(cat, feats, results, subject, now, expand))
        response["deductions"] = deductions
        return response


def _track_balances(
    cat: Catalog,
    feats: list[Feature],
    results: list[tuple[Feature, DeductionResult]],
    subject: list[Source],
    now: int,
    expand: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    involved: list[str] = []
    for f in feats:
        for fid in [f.id] + [cs.id for cs in cat.credit_systems_for.get(f.id, [])]:
            if fid not in involved:
                involved.append(fid)
    if len(feats) > 1:
        out["balance"] = None
    else:
        f = feats[0]
        touched = results[0][1].touched if results else {}
        own = [s for s in subject if s.feature_id == f.id and s.is_live(now)]
        credit_ids = [cs.id for cs in cat.credit_systems_for.get(f.id, [])]
        chosen: str | None = None
        if any(s.unlimited for s in own):
            chosen = f.id
        else:
            for fid in [f.id, *credit_ids]:
                if touched.get(fid, 0) != 0:
                    chosen = fid
                    break
        if chosen is None:
            owned_credit = [cid for cid in credit_ids if any(s.feature_id == cid for s in subject)]
            chosen = f.id if own or not owned_credit else owned_credit[0]
        out["balance"] = _balance_of(cat, chosen, subject, now, expand) if f.type != "boolean" else None
    if len(involved) >= 2:
        out["balances"] = {fid: _balance_of(cat, fid, subject, now, expand) for fid in involved}
    return out


# ---------------------------------------------------------------- locks


def _store_lock(
    conn: Connection,
    ctx: Ctx,
    customer: CustomerRow,
    entity: EntityRow | None,
    feature: Feature,
    lock: dict[str, Any],
    value: float,
    results: list[tuple[Feature, DeductionResult]],
    now: int,
) -> None:
    if feature.type == "metered" and not feature.consumable:
        raise invalid("Lock is not supported for allocated features")
    lock_id = str(lock["lock_id"])
    if len(lock_id) > 256:
        raise invalid("lock.lock_id: must be at most 256 characters", "invalid_inputs")
    expires_at = lock.get("expires_at")
    expires_at = int(expires_at) if expires_at is not None else now + LOCK_MAX_MS
    if expires_at > now + LOCK_MAX_MS:
        raise invalid("lock.expires_at: must be at most 24 hours in the future", "invalid_inputs")
    receipt = [entry for _, r in results for entry in r.receipt]
    try:
        with conn.begin_nested():
            conn.execute(
                insert(locks).values(
                    org_pk=ctx.tenant.org_pk,
                    env=ctx.tenant.env,
                    lock_id=lock_id,
                    customer_pk=customer.pk,
                    entity_id=entity.id if entity else None,
                    feature_id=feature.id,
                    value=value,
                    receipt=receipt,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
    except IntegrityError as exc:
        raise AutumnError(409, "lock_already_exists", f"Lock {lock_id} already exists") from exc
    schedule_maintenance(conn, customer.pk, expires_at)


def _give_back(
    sources_by_pk: dict[int, Source], receipt: list[dict[str, Any]], amount: float
) -> list[dict[str, Any]]:
    """Return ``amount`` (receipt units, newest entries first) to exactly the sources it came from."""
    touched: list[dict[str, Any]] = []
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


def _apply_lock_delta(
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
                controls = _controls_map(customer, entity, ids)
                res = _deduct_feature(cat, feature, subject, delta, controls, now, entity, "cap")
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
    conn.execute(delete(locks).where(locks.c.pk == row.pk))


def release_expired_locks(ctx: Ctx, conn: Connection, customer: CustomerRow, now: int) -> None:
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    rows = conn.execute(
        select(locks).where(locks.c.customer_pk == customer.pk, locks.c.expires_at <= now)
    ).all()
    for row in rows:
        _apply_lock_delta(ctx, conn, cat, customer, row, 0.0, now, None)


def finalize(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    lock_id = str(body["lock_id"])
    action = body["action"]
    if action not in ("confirm", "release"):
        raise invalid("action: must be one of: confirm, release", "invalid_inputs")
    not_found = invalid(f"Lock not found for ID: {lock_id}")
    with ctx.db.write() as conn:
        q = select(locks).where(
            locks.c.org_pk == ctx.tenant.org_pk, locks.c.env == ctx.tenant.env, locks.c.lock_id == lock_id
        )
        row = conn.execute(q).first()
        if row is None:
            raise not_found
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        from reference_server.store.subjects import customer_from_row
        from reference_server.store.tables import customers

        crow = conn.execute(select(customers).where(customers.c.pk == row.customer_pk)).one()
        customer = customer_from_row(crow)
        customer, now = require_customer(ctx, conn, cat, customer.id or "", lock=True)
        row = conn.execute(q.with_for_update() if conn.dialect.name == "postgresql" else q).first()
        expired = row is None or row.expires_at <= now
        if row is not None and not expired:
            final = (
                0.0
                if action == "release"
                else float(body["override_value"] if body.get("override_value") is not None else row.value)
            )
            _apply_lock_delta(ctx, conn, cat, customer, row, final, now, body.get("properties"))
    if expired:
        raise not_found
    return {"success": True}


# ---------------------------------------------------------------- check


def _preview(
    cat: Catalog,
    conn: Connection,
    customer: CustomerRow,
    feature: Feature,
    has_balance: bool,
) -> dict[str, Any]:
    owned = {i.plan_pk for i in load_instances(conn, customer.pk)}
    owned_ids = {cat.plans_by_pk[pk].id for pk in owned if pk in cat.plans_by_pk}
    containing = [
        p
        for p in cat.plans.values()
        if not p.archived and any(i["feature_id"] == feature.id for i in p.items)
    ]
    mains = [p for p in containing if not p.add_on and p.id not in owned_ids]
    addons = [p for p in containing if p.add_on and (p.is_one_off or p.id not in owned_ids)]
    products = mains + addons
    name = feature.name or feature.id
    if products:
        first = products[0]
        if first.free_trial:
            title = f"Start trial for {first.name}"
        elif first.add_on:
            title = f"Purchase {first.name}"
        else:
            title = f"Upgrade to {first.name}"
    else:
        title = "Feature Unavailable"
    target = products[0].name if products else "a plan that includes it"
    if has_balance:
        message = (
            f"You have reached the usage limit for {name.lower()}. "
            f"Please upgrade to {target} to continue using this feature."
        )
    else:
        message = (
            f"Your current plan does not include the {name} feature. "
            f"Please upgrade to {target} to use this feature."
        )
    return {
        "scenario": "usage_limit" if has_balance else "feature_flag",
        "title": title,
        "message": message,
        "feature_id": feature.id,
        "feature_name": name,
        "products": [product_json(p, cat) for p in products],
    }


def _evaluate(
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    required: float,
    customer: CustomerRow,
    entity: EntityRow | None,
    now: int,
) -> tuple[Feature, float, bool]:
    """Which feature is evaluated (itself or a credit system), the converted requirement, and the decision."""

    def owns(f: Feature) -> bool:
        return any(s.feature_id == f.id and not s.is_flag and s.is_live(now) for s in subject)

    def allowed(f: Feature, req: float) -> bool:
        return metered_allowed(
            [s for s in subject if s.feature_id == f.id], req, controls_for(customer, entity, f.id), now
        )

    systems = cat.credit_systems_for.get(feature.id, [])
    if not systems:
        return feature, required, owns(feature) and allowed(feature, required)
    if owns(feature) and allowed(feature, required):
        return feature, required, True

    def conv(cs: Feature) -> float:
        return r10(required * (cs.credit_cost(feature.id) or 0.0))

    owned = [cs for cs in systems if owns(cs)]
    for cs in owned:
        if allowed(cs, conv(cs)):
            return cs, conv(cs), True
    if owned:
        return owned[0], conv(owned[0]), False
    if owns(feature):
        return feature, required, False
    return systems[0], conv(systems[0]), False


def check(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    required = body.get("required_balance")
    if required is None:
        required = body.get("required_quantity")
    required = 1.0 if required is None else float(required)
    send_event = bool(body.get("send_event"))
    lock = _lock_params(body)
    expand = "balance.feature" in (body.get("expand") or [])
    customer_id = body["customer_id"]
    if send_event or lock is not None:
        return _check_and_deduct(ctx, body, required, lock, expand)
    for attempt in range(2):
        with ctx.db.read() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
            feature = cat.features.get(body["feature_id"])
            if feature is None:
                raise feature_not_found(body["feature_id"])
            customer, sources, now = _load_subject(
                ctx, conn, cat, customer_id, involved_feature_ids(cat, [feature]), lock=False
            )
            if attempt == 0 and needs_maintenance(ctx, customer):
                due = True
            else:
                entity = _resolve_subject(conn, customer, body.get("entity_id"))
                apply_due_resets(sources, now)
                subject = scoped(sources, entity)
                return _check_response(
                    ctx, conn, cat, feature, subject, required, customer, entity, now, body, expand
                )
        if due:  # a plan transition or a lock expiry is due: apply it in a write transaction first
            catch_up(ctx, customer_id)
    raise AssertionError("unreachable: the second attempt always answers")


def _check_response(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    required: float,
    customer: CustomerRow,
    entity: EntityRow | None,
    now: int,
    body: dict[str, Any],
    expand: bool,
    *,
    forced: bool | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "allowed": False,
        "customer_id": customer.id,
        "entity_id": entity.id if entity else None,
        "required_balance": num(required),
        "balance": None,
        "flag": None,
    }
    if feature.type == "boolean":
        flag = derive_flag(feature, [s for s in subject if s.feature_id == feature.id], now, expand)
        out["flag"] = flag
        out["allowed"] = flag is not None
    else:
        evaluated, req, allowed = _evaluate(cat, feature, subject, required, customer, entity, now)
        out["required_balance"] = num(req)
        out["allowed"] = allowed if forced is None else forced
        out["balance"] = _balance_of(cat, evaluated.id, subject, now, expand)
    if body.get("with_preview"):
        out["preview"] = (
            None if out["allowed"] else _preview(cat, conn, customer, feature, out["balance"] is not None)
        )
    return out


def _check_and_deduct(
    ctx: Ctx, body: dict[str, Any], required: float, lock: dict[str, Any] | None, expand: bool
) -> dict[str, Any]:
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(body["feature_id"])
        if feature is None:
            raise feature_not_found(body["feature_id"])
        if feature.type == "boolean":
            raise invalid("send_event cannot be used with boolean features; use check without send_event")
        if lock is not None and feature.type == "metered" and not feature.consumable:
            raise invalid("Lock is not supported for allocated features")
        ids = involved_feature_ids(cat, [feature])
        customer, sources, now = _load_subject(ctx, conn, cat, body["customer_id"], ids, lock=True)
        entity = _resolve_subject(conn, customer, body.get("entity_id"))
        apply_due_resets(sources, now)
        subject = scoped(sources, entity)
        evaluated, _req, allowed = _evaluate(cat, feature, subject, required, customer, entity, now)
        has_any = any(s.feature_id in ids and s.is_live(now) for s in subject)
        result: DeductionResult | None = None
        if allowed and has_any:
            controls = _controls_map(customer, entity, ids)
            try:
                result = _deduct_feature(cat, feature, subject, required, controls, now, entity, "reject")
            except InsufficientBalance:
                result = None
        if result is None:
            # Nothing changes: answer with the balance as it was before the request.
            response = _check_response(
                ctx, conn, cat, feature, subject, required, customer, entity, now, body, expand, forced=False
            )
            if len(ids) >= 1:
                response["balances"] = {
                    fid: _balance_of(cat, fid, subject, now, expand) for fid in sorted(ids)
                }
            save_sources(conn, sources)
            return response
        save_sources(conn, sources)
        record_event(
            conn,
            ctx,
            customer,
            entity_id=entity.id if entity else None,
            name=feature.id,
            value=required,
            properties=body.get("properties"),
            deductions=result.deductions,
            timestamp=now,
        )
        if lock is not None:
            _store_lock(conn, ctx, customer, entity, feature, lock, required, [(feature, result)], now)
        response = _check_response(
            ctx, conn, cat, feature, subject, required, customer, entity, now, body, expand, forced=True
        )
        chosen = evaluated.id
        for fid in [feature.id] + [cs.id for cs in cat.credit_systems_for.get(feature.id, [])]:
            if result.touched.get(fid, 0) != 0:
                chosen = fid
                break
        response["balance"] = _balance_of(cat, chosen, subject, now, expand)
        response["balances"] = {fid: _balance_of(cat, fid, subject, now, expand) for fid in sorted(ids)}
        return response


# ---------------------------------------------------------------- balances.create / update / delete


def create_balance(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    from reference_server.engine.intervals import next_boundary_after

    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(body["feature_id"])
        if feature is None:
            raise feature_not_found(body["feature_id"])
        customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
        entity = _resolve_subject(conn, customer, body.get("entity_id"))
        grant = body.get("included_grant", body.get("granted_balance"))
        unlimited = bool(body.get("unlimited"))
        reset = body.get("reset")
        rollover = body.get("rollover")
        expires_at = body.get("expires_at")
        next_reset = body.get("next_reset_at")
        if entity is not None and entity.feature_id == feature.id:
            raise invalid("An entity cannot receive a balance of its own feature")
        if expires_at is not None and expires_at <= now:
            raise invalid("expires_at must be in the future")
        if feature.type == "boolean":
            if grant is not None or unlimited:
                raise invalid("Boolean features take neither included_grant nor unlimited")
            existing = [
                s
                for s in scoped(load_sources(conn, customer.pk, {feature.id}), entity)
                if s.is_flag and s.is_live(now)
            ]
            if existing:
                raise AutumnError(409, "invalid_request", f"Customer already has feature {feature.id}")
            values: dict[str, Any] = {"is_flag": True}
        else:
            if (grant is None) == (not unlimited):
                raise invalid("Exactly one of included_grant or unlimited must be given")
            continuous = feature.type == "metered" and not feature.consumable
            interval, count = None, 1
            if not continuous:
                interval = "one_off"
                if reset and reset.get("interval") not in (None, "one_off"):
                    interval, count = reset["interval"], int(reset.get("interval_count") or 1)
            if unlimited and interval not in (None, "one_off"):
                raise invalid("An unlimited balance cannot have a reset")
            if rollover and (continuous or interval in (None, "one_off")):
                raise invalid("A rollover needs a reset interval on a consumable feature")
            if next_reset is not None and interval in (None, "one_off"):
                raise invalid("next_reset_at needs a reset interval")
            first_reset = None
            if interval not in (None, "one_off"):
                assert interval is not None
                if next_reset is not None:
                    if next_reset <= now or (expires_at is not None and next_reset >= expires_at):
                        raise invalid("next_reset_at must be in the future and before expires_at")
                    first_reset = int(next_reset)
                else:
                    first_reset = next_boundary_after(now, interval, count, now)
            amount = float(grant or 0)
            values = {
                "allowance": amount,
                "balance": amount,
                "unlimited": unlimited,
                "interval": interval,
                "interval_count": count,
                "anchor_at": now if first_reset is None or next_reset is None else first_reset,
                "next_reset_at": first_reset,
                "continuous": continuous,
                "rollover_config": (
                    {
                        "max": rollover.get("max"),
                        "max_percentage": rollover.get("max_percentage"),
                        "expiry_duration_type": rollover.get("duration") or "month",
                        "expiry_duration_length": rollover.get("length"),
                    }
                    if rollover
                    else None
                ),
            }
        try:
            with conn.begin_nested():
                insert_source(
                    conn,
                    {
                        "customer_pk": customer.pk,
                        "entity_pk": entity.pk if entity else None,
                        "feature_id": feature.id,
                        "balance_id": body.get("balance_id"),
                        "expires_at": expires_at,
                        "created_at": now,
                        **values,
                    },
                )
        except IntegrityError as exc:
            raise AutumnError(
                409,
                "invalid_request",
                f"Balance with id {body.get('balance_id')} already exists for this customer",
            ) from exc
    return {"success": True}


def _matching(
    sources: list[Source], feature_id: str, entity: EntityRow | None, body: dict[str, Any], now: int
) -> list[Source]:
    out = []
    for s in sources:
        if s.feature_id != feature_id or not s.is_live(now):
            continue
        if entity is not None and s.entity_pk != entity.pk:
            continue
        if body.get("interval") and (s.interval or "one_off") != body["interval"]:
            continue
        if body.get("balance_id") and s.id != body["balance_id"]:
            continue
        out.append(s)
    return out


def update_balance(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    remaining = body.get("remaining", body.get("current_balance"))
    if remaining is not None and body.get("add_to_balance") is not None:
        raise invalid("remaining and add_to_balance cannot be used together", "invalid_inputs")
    if remaining is not None and body.get("usage") is not None:
        raise invalid("remaining and usage cannot be used together", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(body["feature_id"])
        if feature is None:
            raise feature_not_found(body["feature_id"])
        customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
        entity = _resolve_subject(conn, customer, body.get("entity_id"))
        if body.get("expires_at") is not None and body["expires_at"] <= now:
            raise invalid("expires_at must be in the future")
        sources = load_sources(conn, customer.pk, {feature.id})
        apply_due_resets(sources, now)
        matching = _matching(sources, feature.id, entity, body, now)
        if not matching:
            raise AutumnError(
                404,
                "balance_not_found",
                f"No balances to update for feature {feature.id} on customer {customer.id}",
            )
        if body.get("included_grant") is not None:
            s = matching[0]
            s.adjustment = r10(float(body["included_grant"]) - s.allowance)
            # The balance (remaining) is untouched, so usage becomes grant - remaining.
            s.dirty = True
        ordered = order_targets([Target(s, 1.0, True) for s in matching], entity.id if entity else None)

        def total_remaining() -> float:
            return r10(
                sum(s.balance for s in matching)
                + sum(r.balance for s in matching for r in s.live_rollovers(now))
            )

        target: float | None = None
        if remaining is not None:
            target = float(remaining)
        elif body.get("add_to_balance") is not None:
            target = total_remaining() + float(body["add_to_balance"])
        elif body.get("usage") is not None:
            granted = sum(s.included_grant + s.prepaid for s in matching)
            target = granted - float(body["usage"])
        if target is not None:
            delta = r10(total_remaining() - target)
            if delta != 0:
                deduct(ordered, delta, {}, now, "allow", feature.id)
        for s in matching:
            if body.get("next_reset_at") is not None:
                s.next_reset_at = int(body["next_reset_at"])
                s.anchor_at = int(body["next_reset_at"])
                s.dirty = True
            if body.get("expires_at") is not None:
                s.expires_at = int(body["expires_at"])
                s.dirty = True
        save_sources(conn, sources)
        if body.get("next_reset_at") is not None:
            from sqlalchemy import update as sa_update

            conn.execute(
                sa_update(balance_sources)
                .where(balance_sources.c.pk.in_([s.pk for s in matching]))
                .values(anchor_at=int(body["next_reset_at"]))
            )
    return {"success": True}


def delete_balance(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("recalculate_balances") and not body.get("feature_id"):
        raise invalid("recalculate_balances requires feature_id", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        if body.get("feature_id") and body["feature_id"] not in cat.features:
            raise feature_not_found(body["feature_id"])
        customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
        entity = _resolve_subject(conn, customer, body.get("entity_id"))
        sources = load_sources(conn, customer.pk)
        apply_due_resets(sources, now)
        matching = []
        for s in sources:
            if body.get("feature_id") and s.feature_id != body["feature_id"]:
                continue
            if not s.is_live(now):
                continue
            if (entity.pk if entity else None) != s.entity_pk:
                continue
            if body.get("interval") and (s.interval or "one_off") != body["interval"]:
                continue
            if body.get("balance_id") and s.id != body["balance_id"]:
                continue
            matching.append(s)
        if not matching:
            raise AutumnError(404, "balance_not_found", "No balances found to delete")
        if any(s.price for s in matching):
            raise AutumnError(409, "invalid_request", "Cannot delete paid balance; cancel the plan instead")
        used = sum(s.usage for s in matching if not s.is_flag)
        conn.execute(delete(balance_sources).where(balance_sources.c.pk.in_([s.pk for s in matching])))
        if body.get("recalculate_balances") and used > 0:
            gone = {s.pk for s in matching}
            rest = [s for s in sources if s.pk not in gone and s.feature_id == body["feature_id"]]
            rest_subject = scoped(rest, entity)
            ordered = order_targets(
                [Target(s, 1.0, True) for s in rest_subject], entity.id if entity else None
            )
            deduct(ordered, used, {}, now, "cap", body["feature_id"])
            save_sources(conn, rest)
        else:
            save_sources(conn, [s for s in sources if s not in matching])
    return {"success": True}
