"""Request handling: one ASGI route per operation of the generated table, plus the extras.

Every request goes through :meth:`Dispatcher.handle`: parse the JSON body, authenticate the key,
rate-limit, validate with the operation's generated params model, run the service, and shape the
response with the generated response model.  The work after parsing is synchronous: SQLite runs it
directly on the event loop (no thread hop per statement), PostgreSQL in one worker-thread hop,
except check and track, whose single statement is awaited on the loop (:meth:`Dispatcher.run_async`).
check and track POSTs skip Starlette's routing altogether (:class:`HotPaths`).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from autumn_sdk._generated import operations as ops
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation
from reference_server.api import admin, request_guard
from reference_server.api.api_version import parse_api_version
from reference_server.api.ratelimit import RateLimiter
from reference_server.api.request_guard import describe_validation_error
from reference_server.api.unsupported_fields import refuse_unsupported, watches_unsupported
from reference_server.billing import import_plans as billing_import
from reference_server.billing import invoice_actions, multi_update
from reference_server.billing.attach import attach, preview_attach
from reference_server.billing.customer_lock import LOCKED_OPERATIONS
from reference_server.billing.customer_pages import open_customer_portal, setup_payment
from reference_server.billing.multi_attach import multi_attach, preview_multi_attach
from reference_server.billing.schedules import create_schedule
from reference_server.billing.update import preview_update, update_subscription
from reference_server.errors import ApiError
from reference_server.service import (
    balances,
    batch_track,
    catalog_ids,
    check_track,
    customers,
    entities,
    events,
    features,
    invoices,
    key_ops,
    license_ops,
    locks,
    plans,
    plans_read,
    platform,
    referrals,
    revenuecat,
    rewards,
    sandboxes,
    sdk_extras,
    sdk_logs,
    track_tokens,
    webhook_endpoints,
)
from reference_server.service.context import AppState, Ctx
from reference_server.service.extra_params import (
    AdvanceClockParams,
    CreateSandboxParams,
    FinalizeInvoiceParams,
    ListBalancesParams,
    ListCustomerPlansParams,
    NoParams,
    SandboxRefParams,
    SearchLogsParams,
    StripeConnectionParams,
    SyncWebhooksParams,
    VerifyParams,
    WebhookParams,
    WebhookRefParams,
)
from reference_server.store import idempotency
from reference_server.store.billing_lock import billing_lock
from reference_server.store.tenancy import Tenant, env_of_key, tenant_for_key

Service = Callable[[Ctx, Any], dict[str, Any]]
"""A service takes the context and the validated request: the operation's params model instance
(a list of them for an array body, :class:`NoParams` when the operation has no body).  Each
service annotates its own model; ``tests/server/test_service_params.py`` checks they match."""
AsyncService = Callable[[Ctx, Any], Awaitable[dict[str, Any] | None]]
"""An event-loop fast path of a service; None hands the request to the synchronous service."""

ASYNC_SERVICES: dict[Operation, AsyncService] = {
    ops.CHECK: check_track.check_async,
    ops.TRACK: check_track.track_async,
}
"""The event-loop fast path of each ``hot_path`` operation (:func:`build_routes` checks they match)."""


def service_table() -> dict[str, Service]:
    """Qualified operation name -> the function that serves it."""
    return {
        "customers.get_or_create": customers.get_or_create,
        "customers.get": customers.get,
        "customers.list": customers.list_customers,
        "customers.update": customers.update_customer,
        "customers.delete": customers.delete_customer,
        "plans.create": plans.create_plan,
        "plans.get": plans_read.plans_get,
        "plans.list": plans_read.plans_list,
        "plans.update": plans.update_plan,
        "plans.delete": plans.delete_plan,
        "features.create": features.create_feature,
        "features.get": features.get_feature,
        "features.list": features.list_features,
        "features.update": features.update_feature,
        "features.delete": features.delete_feature,
        "billing.attach": attach,
        "billing.update": update_subscription,
        "billing.create_schedule": create_schedule,
        "billing.multi_attach": multi_attach,
        "billing.preview_attach": preview_attach,
        "billing.preview_multi_attach": preview_multi_attach,
        "billing.preview_update": preview_update,
        "billing.open_customer_portal": open_customer_portal,
        "billing.setup_payment": setup_payment,
        "balances.create": balances.create_balance,
        "balances.update": balances.update_balance,
        "balances.delete": balances.delete_balance,
        "balances.finalize": locks.finalize,
        "check": check_track.check,
        "track": check_track.track,
        "events.list": events.list_events,
        "events.aggregate": events.aggregate,
        "entities.create": entities.create_entity,
        "entities.get": entities.get_entity_op,
        "entities.list": entities.list_entities_op,
        "entities.update": entities.update_entity,
        "entities.delete": entities.delete_entity,
        "referrals.create_code": referrals.create_code,
        "referrals.redeem_code": referrals.redeem_code,
        "rewards.redeem_code": referrals.redeem_reward,
        "platform.create_organization": platform.create_organization,
        "platform.list_organizations": platform.list_organizations,
        "platform.list_users": platform.list_users,
        "platform.update_stripe_config": platform.update_stripe,
        # Autumn's current API (2026-08-22)
        "batch_track": batch_track.batch_track,
        "track_tokens": track_tokens.track_tokens,
        "billing.multi_update": multi_update.multi_update,
        "billing.preview_multi_update": multi_update.preview_multi_update,
        "billing.import": billing_import.import_billing,
        "invoices.insert": invoices.insert_invoices,
        "invoices.list": invoices.list_invoices,
        "licenses.attach": license_ops.attach_license,
        "licenses.release": license_ops.release_license,
        "licenses.list": license_ops.list_licenses,
        "licenses.list_assignments": license_ops.list_license_assignments,
        "keys.mint": key_ops.mint_key,
        "keys.refresh": key_ops.refresh_key,
        "keys.revoke": key_ops.revoke_key,
        "platform.link_revenue_cat": revenuecat.link_revenue_cat,
        "platform.sync_revenue_cat": revenuecat.sync_revenue_cat,
        "platform.get_revenue_cat_keys": revenuecat.get_revenue_cat_keys,
        "rewards.create": rewards.create_reward,
        "rewards.get": rewards.get_reward,
        "rewards.list": rewards.list_rewards,
        "rewards.update": rewards.update_reward,
        "rewards.delete": rewards.delete_reward,
        "referrals.create_program": rewards.create_referral_program,
        "referrals.get_program": rewards.get_referral_program,
        "referrals.list_programs": rewards.list_referral_programs,
        "referrals.update_program": rewards.update_referral_program,
        "referrals.delete_program": rewards.delete_referral_program,
    }


EXTRA_OPERATIONS: dict[str, tuple[str, Service, type[BaseModel] | None]] = {
    "/v1/test_clocks.advance": ("test_clocks.advance", admin.advance_org_clock, AdvanceClockParams),
    "/v1/customers.advance_test_clock": (
        "customers.advance_test_clock",
        admin.advance_customer_clock,
        AdvanceClockParams,
    ),
    "/v1/invoices.finalize": ("invoices.finalize", admin.finalize_invoice, FinalizeInvoiceParams),
    "/v1/invoices.void": ("invoices.void", invoice_actions.void_invoice, FinalizeInvoiceParams),
    "/v1/invoices.pay": ("invoices.pay", invoice_actions.pay_invoice, FinalizeInvoiceParams),
    **{path: (name, refuse, None) for path, (name, refuse) in invoice_actions.REFUSED_OPERATIONS.items()},
    "/v1/catalog.internal_ids": ("catalog.internal_ids", catalog_ids.internal_ids, None),
    "/v1/organizations.current": ("organizations.current", catalog_ids.current_organization, None),
    "/v1/webhooks.create": ("webhooks.create", webhook_endpoints.create_webhook, WebhookParams),
    "/v1/webhooks.get": ("webhooks.get", webhook_endpoints.get_webhook, WebhookRefParams),
    "/v1/webhooks.list": ("webhooks.list", webhook_endpoints.list_webhooks, None),
    "/v1/webhooks.update": ("webhooks.update", webhook_endpoints.update_webhook, WebhookParams),
    "/v1/webhooks.delete": ("webhooks.delete", webhook_endpoints.delete_webhook, WebhookRefParams),
    "/v1/webhooks.preview_sync": (
        "webhooks.preview_sync",
        webhook_endpoints.preview_sync_webhooks,
        SyncWebhooksParams,
    ),
    "/v1/webhooks.sync": ("webhooks.sync", webhook_endpoints.sync_webhooks, SyncWebhooksParams),
    "/v1/sandboxes.create": ("sandboxes.create", sandboxes.create_sandbox, CreateSandboxParams),
    "/v1/sandboxes.list": ("sandboxes.list", sandboxes.list_sandboxes, None),
    "/v1/sandboxes.delete": ("sandboxes.delete", sandboxes.delete_sandbox, SandboxRefParams),
    "/v1/sandboxes.reset": ("sandboxes.reset", sandboxes.reset_sandbox, None),
    "/v1/balances.list": ("balances.list", sdk_extras.list_balances, ListBalancesParams),
    "/v1/subscriptions.list": ("subscriptions.list", sdk_extras.list_subscriptions, ListCustomerPlansParams),
    "/v1/purchases.list": ("purchases.list", sdk_extras.list_purchases, ListCustomerPlansParams),
    "/v1/billing.verify": ("billing.verify", sdk_extras.verify, VerifyParams),
    "/v1/logs.search": ("logs.search", sdk_logs.search_logs, SearchLogsParams),
    "/v1/platform.get_stripe_connection": (
        "platform.get_stripe_connection",
        sdk_extras.get_stripe_connection,
        StripeConnectionParams,
    ),
    "/v1/platform.disconnect_stripe": (
        "platform.disconnect_stripe",
        sdk_extras.disconnect_stripe,
        StripeConnectionParams,
    ),
}
"""Operations beyond the spec: path -> (name, service, request model from :mod:`extra_params`)."""

HOT_PATHS = frozenset(op.path for op in OPERATIONS if op.hot_path)
"""POST paths served ahead of Starlette's routing: the operations whose policy sets ``hot_path``."""

LEGACY_ALIASES: dict[str, str] = {
    "/v1/check": "/v1/balances.check",
    "/v1/entitled": "/v1/balances.check",
    "/v1/track": "/v1/balances.track",
    "/v1/events": "/v1/balances.track",
    "/v1/balances/create": "/v1/balances.create",
}


ITEMS_KEY = "items"
"""Where the items of an array body (``balances.batch_track``) reach the service."""


def _validate_items(model: type[BaseModel], bounds: tuple[int, int | None], items: Any) -> list[BaseModel]:
    """Each item validated as a body of its own; errors name the item's index."""
    fewest, most = bounds
    count = len(items) if isinstance(items, list) else 0
    if count < fewest or (most is not None and count > most):
        limit = f"between {fewest} and {most}" if most is not None else f"at least {fewest}"
        raise ApiError(400, "invalid_inputs", f"The request must hold {limit} items; it holds {count}")
    out: list[BaseModel] = []
    for index, item in enumerate(items):
        try:
            parsed = model.model_validate(item)
        except ValidationError as exc:
            raise ApiError(400, "invalid_inputs", f"Item {index}: {describe_validation_error(exc)}") from exc
        request_guard.check_nulls(parsed)
        out.append(parsed)
    return out


def _dumped(request: BaseModel | list[BaseModel]) -> dict[str, Any]:
    """The request as the JSON dict a not-yet-typed service reads (transitional)."""
    if isinstance(request, list):
        return {ITEMS_KEY: [item.model_dump(mode="json", exclude_unset=True) for item in request]}
    return request.model_dump(mode="json", exclude_unset=True)


def _takes_dict(service: Callable[..., Any]) -> bool:
    """Whether ``service`` still reads its request as a dict rather than its params model."""
    params = list(inspect.signature(service, eval_str=True).parameters.values())
    return len(params) > 1 and params[1].annotation == dict[str, Any]


def error_response(
    status: int, code: str, message: str, env: str, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"message": message, "code": code, "env": env}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@dataclass
class Endpoint:
    name: str
    service: Service
    params_model: type[BaseModel] | None
    response_model: type[BaseModel] | None
    status: int = 200
    query_params: bool = False
    items: tuple[int, int | None] | None = None
    """For an array body: the fewest and most items the spec allows."""
    async_service: AsyncService | None = None
    takes_dict: bool = False
    """Transitional: the service reads a dumped dict instead of its params model."""


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
        customer_id = raw_customer_id(request)
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
        model = ep.params_model or NoParams
        request: BaseModel | list[BaseModel]
        if ep.items is not None:
            request = _validate_items(model, ep.items, raw.get(ITEMS_KEY))
        else:
            try:
                request = model.model_validate(raw)
            except ValidationError as exc:
                raise ApiError(400, "invalid_inputs", describe_validation_error(exc)) from exc
            request_guard.check_nulls(request)
            if ep.query_params:  # query values were strings until the model parsed them
                request_guard.check_values(request.model_dump(mode="json", exclude_unset=True))
            if watches_unsupported(ep.name):
                refuse_unsupported(ep.name, request.model_dump(mode="json", exclude_unset=True))
        return ctx, (_dumped(request) if ep.takes_dict else request)

    def _success(self, ep: Endpoint, result: Any) -> tuple[int, Any, dict[str, str]]:
        if ep.response_model is not None and self.validate_responses:
            # The generated model guards the shape; the body keeps Autumn's integers (the models
            # declare numbers as float, so a dump would write 50 as 50.0).
            ep.response_model.model_validate(result)
        return ep.status, result, {}

    async def run_async(
        self, ep: Endpoint, raw: dict[str, Any], authorization: str | None, base_url: str
    ) -> tuple[int, Any, dict[str, str]]:
        """:meth:`run` for an endpoint with an event-loop fast path (PostgreSQL check and track).

        Authentication and the catalogue come from the per-process caches (a miss reads the
        database synchronously, at most about once a second per key); the service's one statement
        is awaited; anything the fast path declines runs in a worker thread as usual.
        """
        assert ep.async_service is not None
        try:
            ctx, request = self._admit(ep, raw, authorization, base_url)
            result = await ep.async_service(ctx, request)
            if result is None:
                result = await anyio.to_thread.run_sync(ep.service, ctx, request)
            return self._success(ep, result)
        except (_RateLimited, ApiError) as exc:
            return _refusal(exc, authorization)

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
            if self.state.db.is_sqlite:
                status, result, headers = self.run(*args)
            elif ep.async_service is not None and self.state.async_pool is not None and not args[3]:
                status, result, headers = await self.run_async(ep, raw, args[2], public)
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


def raw_customer_id(request: Any) -> Any:
    """The request's ``customer_id``, whichever form the service takes it in."""
    if isinstance(request, dict):
        return request.get("customer_id")
    return getattr(request, "customer_id", None)


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
    """Routes for every operation of the table (and the extras), plus an index for /openapi.json."""
    table = service_table()

    table["platform.generate_oauth_url"] = platform.generate_oauth_url
    routes: list[Route] = []
    index: list[dict[str, Any]] = []
    by_path: dict[str, Endpoint] = {}
    hot = {op for op in OPERATIONS if op.hot_path}
    if set(ASYNC_SERVICES) != hot:
        raise RuntimeError("ASYNC_SERVICES must serve exactly the hot_path operations")
    for op in OPERATIONS:
        name = op.qualified_name
        service = table.get(name)
        if service is None:
            raise RuntimeError(f"operation {name} ({op.path}) has no service; add it to service_table")
        ep = Endpoint(
            name,
            service,
            op.params_model,
            op.response_model,
            status=op.success_statuses[0] if op.success_statuses else 200,
            query_params=op.http_method == "GET",
            async_service=ASYNC_SERVICES.get(op),
            items=(op.min_items, op.max_items) if op.body_style == "items" else None,
            takes_dict=_takes_dict(service),
        )
        routes.append(Route(op.path, dispatcher.asgi_endpoint(ep), methods=[op.http_method]))
        index.append(
            {
                "path": op.path,
                "method": op.http_method,
                "operation_id": op.operation_id,
                "name": name,
                "summary": op.summary,
                "params_model": op.params_model,
                "response_model": op.response_model,
                "status": ep.status,
            }
        )
        if op.http_method == "POST":
            by_path[op.path] = ep
    for path, (name, service, params_model) in EXTRA_OPERATIONS.items():
        ep = Endpoint(name, service, params_model, None, takes_dict=_takes_dict(service))
        routes.append(Route(path, dispatcher.asgi_endpoint(ep), methods=["POST"]))
        index.append(
            {
                "path": path,
                "method": "POST",
                "operation_id": name,
                "name": name,
                "summary": (service.__doc__ or "").strip().splitlines()[0] if service.__doc__ else "",
            }
        )
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
