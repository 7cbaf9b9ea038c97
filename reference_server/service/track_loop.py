"""``track`` on the event loop: PostgreSQL's one-statement fast path (billing-semantics §3).

A plain track (no lock, body key or entity) is computed from the process's cached subject
(:mod:`reference_server.store.subject_cache`) and written by one statement that re-checks the
subject under the customer's row lock; with an ``Idempotency-Key`` the same statement claims the
key with its answer.  Tracks that arrive while their subject is being written wait and are written
together (:mod:`reference_server.service.track_batches`).  Whatever this path declines returns None
and runs as :func:`reference_server.service.track.track` in a worker thread.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from autumn_sdk._generated.json_types import TrackResponseJson
from autumn_sdk._generated.models import TrackParams
from reference_server.engine.deduction import OverageBehavior
from reference_server.engine.entitlements import Feature
from reference_server.service.context import Ctx, KeyedCall
from reference_server.service.track import (
    TrackStep,
    cacheable,
    queued,
    settled,
    track_args,
    track_features,
    track_response,
    track_step,
)
from reference_server.service.track_batches import Lead, TrackBatches
from reference_server.service.usage import involved_feature_ids
from reference_server.store.catalog import Catalog
from reference_server.store.idempotency import AnsweredClaim
from reference_server.store.subject_cache import (
    APPLY,
    APPLY_BATCH,
    APPLY_KEYED,
    CachedSubject,
    SubjectKey,
    apply_params,
    batch_apply_params,
    cached_subject,
    fingerprinted_query,
    keyed_apply_params,
    subject_key,
)


async def track_async(
    ctx: Ctx, params: TrackParams, keyed: KeyedCall | None = None
) -> TrackResponseJson | None:
    """:func:`track` with its one statement sent on the event loop (PostgreSQL, cached subjects).

    With an ``Idempotency-Key`` (``keyed``) the same statement claims the key and stores the answer
    (:data:`APPLY_KEYED`), so a keyed track costs what a keyless one does.  None: serve the request
    with :func:`track` in a worker thread instead (for a keyed one, the dispatcher's unit of work,
    which replays, refuses or does the work).
    """
    cache, pool = ctx.state.subject_cache, ctx.state.async_pool
    value, behavior, lock, expand = track_args(params)
    cat = ctx.state.catalog_cache.peek(ctx.tenant)
    if cache is None or pool is None or cat is None or not cacheable(params, lock):
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
            step = track_step(ctx, None, cat, params, cached, feats, ids, value, behavior)
            if step is None:
                return None
            answer = _answer(cat, params, cached, feats, step, value, expand)
            if keyed is None:
                rows = await pool.fetch(APPLY, apply_params(cached, ids, step.dirty, step.event))
            else:
                claim = _claim(ctx, keyed, answer)
                rows = await pool.fetch(
                    APPLY_KEYED, keyed_apply_params(cached, ids, step.dirty, step.event, claim)
                )
            if settled(cached, step.dirty, _fingerprint(rows)):
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


def new_track_batches() -> TrackBatches[_Queued, TrackResponseJson]:
    """The process's queues of tracks waiting for a busy subject (``AppState.track_batches``)."""
    return TrackBatches()


def _release(ctx: Ctx, key: SubjectKey, entry: CachedSubject | None) -> None:
    """Hand the subject to the tracks queued behind it, or give it back to the cache."""
    batches, cache = ctx.state.track_batches, ctx.state.subject_cache
    if (batches is None or not batches.hand_off(key, entry)) and cache is not None:
        cache.release(key, entry)


async def _write_batch(
    ctx: Ctx, key: SubjectKey, lead: Lead[_Queued, TrackResponseJson]
) -> TrackResponseJson | None:
    """Compute the queued tracks one after another from the subject and write them in one statement
    (:data:`APPLY_BATCH`); every waiter is released with its answer once it has committed, or with
    None (the ordinary path) when the batch could not be written.  The leader's own answer returned."""
    answers: list[TrackResponseJson | None] = [None] * len(lead.batch)
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
        computed: list[TrackResponseJson | None] = []
        for waiter in lead.batch:
            q: _Queued = waiter.item
            feats = track_features(cat, q.params)
            before = copy.deepcopy(entry.sources)  # a declined track must leave the subject as it was
            step = track_step(q.ctx, None, cat, q.params, entry, feats, ids, q.value, q.behavior)
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
        if not settled(entry, dirty, _fingerprint(rows)):
            return None
        done, answers = entry, computed
        return answers[0]
    finally:
        for waiter, answer in zip(lead.batch[1:], answers[1:], strict=True):
            waiter.resolve(answer)
        _release(ctx, key, done)


def _claim(ctx: Ctx, keyed: KeyedCall, answer: TrackResponseJson) -> AnsweredClaim:
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
    step: TrackStep,
    value: float,
    expand: bool,
) -> TrackResponseJson:
    """What the track answers, computed before its statement (a keyed one's claim stores it)."""
    if params.async_:
        return queued(params, value)
    return track_response(
        cat, params, entry.customer, None, feats, step.results, entry.sources, step.now, value, expand
    )
