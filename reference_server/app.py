"""``create_app``: the ASGI application of the reference server."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reference_server.api.dispatcher import Dispatcher
from reference_server.api.endpoints import endpoints
from reference_server.api.hot_paths import HotPaths
from reference_server.api.ops import ops_routes
from reference_server.api.ratelimit import Limit, RateLimiter, SharedRateLimiter
from reference_server.api.refusals import error_response
from reference_server.api.request_guard import DEFAULT_MAX_BODY_BYTES, PLATFORM_PREFIX, platform_error_code
from reference_server.api.router import build_routes
from reference_server.billing.processor_choice import processors_of
from reference_server.billing.wiring import wire_billing
from reference_server.clock import Clock, SystemClock
from reference_server.dashboard import RequestLogMiddleware, request_log_for
from reference_server.dashboard import routes_for as dashboard_routes_for
from reference_server.jobs import DEFAULT_LEASE_S, LeaderLease
from reference_server.observability import OpsMiddleware
from reference_server.pages import PagesContext, billing_page_routes, stripe_checkout_completer
from reference_server.processors.registry import Processors, ProcessorSettings
from reference_server.service.context import AppState
from reference_server.service.track_loop import new_track_batches
from reference_server.store.async_pool import AsyncPool
from reference_server.store.catalog import CatalogCache
from reference_server.store.db import Database
from reference_server.store.leases import startup_lock
from reference_server.store.org_stripe import setup_encryption
from reference_server.store.schema_version import require_current
from reference_server.store.subject_cache import SubjectCache
from reference_server.store.tenancy import ensure_default_org, env_of_key, register_key

if TYPE_CHECKING:
    from reference_server.settings import ServerSettings

SERVER_NAME = "autumn-reference-server"
API_VERSION = "2.3.0"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("autumn-kit")
    except Exception:
        return "0.0.0"


def create_app(
    database_url: str | None = None,
    secret_key: str | None = None,
    clock: Clock | None = None,
    demo: bool = False,
    *,
    rate_limits: bool | dict[str, Limit] | RateLimiter = True,
    validate_responses: bool = False,
    auth_cache_ttl: float = 1.0,
    migrate: bool = True,
    encryption_keys: str | Sequence[str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    public_url: str | None = None,
    bind_url: str | None = None,
    background_jobs: bool = True,
    job_lease_s: float = DEFAULT_LEASE_S,
    metrics: bool = True,
    processors: ProcessorSettings | None = None,
) -> Starlette:
    """Build the server: migrate the database, register ``secret_key`` for the default org, route.

    ``rate_limits``: True for Autumn's defaults, False to switch them off (tests, benchmarks), a
    mapping of group -> :class:`Limit` overriding some groups, or a ready :class:`RateLimiter`.
    ``validate_responses`` re-validates every success body with its generated model (a guard for
    tests; off in production, where it would cost more than a check itself).
    ``encryption_keys`` (comma-separated or a list; the first encrypts) protect the Stripe secrets
    organizations store; default ``AUTUMN_ENCRYPTION_KEYS``, then a key file beside a SQLite database
    (:mod:`reference_server.store.secrets`).
    Processes starting at once on one database take turns (:func:`startup_lock`) to migrate and seed
    it; ``migrate=False`` instead refuses a database that ``autumn-server migrate`` has not brought up
    to date.  ``public_url`` is the base of checkout and portal links (default: each request's own base
    URL; work with no request, such as renewals, uses ``bind_url``, the address the server listens on).
    ``background_jobs``: whether this process takes part in running them (one process at a time,
    the holder of a lease of ``job_lease_s`` seconds: :mod:`reference_server.jobs`).
    ``metrics`` serves ``/metrics``; ``/healthz`` and ``/readyz`` are always served.
    ``max_body_bytes``: the largest request body served (default 1 MiB); larger bodies get 413
    (:mod:`reference_server.api.request_guard` holds this and the other input limits).
    ``processors``: the payment processor settings (the default processor, and each registered
    processor's own, such as the platform's Stripe key); :func:`create_app_from_settings` passes the
    server's, and without them they are read from the environment (:meth:`ProcessorSettings.from_env`).
    """
    db = Database(database_url)
    state = AppState(
        db=db,
        clock=clock or SystemClock(),
        catalog_cache=CatalogCache(),
        demo=demo,
        public_url=public_url.rstrip("/") if public_url else None,
        bind_url=bind_url.rstrip("/") if bind_url else None,
        background_lease=LeaderLease(db, ttl_s=job_lease_s, enabled=background_jobs),
    )
    try:
        with startup_lock(db):  # one process at a time migrates and seeds a database
            if migrate:
                db.migrate()
            else:
                require_current(db)
            setup_encryption(db, encryption_keys)
            with db.write() as conn:
                org = ensure_default_org(conn)
                if secret_key:
                    register_key(conn, org.pk, secret_key, "configured")
            if demo:
                from reference_server.demo import seed_demo

                seed_demo(state, org.pk)
    except Exception:
        db.dispose()
        raise
    if not db.is_sqlite:
        state.subject_cache = SubjectCache()
        state.track_batches = new_track_batches()
        state.async_pool = AsyncPool(db.url)
    state.processors = Processors(processors or ProcessorSettings.from_env())
    billing = wire_billing(state)  # the hooks the services call, the pages' actions, background work
    pages = PagesContext(state.db, state.clock, processors_of(state), billing.page_actions)  # hosted pages
    billing_routes = [
        *billing_page_routes(pages),
        *billing.routes,
        *processors_of(state).event_routes(  # each processor's events (Stripe's webhooks)
            replace(billing.event_hooks, checkout_completed=stripe_checkout_completer(pages))
        ),
    ]
    limiter: RateLimiter | None = None
    if isinstance(rate_limits, RateLimiter):
        limiter = rate_limits
    elif rate_limits:
        limiter = RateLimiter()
        if isinstance(rate_limits, dict):
            limiter.limits.update(rate_limits)
    dispatcher = Dispatcher(state, limiter, validate_responses, auth_cache_ttl, max_body_bytes=max_body_bytes)
    routes, index = build_routes(dispatcher)

    async def root(request: Request) -> JSONResponse:
        return JSONResponse({"name": SERVER_NAME, "version": _version(), "api_version": API_VERSION})

    document: dict[str, Any] = {}

    async def openapi(request: Request) -> JSONResponse:
        if not document:  # built on first use: JSON schemas of ~50 models take a moment
            document.update(_openapi_document(index))
        return JSONResponse(document)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        billing.worker.start()
        yield
        billing.worker.stop()
        if state.request_log is not None:  # what the last requests logged, written before the pool goes
            state.request_log.close()
        if state.async_pool is not None:
            await state.async_pool.close()
        db.dispose()

    async def not_found(request: Request, exc: Exception) -> Response:
        """404/405 in Autumn's error shape; a 405 lists every method the path serves in ``Allow``."""
        status = getattr(exc, "status_code", 404)
        path = request.url.path
        key = request.headers.get("authorization", "")[7:].strip()
        env = "live" if env_of_key(key) == "live" else "sandbox"
        headers: dict[str, str] | None = None
        if status == 405:
            methods = sorted(
                {
                    method
                    for route in request.app.router.routes
                    if isinstance(route, Route) and route.methods and route.path_regex.match(path)
                    for method in route.methods
                }
            )
            headers = {"Allow": ", ".join(methods)}
            message = f"Method {request.method} not allowed for {path}; allowed: {', '.join(methods)}"
            code = "method_not_allowed"
        else:
            message, code = f"Route {request.method} {path} not found", "not_found"
        if path.startswith(PLATFORM_PREFIX):
            code = platform_error_code(status, code)
        return error_response(status, code, message, env, headers)

    hot = {path: (dispatcher, ep) for path, ep in dispatcher.hot_endpoints.items()}
    app = Starlette(
        middleware=[
            Middleware(OpsMiddleware, metrics=metrics),
            Middleware(RequestLogMiddleware, log=request_log_for(state)),  # the dashboard's recent requests
            Middleware(HotPaths, endpoints=hot),
        ],
        exception_handlers={404: not_found, 405: not_found},
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *ops_routes(db, limiter, metrics),
            *routes,
            *billing_routes,
            *dashboard_routes_for(
                state,
                endpoints(),
            ),
        ],
        lifespan=lifespan,
    )
    app.state.autumn = state
    app.state.billing = billing
    return app


def _openapi_document(index: list[dict[str, Any]]) -> dict[str, Any]:
    """The paths this server serves, with the generated models' JSON schemas for bodies and responses."""
    paths: dict[str, Any] = {}
    error = {
        "description": "Autumn error",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["message", "code", "env"],
                    "properties": {
                        "message": {"type": "string"},
                        "code": {"type": "string"},
                        "env": {"type": "string", "enum": ["sandbox", "live"]},
                    },
                }
            }
        },
    }
    for entry in index:
        operation: dict[str, Any] = {
            "operationId": entry["operation_id"],
            "summary": entry["summary"],
            "x-autumn-operation": entry["name"],
            "security": [{"secretKey": []}],
            "responses": {"4XX": error, "5XX": error},
        }
        params, response = entry.get("params_model"), entry.get("response_model")
        if params is not None and entry["method"] == "POST":
            schema = params.model_json_schema(by_alias=False)
            operation["requestBody"] = {"content": {"application/json": {"schema": schema}}}
        ok: dict[str, Any] = {"description": "Success"}
        if response is not None:
            ok["content"] = {"application/json": {"schema": response.model_json_schema(by_alias=False)}}
        operation["responses"][str(entry.get("status", 200))] = ok
        paths.setdefault(entry["path"], {})[entry["method"].lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Autumn API (reference server)", "version": API_VERSION},
        "components": {"securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def create_app_from_settings(settings: ServerSettings | None = None, **kwargs: Any) -> Starlette:
    """The server as ``autumn-server`` configures it, from :class:`ServerSettings` (default: read
    from the ``AUTUMN_*`` environment); ``kwargs`` go to :func:`create_app` on top."""
    from reference_server.settings import ConfigurationError, load_settings

    settings = settings or load_settings()
    limiter: bool | RateLimiter = False
    if settings.rate_limits and settings.redis_url:
        prefix = "autumn-rl:" + hashlib.sha256(Database(settings.database_url).url.encode()).hexdigest()[:12]
        limiter = SharedRateLimiter(settings.redis_url, settings.limits(), key_prefix=prefix)
        if not limiter.check_connection():
            raise ConfigurationError(
                f"cannot reach Redis at {settings.redis_url} (AUTUMN_REDIS_URL) for the shared rate "
                "limits: start Redis, fix the URL, or switch rate limits off with --no-rate-limits"
            )
    elif settings.rate_limits:
        limiter = RateLimiter(limits=settings.limits())
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    options: dict[str, Any] = {
        "secret_key": secret,
        "demo": settings.demo,
        "rate_limits": limiter,
        "migrate": settings.migrate_on_start,
        "encryption_keys": keys,
        "max_body_bytes": settings.max_body_bytes,
        "public_url": settings.public_url,
        "bind_url": _bind_url(settings.host, settings.port),
        "background_jobs": settings.background_jobs,
        "job_lease_s": settings.job_lease_seconds,
        "metrics": settings.metrics,
        "processors": settings.processor_settings(),
    }
    options.update(kwargs)
    return create_app(settings.database_url, **options)


def _bind_url(host: str, port: int) -> str:
    """The URL of the address ``autumn-server`` listens on (a wildcard address: this machine)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def app_factory() -> Starlette:
    """For ``uvicorn --factory reference_server.app:app_factory`` and gunicorn
    (``'reference_server.app:app_factory()'``): the app from the ``AUTUMN_*`` settings."""
    return create_app_from_settings()
