"""``track`` (billing-semantics §3): record usage and deduct it from the customer's balances.

Hot path: ``track`` runs in one write transaction that locks the customer, deducts in memory and
writes back the changed sources and the event.  Idempotency keys are claimed inside that
transaction, so a failed request releases its key and a repeated one can never deduct twice.  On
PostgreSQL a plain track (no lock, key or entity) is one statement against the process's cached
subject (:mod:`reference_server.store.subject_cache`): :func:`_track_cached` in a worker thread,
:func:`track_async` on the event loop, both falling back to the locked path whenever it must decide.
:func:`track_in` is also how ``batch_track`` and ``track_tokens`` apply each of their tracks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import BatchTrackItem, CheckLock, TrackParams
from reference_server.engine.deduction import DeductionResult, InsufficientBalance, OverageBehavior
from reference_server.engine.entitlements import Controls, Feature, Source, num
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx, KeyedCall
from reference_server.service.entities import with_seat_charge
from reference_server.service.extra_fields import expands_feature, extra_field
from reference_server.service.lock_settlement import store_lock
from reference_server.service.maintenance import load_checked_subject
from reference_server.service.plan_controls import plan_defaults
from reference_server.service.track_batches import Lead, TrackBatches
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
from reference_server.store.idempotency import AnsweredClaim
from reference_server.store.subject_cache import (
    APPLY,
    APPLY_BATCH,
    APPLY_KEYED,
    CachedSubject,
    SubjectCache,
    SubjectKey,
    apply_params,
    apply_track,
    batch_apply_params,
    cached_subject,
    fingerprinted_query,
    keyed_apply_params,
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
) -> dict[str, Any]:
    """Autumn's answer to an ``async`` track: what was recorded, no balance (applied already here)."""
    out: dict[str, Any] = {"customer_id": customer_id, "value": num(value), "balance": None}
    if entity_id:
        out["entity_id"] = entity_id
    if event_name:
        out["event_name"] = event_name
    return out


def _queued(params: TrackParams, value: float) -> dict[str, Any]:
    return queued_response(value, params.customer_id, params.entity_id, params.event_name)


def _cacheable(params: TrackParams, lock: CheckLock | None) -> bool:
    """Tracks the cached-subject path serves: no lock, no idempotency key, no entity."""
    return lock is None and not extra_field(params, "idempotency_key") and not params.entity_id


def track(ctx: Ctx, params: TrackParams) -> dict[str, Any]:
    value, behavior, lock, expand = track_args(params)
    cache = ctx.state.subject_cache
    if cache is not None and _cacheable(params, lock):
        cached = _track_cached(ctx, cache, params, value, behavior, expand)
        if cached is not None:
            return _queued(params, value) if params.async_ else cached
    response = with_seat_charge(ctx, lambda: _track_locked(ctx, params, value, behavior, lock, expand))
    return _queued(params, value) if params.async_ else response


def _track_locked(
    ctx: Ctx,
    params: TrackParams,
    value: float,
    behavior: OverageBehavior,
    lock: CheckLock | None,
    expand: bool,
) -> dict[str, Any]:
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
) -> dict[str, Any]:
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
    return _track_response(cat, params, customer, entity, feats, results, subject, now, value, expand)


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


def _track_response(
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
) -> dict[str, Any]:
    response: dict[str, Any] = {"customer_id": customer.id, "value": num(value)}
    if entity is not None:
        response["entity_id"] = entity.id
    if params.event_name:
        response["event_name"] = params.event_name
    response.update(_track_balances(cat, feats, results, subject, now, expand))
    response["deductions"] = [d for _, r in results for d in r.deductions]
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
        out["balance"] = balance_of(cat, chosen, subject, now, expand) if f.type != "boolean" else None
    if len(involved) >= 2:
        out["balances"] = {fid: balance_of(cat, fid, subject, now, expand) for fid in involved}
    return out


def _track_cached(
    ctx: Ctx,
    cache: SubjectCache,
    params: TrackParams,
    value: float,
    behavior: OverageBehavior,
    expand: bool,
) -> dict[str, Any] | None:
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
            step = _track_step(ctx, conn, cat, params, entry, feats, ids, value, behavior)
            if step is None:
                return None
            fingerprint = apply_track(conn, entry, ids, step.dirty, step.event)
            response = _track_done(cat, params, entry, feats, step, fingerprint, value, expand)
            done = entry if response is not None else None
            return response
        finally:
            cache.release(key, done)


@dataclass
class _TrackStep:
    """One cached-subject track computed in memory, waiting for its single write."""

    now: int
    results: list[tuple[Feature, DeductionResult]]
    dirty: list[Source]
    event: dict[str, Any]


def _track_step(
    ctx: Ctx,
    conn: Connection | None,
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    ids: set[str],
    value: float,
    behavior: OverageBehavior,
) -> _TrackStep | None:
    customer, sources = entry.customer, entry.sources
    now = ctx.now(customer.clock_offset_ms)
    if customer.maintenance_due_at is not None and customer.maintenance_due_at <= now:
        return None
    plans = plan_defaults(cat, sources, now)
    if armed(customer, None, plans):  # usage limits read and write their window counters: the locked path
        return None
    watcher = ctx.state.billing.track_watcher
    if watcher is not None and (conn is None or watcher(ctx, conn, customer, None, ids) is not None):
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
    return _TrackStep(now, results, [s for s in sources if s.dirty], event)


def _track_done(
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    step: _TrackStep,
    fingerprint: str | None,
    value: float,
    expand: bool,
) -> dict[str, Any] | None:
    if not _settled(entry, step, fingerprint):
        return None
    return _track_response(
        cat, params, entry.customer, None, feats, step.results, entry.sources, step.now, value, expand
    )


def _settled(entry: CachedSubject, step: _TrackStep, fingerprint: str | None) -> bool:
    """Whether the statement wrote the step; if so the entry now matches the database again."""
    if fingerprint is None:
        return False
    for s in step.dirty:
        s.dirty = False
    entry.fingerprint = fingerprint
    return True


async def track_async(ctx: Ctx, params: TrackParams, keyed: KeyedCall | None = None) -> dict[str, Any] | None:
    """:func:`track` with its one statement sent on the event loop (PostgreSQL, cached subjects).

    With an ``Idempotency-Key`` (``keyed``) the same statement claims the key and stores the answer
    (:data:`APPLY_KEYED`), so a keyed track costs what a keyless one does.  None: serve the request
    with :func:`track` in a worker thread instead (for a keyed one, the dispatcher's unit of work,
    which replays, refuses or does the work).
    """
    cache, pool = ctx.state.subject_cache, ctx.state.async_pool
    value, behavior, lock, expand = track_args(params)
    cat = ctx.state.catalog_cache.peek(ctx.tenant)
    if cache is None or pool is None or cat is None or not _cacheable(params, lock):
        return None
    feats = track_features(cat, params)
    ids = involved_feature_ids(cat, feats)
    key = subject_key(ctx.tenant, params.customer_id, ids)
    batches = ctx.state.track_batches
    claimed, entry = cache.claim(key)
    if not claimed:  # another track of this subject is being written: wait for its batch, or decline
        if batches is None or not batches.led(key):
            return None
        turn = await batches.wait(key, _Queued(ctx, params, keyed, value, behavior, expand))
        return await _write_batch(ctx, key, turn) if isinstance(turn, Lead) else turn
    if batches is not None:
        batches.lead(key)
    done: CachedSubject | None = None
    try:
        # A cached subject another process changed since fails the statement: read it afresh and
        # try once more here on the loop (several server processes tracking the same customers).
        for cached in (entry, None) if entry is not None else (None,):
            if cached is None:
                stmt, args = fingerprinted_query(ctx.tenant, params.customer_id, ids)
                cached = cached_subject(await pool.fetch(stmt, args))
                if cached is None:
                    return None
            step = _step_on_loop(ctx, cat, params, cached, feats, ids, value, behavior)
            if step is None:
                return None
            if keyed is None:
                rows = await pool.fetch(APPLY, apply_params(cached, ids, step.dirty, step.event))
                response = _track_done(cat, params, cached, feats, step, _fingerprint(rows), value, expand)
                if response is None:
                    continue
                done = cached
                return _queued(params, value) if params.async_ else response
            answer = _answer(cat, params, cached, feats, step, value, expand)
            claim = _claim(ctx, keyed, answer)
            rows = await pool.fetch(
                APPLY_KEYED, keyed_apply_params(cached, ids, step.dirty, step.event, claim)
            )
            if _settled(cached, step, _fingerprint(rows)):
                done = cached
                return answer
        return None
    finally:
        _release(ctx, key, done)


@dataclass(frozen=True)
class _Queued:
    """A fast-path track waiting for its subject (:mod:`reference_server.service.track_batches`)."""

    ctx: Ctx
    params: TrackParams
    keyed: KeyedCall | None
    value: float
    behavior: OverageBehavior
    expand: bool


def new_track_batches() -> TrackBatches[_Queued, dict[str, Any]]:
    """The process's queues of tracks waiting for a busy subject (``AppState.track_batches``)."""
    return TrackBatches()


def _release(ctx: Ctx, key: SubjectKey, entry: CachedSubject | None) -> None:
    """Hand the subject to the tracks queued behind it, or give it back to the cache."""
    batches, cache = ctx.state.track_batches, ctx.state.subject_cache
    if (batches is None or not batches.hand_off(key, entry)) and cache is not None:
        cache.release(key, entry)


async def _write_batch(
    ctx: Ctx, key: SubjectKey, lead: Lead[_Queued, dict[str, Any]]
) -> dict[str, Any] | None:
    """Compute the queued tracks one after another from the subject and write them in one statement
    (:data:`APPLY_BATCH`); every waiter is released with its answer once it has committed, or with
    None (the ordinary path) when the batch could not be written.  The leader's own answer returned."""
    answers: list[dict[str, Any] | None] = [None] * len(lead.batch)
    done: CachedSubject | None = None
    try:
        pool, cat = ctx.state.async_pool, ctx.state.catalog_cache.peek(ctx.tenant)
        first: _Queued = lead.batch[0].item
        if pool is None or cat is None:
            return None
        ids = involved_feature_ids(cat, track_features(cat, first.params))
        entry = lead.entry
        if entry is None:
            stmt, args = fingerprinted_query(ctx.tenant, first.params.customer_id, ids)
            entry = cached_subject(await pool.fetch(stmt, args))
            if entry is None:
                return None
        events: list[dict[str, Any]] = []
        claims: list[AnsweredClaim] = []
        computed: list[dict[str, Any] | None] = []
        for waiter in lead.batch:
            q: _Queued = waiter.item
            feats = track_features(cat, q.params)
            before = copy.deepcopy(entry.sources)  # a declined track must leave the subject as it was
            step = _step_on_loop(q.ctx, cat, q.params, entry, feats, ids, q.value, q.behavior)
            if step is None:
                entry.sources = before
                computed.append(None)
                continue
            computed_answer = _answer(cat, q.params, entry, feats, step, q.value, q.expand)
            if q.keyed is not None:
                claims.append(_claim(q.ctx, q.keyed, computed_answer))
            events.append(step.event)
            computed.append(computed_answer)
        if not events:
            return None
        dirty = [s for s in entry.sources if s.dirty]
        rows = await pool.fetch(APPLY_BATCH, batch_apply_params(entry, ids, dirty, events, claims))
        fingerprint = _fingerprint(rows)
        if fingerprint is None:
            return None
        for s in dirty:
            s.dirty = False
        entry.fingerprint = fingerprint
        done, answers = entry, computed
        return answers[0]
    finally:
        for waiter, answer in zip(lead.batch[1:], answers[1:], strict=True):
            waiter.resolve(answer)
        _release(ctx, key, done)


def _step_on_loop(
    ctx: Ctx,
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    ids: set[str],
    value: float,
    behavior: OverageBehavior,
) -> _TrackStep | None:
    if ctx.state.billing.track_watcher is None:
        return _track_step(ctx, None, cat, params, entry, feats, ids, value, behavior)
    with ctx.db.autocommit() as conn:  # the billing watcher reads through it only on a cache miss
        return _track_step(ctx, conn, cat, params, entry, feats, ids, value, behavior)


def _claim(ctx: Ctx, keyed: KeyedCall, answer: dict[str, Any]) -> AnsweredClaim:
    """The request's header claim, carrying the answer a replay gives."""
    status, body = keyed.seal(answer)
    return AnsweredClaim(
        ctx.tenant.org_pk, ctx.tenant.env, keyed.key, keyed.request_hash, ctx.now(), status, body
    )


def _fingerprint(rows: list[Any]) -> str | None:
    return None if not rows or rows[0].fp is None else str(rows[0].fp)


def _answer(
    cat: Catalog,
    params: TrackParams,
    entry: CachedSubject,
    feats: list[Feature],
    step: _TrackStep,
    value: float,
    expand: bool,
) -> dict[str, Any]:
    """What a keyed track answers, computed before its statement (the claim stores it)."""
    if params.async_:
        return _queued(params, value)
    return _track_response(
        cat, params, entry.customer, None, feats, step.results, entry.sources, step.now, value, expand
    )
