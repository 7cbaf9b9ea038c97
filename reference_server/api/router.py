"""Request handling: one ASGI route per operation of the generated table, plus the extras.

Every request goes through :meth:`Dispatcher.handle`: parse the JSON body, authenticate the key,
rate-limit, validate with the operation's generated params model, run the service, and shape the
response with the generated response model.  The work after parsing is synchronous: SQLite runs it
directly on the event loop (no thread hop per statement), PostgreSQL in one worker-thread hop,
except check and track, whose single statement is awaited on the loop (:meth:`Dispatcher.run_async`).
check and track POSTs skip Starlette's routing altogether (:class:`HotPaths`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio.to_thread
from pydantic_core import to_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.api import request_guard
from reference_server.api.api_version import parse_api_version
from reference_server.api.endpoints import ITEMS_KEY, Endpoint, endpoints, validate_request
from reference_server.api.ratelimit import RateLimiter
from reference_server.billing.customer_lock import LOCKED_OPERATIONS
from reference_server.errors import ApiError
from reference_server.service import key_ops
from reference_server.service.context import AppState, Ctx, KeyedCall
from reference_server.store import idempotency
from reference_server.store.billing_lock import billing_lock
from reference_server.store.tenancy import Tenant, env_of_key, tenant_for_key


def error_response(
    status: int, code: str, message: str, env: str, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"message": message, "code": code, "env": env}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


HOT_PATHS = frozenset(op.path for op in OPERATIONS if op.hot_path)
"""POST paths served ahead of Starlette's routing: the operations whose policy sets ``hot_path``."""

LEGACY_ALIASES: dict[str, str] = {
    "/v1/check": "/v1/balances.check",
    "/v1/entitled": "/v1/balances.check",
    "/v1/track": "/v1/balances.track",
    "/v1/events": "/v1/balances.track",
    "/v1/balances/create": "/v1/balances.create",
}


class Dispatcher:
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
        self.auth_cache_ttl = auth_cache_ttl
        # key -> (tenant, monotonic expiry, catalogue generation): saves a query per request; a
        # revoked key or another process's change is seen within ``auth_cache_ttl`` seconds, a change
        # made through this process at once.
        self._tenants: dict[str, tuple[Tenant, float, int]] = {}
        self.hot_endpoints: dict[str, Endpoint] = {}
        """POST paths :class:`HotPaths` serves ahead of the router (filled by :func:`build_routes`)."""
        self._long_reads: anyio.CapacityLimiter | None = None
        """SQLite: how many long reads run in worker threads at once (made on first use, in the loop)."""

    def _lookup_tenant(self, key: str) -> Tenant | None:
        generation = self.state.catalog_cache.generation
        cached = self._tenants.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now and cached[2] == generation:
            return cached[0]
        with self.state.db.read() as conn:
            tenant = tenant_for_key(conn, key)
        if tenant is not None and self.auth_cache_ttl > 0:
            if len(self._tenants) > 10_000:
                self._tenants.clear()
            self._tenants[key] = (tenant, now + self.auth_cache_ttl, generation)
        return tenant

    def authenticate(self, authorization: str | None) -> Tenant:
        if (
            not authorization
            or not authorization.lower().startswith("bearer ")
            or not authorization[7:].strip()
        ):
            raise ApiError(401, "no_secret_key", "Secret key not found in Authorization header")
        key = authorization[7:].strip()
        if env_of_key(key) is None:
            if key.startswith("am_pk_"):
                raise ApiError(401, "invalid_secret_key", "Publishable keys cannot call this endpoint")
            raise ApiError(401, "invalid_request", "Invalid authorization token prefix")
        tenant = self._lookup_tenant(key)
        if tenant is None:
            raise ApiError(401, "invalid_secret_key", "Invalid secret key")
        return tenant

    def run(
        self,
        ep: Endpoint,
        raw: dict[str, Any],
        authorization: str | None,
        idem_key: str | None,
        base_url: str,
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            hashed = idempotency.request_hash(ep.name, raw) if idem_key else ""
            ctx, request = self._admit(ep, raw, authorization, base_url)
            if not idem_key:
                return self._success(ep, ep.service(ctx, request))
            return self._run_keyed(ep, ctx, request, hashed, idem_key, authorization)
        except (_RateLimited, ApiError) as exc:
            return _refusal(exc, authorization)

    def _run_keyed(
        self,
        ep: Endpoint,
        ctx: Ctx,
        request: Any,
        hashed: str,
        key: str,
        authorization: str | None,
    ) -> tuple[int, Any, dict[str, str]]:
        """A request with an ``Idempotency-Key`` header, in one unit of work (store.idempotency).

        The claim, the service's work and the stored response commit together.  A refusal the client
        may retry (any 4xx but 409, any 5xx) releases the claim and commits the rest of the work, as
        each of the service's own transactions committed before (a failed seat charge keeps its voided
        invoice); a 409 (``plan_already_attached``...) is stored and replayed like a success, as
        Autumn keeps the key of a 409; an unexpected exception rolls everything back.  On SQLite a
        billing change takes the customer's billing lock before the unit opens (store.billing_lock).
        """
        _check_key(key)
        db, tenant = ctx.db, ctx.tenant
        customer_id = getattr(request, "customer_id", None)
        locked = db.is_sqlite and ep.name in LOCKED_OPERATIONS and isinstance(customer_id, str)
        if locked:  # a replay needs no lock: answer it before queueing for one
            with db.read() as conn:
                stored = idempotency.lookup(conn, tenant.org_pk, tenant.env, key)
            if stored is not None and stored.created_at >= ctx.now() - idempotency.CLAIM_TTL_MS:
                return _answer_stored(stored, key, hashed)
        lock: AbstractContextManager[None] = nullcontext()
        if locked:
            lock = billing_lock(db, tenant.org_pk, tenant.env, str(customer_id), ctx.now())
        refusal: ApiError | None = None
        with lock, db.unit_of_work() as conn:
            claim = idempotency.begin(conn, tenant.org_pk, tenant.env, key, hashed, ctx.now())
            if isinstance(claim, idempotency.InFlight):
                return _in_flight(key, authorization)
            if isinstance(claim, idempotency.Stored):
                return _answer_stored(claim, key, hashed)
            try:
                status, result, headers = self._success(ep, ep.service(ctx, request))
            except ApiError as exc:
                if exc.status == 409:
                    status, result, headers = _refusal(exc, authorization)
                else:
                    idempotency.release(conn, claim)
                    refusal = exc
            if refusal is None:
                idempotency.complete(conn, claim, status, to_json(result).decode())
        idempotency.purge_if_due(db, ctx.state.clock.now_ms())
        if refusal is not None:
            raise refusal
        return status, result, headers

    def _admit(
        self, ep: Endpoint, raw: dict[str, Any], authorization: str | None, base_url: str
    ) -> tuple[Ctx, Any]:
        """Authenticate, rate-limit and validate: the request's context and its validated request."""
        token = None
        if key_ops.is_customer_token(authorization):  # an am_jwt_ token scopes the request to its customer
            tenant, token = key_ops.authenticate(self.state, ep.name, str(authorization), raw)
        else:
            tenant = self.authenticate(authorization)
        ctx = Ctx(self.state, tenant, token, base_url=base_url)
        if self.limiter is not None:
            wait = self.limiter.hit(ep.name, f"{tenant.org_pk}:{tenant.env}", raw.get("customer_id"))
            if wait is not None:
                raise _RateLimited(wait)
        return ctx, validate_request(ep, raw)

    def _success(self, ep: Endpoint, result: Any) -> tuple[int, Any, dict[str, str]]:
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
    ) -> tuple[int, Any, dict[str, str]]:
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
                _check_key(idem_key)
                keyed = KeyedCall(idem_key, hashed, lambda response: self._seal(ep, response))
            result = await ep.async_service(ctx, request, keyed)
            if result is not None:
                return self._success(ep, result)
            if idem_key:
                return await anyio.to_thread.run_sync(
                    self._run_keyed, ep, ctx, request, hashed, idem_key, authorization
                )
            return self._success(ep, await anyio.to_thread.run_sync(ep.service, ctx, request))
        except (_RateLimited, ApiError) as exc:
            return _refusal(exc, authorization)

    def _seal(self, ep: Endpoint, response: dict[str, Any]) -> tuple[int, str]:
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
    ) -> tuple[int, bytes, dict[str, str]]:
        """One request from its raw parts to (status, JSON body, extra headers).

        Shared by the Starlette routes and :class:`HotPaths`; ``data`` is the body of a POST,
        ``query`` the query parameters of a GET.
        """
        env = "live" if env_of_key((header("authorization") or "")[7:].strip()) == "live" else "sandbox"
        version = header("x-api-version")
        if version and version.strip() and parse_api_version(version.strip()) is None:  # "" is no header
            return self.refuse(
                ep, ApiError(400, "invalid_api_version", f"Invalid API version: {version}"), env
            )
        if version and version.strip() and key_ops.is_customer_token(header("authorization")):
            too_old = key_ops.version_refusal(parse_api_version(version.strip()))
            if too_old is not None:
                return self.refuse(ep, too_old, env)
        try:
            raw = self._parse(data, query, items=ep.items is not None)
        except ApiError as exc:
            return self.refuse(ep, exc, env)
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
        except Exception as exc:  # an unexpected failure: Autumn's internal_error shape, never a traceback
            import logging

            logging.getLogger("reference_server").exception("unhandled error in %s", ep.name)
            return self.refuse(
                ep, ApiError(500, "internal_error", f"Internal error: {type(exc).__name__}"), env
            )
        if (
            status >= 400
            and ep.name.startswith("platform.")
            and isinstance(result, dict)
            and "code" in result
        ):
            result = {**result, "code": request_guard.platform_error_code(status, str(result["code"]))}
        return status, to_json(result), headers

    def _parse(self, data: bytes | None, query: dict[str, str] | None, items: bool = False) -> dict[str, Any]:
        """The request's values, checked by :mod:`request_guard` before anything else looks at them.

        An array body (``items``) is carried as ``{"items": [...]}`` from here on.
        """
        if query is not None:
            raw: Any = query
        elif data is None or not data.strip():
            raw = {}
        else:
            if len(data) > self.max_body_bytes:
                raise request_guard.body_too_large(self.max_body_bytes)
            raw = request_guard.parse_json_body(data)
            if items:
                if not isinstance(raw, list):
                    raise ApiError(400, "invalid_inputs", "Request body must be a JSON array")
                raw = {ITEMS_KEY: raw}
            elif not isinstance(raw, dict):
                raise ApiError(400, "invalid_inputs", "Request body must be a JSON object")
        request_guard.check_values(raw)
        return dict(raw)

    def refuse(self, ep: Endpoint, exc: ApiError, env: str) -> tuple[int, bytes, dict[str, str]]:
        """An error answered before (or instead of) the work, in Autumn's shape for ``ep``."""
        code = exc.code
        if ep.name.startswith("platform."):
            code = request_guard.platform_error_code(exc.status, code)
        return _error(exc.status, code, exc.message, env)

    def too_large(
        self, ep: Endpoint, header: Callable[[str], str | None]
    ) -> tuple[int, bytes, dict[str, str]]:
        """413 for a body past ``max_body_bytes``; the connection closes (the rest was not read)."""
        env = "live" if env_of_key((header("authorization") or "")[7:].strip()) == "live" else "sandbox"
        status, body, _ = self.refuse(ep, request_guard.body_too_large(self.max_body_bytes), env)
        return status, body, {"Connection": "close"}

    async def read_body(self, receive: Receive, content_length: str | None) -> bytes | None:
        """The request body, or None once it grows past ``max_body_bytes`` (the rest is not read)."""
        if (
            content_length is not None
            and content_length.isdigit()
            and int(content_length) > self.max_body_bytes
        ):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def asgi_endpoint(self, ep: Endpoint) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if ep.query_params:
                status, body, headers = await self.serve(
                    ep, request.headers.get, None, dict(request.query_params), lambda: str(request.base_url)
                )
            else:
                data = await self.read_body(request.receive, request.headers.get("content-length"))
                if data is None:
                    status, body, headers = self.too_large(ep, request.headers.get)
                else:
                    status, body, headers = await self.serve(
                        ep, request.headers.get, data, None, lambda: str(request.base_url)
                    )
            return Response(body, status_code=status, media_type="application/json", headers=headers)

        return endpoint


IDEMPOTENCY_KEY_MAX_LENGTH = 255
IN_FLIGHT_RETRY_AFTER_S = 1


def _check_key(key: str) -> None:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or "\x00" in key:
        raise ApiError(
            400,
            "invalid_inputs",
            f"Idempotency-Key: must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters, without NUL",
        )


def _duplicate(key: str) -> ApiError:
    message = f"Another request with idempotency key {key} has already been received"
    return ApiError(409, "duplicate_idempotency_key", message)


def _answer_stored(stored: idempotency.Stored, key: str, hashed: str) -> tuple[int, Any, dict[str, str]]:
    """Replay the stored response of the same request; any other request with the key gets 409."""
    if stored.status is None or stored.body is None or stored.request_hash != hashed:
        raise _duplicate(key)
    return stored.status, json.loads(stored.body), {"Idempotent-Replayed": "true"}


def _in_flight(key: str, authorization: str | None) -> tuple[int, Any, dict[str, str]]:
    status, body, _ = _refusal(
        ApiError(
            409,
            "idempotency_key_in_flight",
            f"A request with idempotency key {key} is still being processed; retry it in "
            f"{IN_FLIGHT_RETRY_AFTER_S} second to get its response",
        ),
        authorization,
    )
    return status, body, {"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)}


def _refusal(exc: Exception, authorization: str | None) -> tuple[int, Any, dict[str, str]]:
    """A rate limit or an Autumn error as (status, body, headers)."""
    env = "live" if env_of_key((authorization or "")[7:].strip()) == "live" else "sandbox"
    if isinstance(exc, _RateLimited):
        body = {
            "message": "Rate limit exceeded, please retry later",
            "code": "rate_limit_exceeded",
            "env": env,
        }
        return 429, body, {"Retry-After": str(int(exc.wait))}
    assert isinstance(exc, ApiError)
    return exc.status, {"message": exc.message, "code": exc.code, "env": env}, {}


def _error(status: int, code: str, message: str, env: str) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps({"message": message, "code": code, "env": env}).encode(), {}


LONG_READS_AT_ONCE = 4
"""SQLite: long reads (``long_read`` operations) served in worker threads at once."""


class HotPaths:
    """Pure ASGI middleware serving the POSTs of check and track before Starlette's routing.

    Starlette's route scan, ``Request`` and ``Response`` objects cost as much as a whole SQLite
    check; these paths need none of them (no path parameters, no base URL), so the middleware reads
    the body and answers through :meth:`Dispatcher.serve` exactly as the routes would.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, tuple[Dispatcher, Endpoint]]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if target is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        dispatcher, ep = target
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        try:
            data = await dispatcher.read_body(receive, headers.get("content-length"))
        except ClientDisconnect:  # the client went away
            return
        if data is None:
            status, body, extra = dispatcher.too_large(ep, headers.get)
        else:
            status, body, extra = await dispatcher.serve(
                ep, headers.get, data, None, lambda: _scope_base_url(scope, headers)
            )
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


def _scope_base_url(scope: Scope, headers: dict[str, str]) -> str:
    """The request's base URL as Starlette's ``request.base_url`` gives it (without building a Request)."""
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "127.0.0.1"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}/"


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait


def build_routes(dispatcher: Dispatcher) -> tuple[list[Route], list[dict[str, Any]]]:
    """Routes for every endpoint (:func:`~reference_server.api.endpoints.endpoints`), plus an index
    for /openapi.json."""
    routes: list[Route] = []
    index: list[dict[str, Any]] = []
    by_path: dict[str, Endpoint] = {}
    for ep in endpoints():
        routes.append(Route(ep.path, dispatcher.asgi_endpoint(ep), methods=[ep.method]))
        entry: dict[str, Any] = {
            "path": ep.path,
            "method": ep.method,
            "operation_id": ep.operation_id,
            "name": ep.name,
            "summary": ep.summary,
        }
        if ep.in_spec:
            entry.update(params_model=ep.params_model, response_model=ep.response_model, status=ep.status)
        index.append(entry)
        if ep.method == "POST":
            by_path[ep.path] = ep
    for alias, target in LEGACY_ALIASES.items():
        routes.append(Route(alias, dispatcher.asgi_endpoint(by_path[target]), methods=["POST"]))
    for path in HOT_PATHS:
        dispatcher.hot_endpoints[path] = by_path[path]
    for alias, target in LEGACY_ALIASES.items():
        if target in HOT_PATHS:
            dispatcher.hot_endpoints[alias] = by_path[target]
    # Starlette tries routes in order (a regex match each): the hot paths go first.
    routes.sort(key=lambda route: route.path not in HOT_PATHS)
    return routes, index
