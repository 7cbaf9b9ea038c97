"""``track`` (billing-semantics §3): record usage and deduct it from the customer's balances.

Hot path: ``track`` runs in one write transaction that locks the customer, deducts in memory and
writes back the changed sources and the event.  Idempotency keys are claimed inside that
transaction, so a failed request releases its key and a repeated one can never deduct twice.  On
PostgreSQL a plain track (no lock, key or entity) is one statement against the process's cached
subject (:mod:`reference_server.store.subject_cache`): :func:`_track_cached` in a worker thread,
and on the event loop :mod:`reference_server.service.track_loop`, both falling back to the locked
path whenever it must decide.  :func:`track_in` is also how ``batch_track`` and ``track_tokens``
apply each of their tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import BalanceJson, TrackResponseJson
from autumn_sdk._generated.models import BatchTrackItem, CheckLock, TrackParams
from reference_server.engine.deduction import DeductionResult, InsufficientBalance, OverageBehavior
from reference_server.engine.entitlements import Controls, Feature, Source, num
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.entities import with_seat_charge
from reference_server.service.extra_fields import expands_feature, extra_field
from reference_server.service.lock_settlement import store_lock
from reference_server.service.maintenance import load_checked_subject
from reference_server.service.plan_controls import plan_defaults
from reference_server.service.usage import (
    balance_of,
    claim_idempotency,
    controls_map,
    deduct_feature,
    event_values,
    involved_feature_ids,
    record_event,
    resolve_subject,
)
from reference_server.service.usage_limits import Gate, armed
from reference_server.service.usage_limits import gate as usage_gate
from reference_server.store.catalog import Catalog
from reference_server.store.subject_cache import (
    CachedSubject,
    SubjectCache,
    apply_track,
    load_fingerprinted,
    subject_key,
)
from reference_server.store.subjects import CustomerRow, EntityRow, save_sources, scoped

TrackItem = TrackParams | BatchTrackItem
"""A validated track: a ``track`` request or one item of ``batch_track`` (the same fields)."""


def track_args(params: TrackItem) -> tuple[float, OverageBehavior, CheckLock | None, bool]:
    """value, overage behaviour, lock and expand of a track."""
    if bool(params.feature_id) == bool(params.event_name):
        raise invalid("Either feature_id or event_name must be provided", "invalid_inputs")
    value = 1.0 if params.value is None else float(params.value)
    behavior: OverageBehavior = params.overage_behavior or "cap"
    if behavior == "overflow":  # the full value, below zero if need be (engine.deduction: "negative")
        behavior = "negative"
    return value, behavior, params.lock, expands_feature(params)


def queued_response(
    value: float, customer_id: str, entity_id: str | None, event_name: str | None = None
) -> TrackResponseJson:
    """Autumn's answer to an ``async`` track: what was recorded, no balance (applied already here)."""
    out: TrackResponseJson = {"customer_id": customer_id, "value": num(value), "balance": None}
    if entity_id:
        out["entity_id"] = entity_id
    if event_name:
        out["event_name"] = event_name
    return out


def queued(params: TrackParams, value: float) -> TrackResponseJson:
    return queued_response(value, params.customer_id, params.entity_id, params.event_name)


def cacheable(params: TrackParams, lock: CheckLock | None) -> bool:
    """Tracks the cached-subject path serves: no lock, no idempotency key, no entity."""
    return lock is None and not extra_field(params, "idempotency_key") and not params.entity_id


def track(ctx: Ctx, params: TrackParams) -> TrackResponseJson:
    value, behavior, lock, expand = track_args(params)
    cache = ctx.state.subject_cache
    if cache is not None and cacheable(params, lock):
        cached = _track_cached(ctx, cache, params, value, behavior, expand)
        if cached is not None:
            return queued(params, value) if params.async_ else cached
    response = with_seat_charge(ctx, lambda: _track_locked(ctx, params, value, behavior, lock, expand))
    return queued(params, value) if params.async_ else response


def _track_locked(
    ctx: Ctx,
    params: TrackParams,
    value: float,
    behavior: OverageBehavior,
    lock: CheckLock | None,
    expand: bool,
) -> TrackResponseJson:
    """The track in one write transaction that locks the customer (an unpaid seat charge rolls it back)."""
    with ctx.db.write() as conn:
        return track_in(ctx, conn, params, value, behavior, lock, expand)


def track_in(
    ctx: Ctx,
    conn: Connection,
    params: TrackItem,
    value: float,
    behavior: OverageBehavior,
    lock: CheckLock | None,
    expand: bool,
) -> TrackResponseJson:
    """One track in the caller's write transaction (``track``, every item of ``batch_track``, and
    ``track_tokens``); ``value``, ``behavior``, ``lock`` and ``expand`` are :func:`track_args`'s."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    feats = track_features(cat, params)
    ids = involved_feature_ids(cat, feats)
    customer, sources, now = load_checked_subject(ctx, conn, cat, params.customer_id, ids, lock=True)
    entity = resolve_subject(conn, customer, params.entity_id)
    idempotency_key = extra_field(params, "idempotency_key")
    if idempotency_key:
        claim_idempotency(conn, ctx, "body", str(idempotency_key), now)
    apply_due_resets(sources, now)
    subject = scoped(sources, entity)
    plans = plan_defaults(cat, subject, now)
    controls = controls_map(customer, entity, ids, plans)
    limits = usage_gate(conn, cat, customer, entity, {f.id for f in feats}, subject, now, plans)
    watcher = ctx.state.billing.track_watcher  # paid billing: alerts, limit reached, auto top-ups
    watch = watcher(ctx, conn, customer, entity, ids) if watcher is not None else None
    if watch is not None:
        watch.before(subject, now)
    try:
        results = _deduct_all(
            cat, feats, subject, value, controls, now, entity, behavior, limits, params.properties
        )
    except InsufficientBalance as exc:
        raise ApiError(400, "insufficient_balance", str(exc)) from exc
    save_sources(conn, sources)
    if limits is not None:
        for f, r in results:
            limits.count(f, r.applied, r.touched, params.properties)
        limits.save(conn)
    if watch is not None:
        watch.after(subject, now)
    deductions = [d for _, r in results for d in r.deductions]
    record_event(
        conn,
        ctx,
        customer,
        entity_id=entity.id if entity else None,
        name=str(params.feature_id or params.event_name),
        value=value,
        properties=params.properties,
        deductions=deductions,
        timestamp=params.timestamp or now,
    )
    if lock is not None:
        store_lock(conn, ctx, customer, entity, feats[0], lock, value, results, now)
    return track_response(cat, params, customer, entity, feats, results, subject, now, value, expand)


def track_features(cat: Catalog, params: TrackItem) -> list[Feature]:
    """The feature tracked, or every feature listening to the event name."""
    fid, event_name = params.feature_id, params.event_name
    if fid:
        feature = cat.features.get(fid)
        if feature is None:
            raise feature_not_found(fid)
        return [feature]
    feats = list(cat.features_for_event.get(str(event_name), []))
    if not feats:
        raise ApiError(404, "invalid_request", f"No features found for event name: {event_name}")
    return feats


def _deduct_all(
    cat: Catalog,
    feats: list[Feature],
    subject: list[Source],
    value: float,
    controls: dict[str, Controls],
    now: int,
    entity: EntityRow | None,
    behavior: OverageBehavior,
    limits: Gate | None = None,
    properties: dict[str, Any] | None = None,
) -> list[tuple[Feature, DeductionResult]]:
    out = []
    for f in feats:
        if f.type == "boolean":
            continue
        amount = value
        room = limits.headroom(cat, f, properties) if limits is not None and value > 0 else None
        if room is not None and value > room:
            # A usage limit is a hard cap: track deducts up to it, a rejecting deduction fails.
            if behavior == "reject":
                raise InsufficientBalance(value, f.id)
            amount = room
        out.append((f, deduct_feature(cat, f, subject, amount, controls, now, entity, behavior)))
    return out


def track_response(
    cat: Catalog,
    params: TrackItem,
    customer: CustomerRow,
    entity: EntityRow | None,
    feats: list[Feature],
    results: list[tuple[Feature, DeductionResult]],
    subject: list[Source],
    now: int,
    value: float,
    expand: bool,
) -> TrackResponseJson:
    balance, balances = _track_balances(cat, feats, results, subject, now, expand)
    # the customer and entity were found by the ids asked for
    response: TrackResponseJson = {
        "customer_id": customer.id or params.customer_id,
        "value": num(value),
        "balance": balance,
    }
    if entity is not None and (entity_id := entity.id or params.entity_id):
        response["entity_id"] = entity_id
    if params.event_name:
        response["event_name"] = params.event_name
    if balances is not None:
        response["balances"] = balances
    response["deductions"] = [d for _, r in results for d in r.deductions]
    return response


def _track_balances(
    cat: Catalog,
    feats: list[Feature],
    results: list[tuple[Feature, DeductionResult]],
    subject: list[Source],
    now: int,
    expand: bool,
) -> tuple[BalanceJson | None, dict[str, BalanceJson | None] | None]:
    """The track's ``balance`` and, when it involves several features, its ``balances``."""
    balance: BalanceJson | None = None
    involved: list[str] = []
    for f in feats:
        for fid in [f.id] + [cs.id for cs in cat.credit_systems_for.get(f.id, [])]:
            if fid not in involved:
                involved.append(fid)
    if len(feats) == 1:
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
        balance = balance_of(cat, chosen, subject, now, expand) if f.type != "boolean" else None
    if len(involved) >= 2:
        return balance, {fid: balance_of(cat, fid, subject, now, expand) for fid in involved}
    return balance, None


def _track_cached(
    ctx: Ctx,
    cache: SubjectCache,
    params: TrackParams,
    value: float,
    behavior: OverageBehavior,
    expand: bool,
) -> TrackResponseJson | None:
    """PostgreSQL's one-round-trip track from the process's cached subject (store.subject_cache).

    Answers None whenever the locked path must decide instead: an unknown customer, maintenance
    due, billing controls to watch, a rejected deduction, or a subject changed since it was cached.
    """
    customer_id = params.customer_id
    with ctx.db.autocommit() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feats = track_features(cat, params)
        ids = involved_feature_ids(cat, feats)
        key = subject_key(ctx.tenant, customer_id, ids)
        claimed, entry = cache.claim(key)
        if not claimed:
            return None
        done: CachedSubject | None = None
        try:
            entry = entry or load_fingerprinted(conn, ctx.tenant, customer_id, ids)
            if entry is None:
                return None
            step = track_step(ctx, conn, cat, params, entry, feats, ids, value, behavior)
            if step is None:
                return None
            fingerprint = apply_track(conn, entry, ids, step.dirty, step.event)
            response = _track_done(cat, params, entry, feats, step, fingerprint, value, expand)
            done = entry if response is not None else None
            return response
        finally:
            cache.release(key, done)


@dataclass
class TrackStep:
    """One cached-subject track computed in memory, waiting for its single write."""

    now: int
    results: list[tuple[Feature, DeductionResult]]
    dirty: list[Source]
    event: dict[str, Any]


def track_step(
    ctx: Ctx,
    conn: Connection | None,
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    ids: set[str],
    value: float,
    behavior: OverageBehavior,
) -> TrackStep | None:
    customer, sources = entry.customer, entry.sources
    now = ctx.now(customer.clock_offset_ms)
    if customer.maintenance_due_at is not None and customer.maintenance_due_at <= now:
        return None
    plans = plan_defaults(cat, sources, now)
    if armed(customer, None, plans):  # usage limits read and write their window counters: the locked path
        return None
    watcher = ctx.state.billing.track_watcher
    if watcher is not None:
        if conn is not None:
            watch = watcher(ctx, conn, customer, None, ids)
        else:  # on the event loop: the watcher reads through a connection only on a cache miss
            with ctx.db.kept_autocommit() as own:
                watch = watcher(ctx, own, customer, None, ids)
        if watch is not None:
            return None
    apply_due_resets(sources, now)
    controls = controls_map(customer, None, ids, plans)
    try:
        results = _deduct_all(cat, feats, sources, value, controls, now, None, behavior)
    except InsufficientBalance:
        return None
    event = event_values(
        ctx,
        customer,
        entity_id=None,
        name=str(params.feature_id or params.event_name),
        value=value,
        properties=params.properties,
        deductions=[d for _, r in results for d in r.deductions],
        timestamp=params.timestamp or now,
    )
    return TrackStep(now, results, [s for s in sources if s.dirty], event)


def _track_done(
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    step: TrackStep,
    fingerprint: str | None,
    value: float,
    expand: bool,
) -> TrackResponseJson | None:
    if not settled(entry, step.dirty, fingerprint):
        return None
    return track_response(
        cat, params, entry.customer, None, feats, step.results, entry.sources, step.now, value, expand
    )


def settled(entry: CachedSubject, written: list[Source], fingerprint: str | None) -> bool:
    """Whether the statement wrote the ``written`` sources (``fingerprint``: the subject's new one);
    if so the entry now matches the database again."""
    if fingerprint is None:
        return False
    for s in written:
        s.dirty = False
    entry.fingerprint = fingerprint
    return True
