"""Running one API request: authenticate, rate-limit, validate with the operation's generated params
model, run the service (in one unit of work with its idempotency claim when keyed) and check the answer
against the generated response model.

The work after parsing is synchronous: SQLite runs it directly on the event loop (no thread hop per
statement), PostgreSQL in one worker-thread hop, except check and track, whose single statement is
awaited on the loop (:meth:`Dispatcher.run_async`).  The Starlette routes
(:mod:`~reference_server.api.router`) and :class:`~reference_server.api.hot_paths.HotPaths` both
hand their requests to :meth:`Dispatcher.serve`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio.to_thread
from pydantic_core import to_json

from reference_server.api import request_guard
from reference_server.api.api_version import parse_api_version
from reference_server.api.authentication import KeyAuthenticator
from reference_server.api.endpoints import Endpoint, validate_request
from reference_server.api.idempotency_header import answer_stored, check_key, in_flight
from reference_server.api.ratelimit import RateLimiter
from reference_server.api.refusals import (
    Answer,
    RateLimited,
    Sent,
    env_of_authorization,
    platform_shaped,
    refusal,
    refused,
)
from reference_server.api.request_bodies import request_values
from reference_server.billing.customer_lock import LOCKED_OPERATIONS
from reference_server.errors import ApiError
from reference_server.processors.registry import describe_failure
from reference_server.service import key_ops
from reference_server.service.context import AppState, Ctx, KeyedCall
from reference_server.store import idempotency
from reference_server.store.billing_lock import billing_lock

log = logging.getLogger("reference_server")

LONG_READS_AT_ONCE = 4
"""SQLite: long reads (``long_read`` operations) served in worker threads at once."""


def unexpected_failure(operation: str, exc: Exception) -> ApiError:
    """The answer to an exception nothing caught in ``operation``, logged at ERROR: a registered payment
    processor's own failure as that processor describes it (Stripe's: 400 ``stripe_error``,
    "(Stripe Error) ..." as Autumn answers), anything else 500 ``internal_error`` with its traceback."""
    described = describe_failure(exc)
    if described is not None:
        log.error("payment processor error in %s: %s [%s]", operation, described.message, type(exc).__name__)
        return described
    log.exception("unhandled error in %s", operation)
    return ApiError(500, "internal_error", f"Internal error: {type(exc).__name__}")


class Dispatcher:
    """Runs the API's requests against one app state."""

    def __init__(
        self,
        state: AppState,
        limiter: RateLimiter | None,
        validate_responses: bool = True,
        auth_cache_ttl: float = 1.0,
        max_body_bytes: int = request_guard.DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.state = state
        self.max_body_bytes = max_body_bytes
        """Largest request body served; larger ones get 413 (:mod:`request_guard`)."""
        self.limiter = limiter
        self.validate_responses = validate_responses
        self.auth = KeyAuthenticator(state, auth_cache_ttl)
        self.hot_endpoints: dict[str, Endpoint] = {}
        """POST paths :class:`~reference_server.api.hot_paths.HotPaths` serves ahead of the router
        (filled by :func:`~reference_server.api.router.build_routes`)."""
        self._long_reads: anyio.CapacityLimiter | None = None
        """SQLite: how many long reads run in worker threads at once (made on first use, in the loop)."""

    def run(
        self,
        ep: Endpoint,
        raw: dict[str, Any],
        authorization: str | None,
        idem_key: str | None,
        base_url: str,
    ) -> Answer:
        """The answer to a parsed request, run in the calling thread; a refusal is an answer too."""
        try:
            hashed = idempotency.request_hash(ep.name, raw) if idem_key else ""
            ctx, request = self._admit(ep, raw, authorization, base_url)
            if not idem_key:
                return self._success(ep, ep.service(ctx, request))
            return self._run_keyed(ep, ctx, request, hashed, idem_key, authorization)
        except (RateLimited, ApiError) as exc:
            return refusal(exc, authorization)

    def _run_keyed(
        self,
        ep: Endpoint,
        ctx: Ctx,
        request: Any,
        hashed: str,
        key: str,
        authorization: str | None,
    ) -> Answer:
        """A request with an ``Idempotency-Key`` header, in one unit of work (store.idempotency).

        The claim, the service's work and the stored response commit together.  A refusal the client
        may retry (any 4xx but 409, any 5xx) releases the claim and commits the rest of the work, as
        each of the service's own transactions committed before (a failed seat charge keeps its voided
        invoice); a 409 (``plan_already_attached``...) is stored and replayed like a success, as
        Autumn keeps the key of a 409; an unexpected exception rolls everything back.  On SQLite a
        billing change takes the customer's billing lock before the unit opens (store.billing_lock).
        """
        check_key(key)
        db, tenant = ctx.db, ctx.tenant
        customer_id = getattr(request, "customer_id", None)
        if customer_id is None and ep.lock_customer_of is not None and db.is_sqlite:
            customer_id = ep.lock_customer_of(ctx, request)  # invoices.pay: the invoice's customer
        locked = db.is_sqlite and ep.name in LOCKED_OPERATIONS and isinstance(customer_id, str)
        if locked:  # a replay needs no lock: answer it before queueing for one
            with db.read() as conn:
                stored = idempotency.lookup(conn, tenant.org_pk, tenant.env, key)
            if stored is not None and stored.created_at >= ctx.now() - idempotency.CLAIM_TTL_MS:
                return answer_stored(stored, key, hashed)
        lock: AbstractContextManager[None] = nullcontext()
        if locked:
            lock = billing_lock(db, tenant.org_pk, tenant.env, str(customer_id), ctx.now())
        retryable: ApiError | None = None
        with lock, db.unit_of_work() as conn:
            claim = idempotency.begin(conn, tenant.org_pk, tenant.env, key, hashed, ctx.now())
            if isinstance(claim, idempotency.InFlight):
                return in_flight(key, authorization)
            if isinstance(claim, idempotency.Stored):
                return answer_stored(claim, key, hashed)
            try:
                status, result, headers = self._success(ep, ep.service(ctx, request))
            except ApiError as exc:
                if exc.status == 409:
                    status, result, headers = refusal(exc, authorization)
                else:
                    idempotency.release(conn, claim)
                    retryable = exc
            if retryable is None:
                idempotency.complete(conn, claim, status, to_json(result).decode())
        idempotency.purge_if_due(db, ctx.state.clock.now_ms())
        if retryable is not None:
            raise retryable
        return status, result, headers

    def _admit(
        self, ep: Endpoint, raw: dict[str, Any], authorization: str | None, base_url: str
    ) -> tuple[Ctx, Any]:
        """Authenticate, rate-limit and validate: the request's context and its validated request."""
        tenant, token = self.auth.identify(ep.name, authorization, raw)
        ctx = Ctx(self.state, tenant, token, base_url=base_url)
        if self.limiter is not None:
            wait = self.limiter.hit(ep.name, f"{tenant.org_pk}:{tenant.env}", raw.get("customer_id"))
            if wait is not None:
                raise RateLimited(wait)
        return ctx, validate_request(ep, raw)

    def _success(self, ep: Endpoint, result: Any) -> Answer:
        if ep.response_model is not None and self.validate_responses:
            # The generated model guards the shape; the body keeps Autumn's integers (the models
            # declare numbers as float, so a dump would write 50 as 50.0).
            ep.response_model.model_validate(result)
        return ep.status, result, {}

    async def run_async(
        self,
        ep: Endpoint,
        raw: dict[str, Any],
        authorization: str | None,
        idem_key: str | None,
        base_url: str,
    ) -> Answer:
        """:meth:`run` for an endpoint with an event-loop fast path (PostgreSQL check and track).

        Authentication and the catalogue come from the per-process caches (a miss reads the
        database synchronously, at most about once a second per key); the service's one statement
        is awaited.  With an ``Idempotency-Key`` the fast path claims the key in that statement,
        storing the answer :meth:`_seal` makes, or declines.  Anything the fast path declines runs in
        a worker thread as usual (a keyed request through :meth:`_run_keyed`).
        """
        assert ep.async_service is not None
        try:
            hashed = idempotency.request_hash(ep.name, raw) if idem_key else ""
            ctx, request = self._admit(ep, raw, authorization, base_url)
            keyed = None
            if idem_key:
                check_key(idem_key)
                keyed = KeyedCall(idem_key, hashed, lambda response: self._seal(ep, response))
            result = await ep.async_service(ctx, request, keyed)
            if result is not None:
                return self._success(ep, result)
            if idem_key:
                return await anyio.to_thread.run_sync(
                    self._run_keyed, ep, ctx, request, hashed, idem_key, authorization
                )
            return self._success(ep, await anyio.to_thread.run_sync(ep.service, ctx, request))
        except (RateLimited, ApiError) as exc:
            return refusal(exc, authorization)

    def _seal(self, ep: Endpoint, response: Mapping[str, Any]) -> tuple[int, str]:
        """The (status, JSON body) a keyed request's claim stores for ``response``, as sent."""
        status, result, _ = self._success(ep, response)
        return status, to_json(result).decode()

    async def serve(
        self,
        ep: Endpoint,
        header: Callable[[str], str | None],
        data: bytes | None,
        query: dict[str, str] | None,
        base_url: Callable[[], str],
    ) -> Sent:
        """One request from its raw parts to (status, JSON body, extra headers).

        Shared by the Starlette routes and :class:`~reference_server.api.hot_paths.HotPaths`; ``data``
        is the body of a POST, ``query`` the query parameters of a GET.
        """
        env = env_of_authorization(header("authorization"))
        version = header("x-api-version")
        if version and version.strip() and parse_api_version(version.strip()) is None:  # "" is no header
            return refused(
                ep.name, ApiError(400, "invalid_api_version", f"Invalid API version: {version}"), env
            )
        if version and version.strip() and key_ops.is_customer_token(header("authorization")):
            too_old = key_ops.version_refusal(parse_api_version(version.strip()))
            if too_old is not None:
                return refused(ep.name, too_old, env)
        try:
            raw = request_values(data, query, self.max_body_bytes, items=ep.items is not None)
        except ApiError as exc:
            return refused(ep.name, exc, env)
        public = self.state.public_url or base_url().rstrip("/")  # the base of links this request hands out
        args = (ep, raw, header("authorization"), header("idempotency-key"), public)
        try:
            if self.state.db.is_sqlite and not ep.long_read:
                # One writer: requests run on the loop (a transaction costs microseconds here).
                status, result, headers = self.run(*args)
            elif self.state.db.is_sqlite:
                # A long read (a list, an aggregate) reads beside the loop through WAL, in a thread, a
                # few at a time (each thread keeps a connection of the pool).
                if self._long_reads is None:
                    self._long_reads = anyio.CapacityLimiter(LONG_READS_AT_ONCE)
                status, result, headers = await anyio.to_thread.run_sync(
                    self.run, *args, limiter=self._long_reads
                )
            elif ep.async_service is not None and self.state.async_pool is not None:
                status, result, headers = await self.run_async(*args)
            else:
                status, result, headers = await anyio.to_thread.run_sync(self.run, *args)
        except Exception as exc:  # an unexpected failure: Autumn's error shape, never a traceback
            # The unit of work and the idempotency claim were rolled back on the way here (a retry with
            # the key runs again); a payment processor's own failure (Stripe down or refusing) answers
            # what Autumn's error middleware answers (400 stripe_error), anything else 500.
            return refused(ep.name, unexpected_failure(ep.name, exc), env)
        return status, to_json(platform_shaped(ep.name, status, result)), headers

    def too_large(self, ep: Endpoint, header: Callable[[str], str | None]) -> Sent:
        """413 for a body past ``max_body_bytes``; the connection closes (the rest was not read)."""
        env = env_of_authorization(header("authorization"))
        status, body, _ = refused(ep.name, request_guard.body_too_large(self.max_body_bytes), env)
        return status, body, {"Connection": "close"}
