"""The dashboard's pages: server-rendered (Jinja2), htmx for in-place updates, uPlot for the usage chart.

Every page needs a signed-in admin and shows only that admin's organization; every POST needs the
session's CSRF token.  Changes go through :class:`~reference_server.dashboard.operations.Operations`,
the API's own validation and service functions, so the dashboard can do nothing the API would refuse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from reference_server.errors import AutumnError
from reference_server.pages.security import StaticHeaders, secured
from reference_server.store.api_keys_repo import keys_of, owns_key
from reference_server.store.catalog_listing import (
    active_customers_per_version,
    current_plan_names,
    feature_names,
    features_of,
    plan_versions,
)
from reference_server.store.dashboard_tables import branding_of, set_branding
from reference_server.store.env_counts import env_counts
from reference_server.store.request_log import recent_requests
from reference_server.store.tenancy import create_key, revoke_key
from reference_server.store.webhook_deliveries_repo import (
    endpoints_of,
    owns_delivery,
    recent_deliveries,
    resend_delivery,
)

from . import auth
from .operations import Operations
from .request_log import RequestLog

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
ENVS = ("sandbox", "live")
PREFIX = "/dashboard"

NOTICES = {
    "attached": "The plan was attached.",
    "canceled": "The plan will be canceled at the end of its period.",
    "balance": "The balance was adjusted.",
    "clock": "The customer's test clock moved forward.",
    "feature": "The feature was created.",
    "feature_saved": "The feature was saved.",
    "plan": "The plan was saved.",
    "revoked": "The key was revoked.",
    "resent": "The delivery was queued to be sent again.",
    "branding": "Branding saved: the hosted pages use it now.",
}


def _date(ms: Any) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _day(ms: Any) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


TEMPLATES.env.filters["datetime"] = _date
TEMPLATES.env.filters["day"] = _day


@dataclass
class DashboardContext:
    ops: Operations
    secure_cookies: bool | None = None  # None: Secure unless served over http on a loopback address
    request_log: RequestLog | None = None
    sign_in_throttle: auth.SignInThrottle = field(default_factory=auth.SignInThrottle)

    @property
    def db(self) -> Any:
        return self.ops.state.db

    def now(self) -> int:
        return int(self.ops.state.clock.now_ms())


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _loopback_http(request: Request) -> bool:
    return request.url.scheme == "http" and (request.url.hostname or "") in ("127.0.0.1", "localhost", "::1")


class Dashboard:
    def __init__(self, ctx: DashboardContext) -> None:
        self.ctx = ctx

    # -- frame ---------------------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, admin: auth.Admin | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        values.setdefault("error", None)
        values.setdefault("notice", NOTICES.get(request.query_params.get("notice", "")))
        values.setdefault("env", None)
        values.setdefault("section", None)
        values["admin"] = admin
        values["csrf_token"] = admin.csrf_token if admin else values.get("csrf_token")
        values["prefix"] = PREFIX
        values["envs"] = ENVS
        return TEMPLATES.TemplateResponse(request, template, values, status_code=status)

    def admin_of(self, request: Request) -> auth.Admin | None:
        with self.ctx.db.read() as conn:
            return auth.session_admin(conn, request.cookies.get(auth.SESSION_COOKIE), self.ctx.now())

    def require(self, request: Request, form: Mapping[str, Any] | None = None) -> auth.Admin:
        """The signed-in admin; a GET without one goes to sign-in, a POST is refused (403).
        Checked once per request (an action that re-renders its page does not check again)."""
        checked = getattr(request.state, "dashboard_admin", None)
        if isinstance(checked, auth.Admin):
            return checked
        admin = self.admin_of(request)
        if admin is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise _Refused(RedirectResponse(f"{PREFIX}/login?next={quote(target)}", 303))
            raise _Refused(self.forbidden(request, None, "Sign in first."))
        if request.method == "POST":
            self.check_origin(request, admin)
            given = (form or {}).get("csrf_token") or request.headers.get("x-csrf-token")
            if not auth.same_token(admin.csrf_token, str(given) if given else None):
                raise _Refused(
                    self.forbidden(
                        request,
                        admin,
                        "The form expired or did not come from this dashboard (CSRF token missing or wrong). "
                        "Reload the page and try again.",
                    )
                )
        request.state.dashboard_admin = admin
        return admin

    def check_origin(self, request: Request, admin: auth.Admin | None) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null":
            parts = urlsplit(origin)
            if (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc):
                raise _Refused(self.forbidden(request, admin, "Cross-origin request refused."))

    def forbidden(self, request: Request, admin: auth.Admin | None, message: str) -> HTMLResponse:
        return self.render(request, "message.html", admin, 403, heading="Refused", message=message)

    def not_found(self, request: Request, admin: auth.Admin | None, what: str = "This page") -> HTMLResponse:
        return self.render(
            request,
            "message.html",
            admin,
            404,
            heading="Not found",
            message=f"{what} does not exist in your organization.",
        )

    @staticmethod
    def env_of(request: Request) -> str:
        env = str(request.path_params.get("env", ""))
        if env not in ENVS:
            raise _Refused(Response("Not found", status_code=404))
        return env

    def back(self, path: str, notice: str) -> Response:
        return RedirectResponse(f"{PREFIX}{path}?notice={notice}", 303)

    # -- sign-in -------------------------------------------------------------------------------------
    def login_page(
        self,
        request: Request,
        error: str | None = None,
        status: int = 200,
        email: str = "",
        next_path: str | None = None,
    ) -> Response:
        token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = self.render(
            request,
            "login.html",
            None,
            status,
            error=error,
            csrf_token=token,
            email=email,
            next=next_path if next_path is not None else request.query_params.get("next", ""),
        )
        self._cookie(request, response, auth.LOGIN_CSRF_COOKIE, token, 3600)
        return response

    def login(self, request: Request, form: Mapping[str, Any]) -> Response:
        self.check_origin(request, None)
        if not auth.same_token(
            request.cookies.get(auth.LOGIN_CSRF_COOKIE, ""), str(form.get("csrf_token") or "")
        ):
            return self.forbidden(
                request,
                None,
                "The sign-in form expired (CSRF token missing or wrong). Reload the page and try again.",
            )
        email = str(form.get("email", "")).strip()
        password = str(form.get("password", ""))
        next_path = str(form.get("next") or "")
        if not email:
            return self.login_page(request, "Enter your email address.", 400, next_path=next_path)
        if not password:
            return self.login_page(request, "Enter your password.", 400, email, next_path)
        throttle = self.ctx.sign_in_throttle
        client = request.client.host if request.client is not None else "-"
        if not throttle.allowed(email, client):
            message = "Too many failed sign-ins. Wait 15 minutes, then try again."
            return self.login_page(request, message, 429, email, next_path)
        with self.ctx.db.write() as conn:
            admin_pk = auth.authenticate(conn, email, password)
            if admin_pk is None:
                throttle.failed(email, client)
                return self.login_page(request, "Wrong email or password.", 401, email, next_path)
            token = auth.start_session(conn, admin_pk, self.ctx.now())
        throttle.succeeded(email)
        target = str(form.get("next") or "")
        if not target.startswith(PREFIX + "/") or target.startswith("//"):
            target = f"{PREFIX}/sandbox"
        response = RedirectResponse(target, 303)
        self._cookie(request, response, auth.SESSION_COOKIE, token, auth.SESSION_TTL_MS // 1000)
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=PREFIX)
        return response

    def logout(self, request: Request, form: Mapping[str, Any]) -> Response:
        self.require(request, form)
        with self.ctx.db.write() as conn:
            auth.end_session(conn, request.cookies.get(auth.SESSION_COOKIE))
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(auth.SESSION_COOKIE, path=PREFIX)
        return response

    def _cookie(self, request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        secure = self.ctx.secure_cookies
        if secure is None:
            secure = not _loopback_http(request)
        response.set_cookie(
            name, value, max_age=max_age, path=PREFIX, secure=secure, httponly=True, samesite="strict"
        )

    # -- overview ------------------------------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        counts = {}
        with self.ctx.db.read() as conn:
            for each in ENVS:
                counts[each] = dataclasses.asdict(env_counts(conn, admin.org_pk, each))
        return self.render(request, "overview.html", admin, env=env, section="overview", counts=counts)

    # -- customers -----------------------------------------------------------------------------------
    def customers_page(self, request: Request) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        search = request.query_params.get("q", "").strip()[:200]
        status = request.query_params.get("status", "")
        body: dict[str, Any] = {"limit": 100}
        if search:
            body["search"] = search
        if status in ("active", "scheduled"):
            body["subscription_status"] = status
        result = self.ctx.ops.run(admin.org_pk, env, "customers.list", body)
        rows = result["list"]
        template = "customers_rows.html" if request.headers.get("hx-request") else "customers.html"
        return self.render(
            request,
            template,
            admin,
            env=env,
            section="customers",
            customers=rows,
            q=search,
            status_filter=status,
        )

    def customer_page(
        self,
        request: Request,
        error: str | None = None,
        status_code: int = 200,
        preview: Any = None,
        payment_url: str | None = None,
    ) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        try:
            customer = self.ctx.ops.run(
                admin.org_pk,
                env,
                "customers.get",
                {"customer_id": customer_id, "expand": ["invoices", "entities", "payment_method"]},
            )
        except AutumnError as exc:
            if exc.status == 404:
                return self.not_found(request, admin, f"Customer {customer_id}")
            raise
        events = self.ctx.ops.run(
            admin.org_pk, env, "events.list", {"customer_id": customer_id, "limit": 50}
        )["list"]
        feature_ids = [fid for fid in customer["balances"]]
        chart: dict[str, Any] = {"x": [], "series": {}}
        if feature_ids:
            agg = self.ctx.ops.run(
                admin.org_pk,
                env,
                "events.aggregate",
                {"customer_id": customer_id, "feature_id": feature_ids[:5], "range": "30d"},
            )
            chart["x"] = [int(p["period"]) // 1000 for p in agg["list"]]
            for fid in feature_ids[:5]:
                chart["series"][fid] = [float(p["values"].get(fid, 0) or 0) for p in agg["list"]]
        with self.ctx.db.read() as conn:
            catalog = current_plan_names(conn, admin.org_pk, env)
            feature_rows = feature_names(conn, admin.org_pk, env)
        balances = _balance_rows(customer["balances"])
        entity_balances = {
            entity["id"]: _balance_rows(
                self.ctx.ops.run(
                    admin.org_pk, env, "entities.get", {"customer_id": customer_id, "entity_id": entity["id"]}
                ).get("balances")
                or {}
            )
            for entity in (customer.get("entities") or [])[:ENTITIES_SHOWN]
        }
        return self.render(
            request,
            "customer.html",
            admin,
            status_code,
            env=env,
            section="customers",
            customer=customer,
            balances=balances,
            entity_balances=entity_balances,
            entities_shown=ENTITIES_SHOWN,
            events=events,
            chart=json.dumps(chart).replace("<", "\\u003c"),
            plans=catalog,
            features=feature_rows,
            error=error,
            preview=preview,
            payment_url=payment_url,
        )

    def attach_preview(self, request: Request) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        plan_id = request.query_params.get("plan_id", "")
        try:
            preview = self.ctx.ops.run(
                admin.org_pk,
                env,
                "billing.preview_attach",
                {"customer_id": customer_id, "plan_id": plan_id},
                str(request.base_url),
            )
        except AutumnError as exc:
            return self.render(
                request,
                "attach_preview.html",
                admin,
                400,
                env=env,
                error=exc.message,
                preview=None,
                customer_id=customer_id,
                plan_id=plan_id,
            )
        return self.render(
            request,
            "attach_preview.html",
            admin,
            env=env,
            preview=preview,
            customer_id=customer_id,
            plan_id=plan_id,
        )

    def customer_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        action = str(request.path_params["action"])
        path = f"/{env}/customers/{quote(customer_id)}"
        base_url = str(request.base_url)
        try:
            if action == "attach":
                out = self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "billing.attach",
                    {"customer_id": customer_id, "plan_id": str(form.get("plan_id", ""))},
                    base_url,
                )
                if out.get("payment_url"):
                    return self.customer_page(request, payment_url=str(out["payment_url"]))
                return self.back(path, "attached")
            if action == "cancel":
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "billing.update",
                    {
                        "customer_id": customer_id,
                        "plan_id": str(form.get("plan_id", "")),
                        "cancel_action": "cancel_end_of_cycle",
                    },
                    base_url,
                )
                return self.back(path, "canceled")
            if action == "balance":
                amount = _number(form.get("amount"), "Amount")
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "balances.update",
                    {
                        "customer_id": customer_id,
                        "feature_id": str(form.get("feature_id", "")),
                        "add_to_balance": amount,
                    },
                )
                return self.back(path, "balance")
            if action == "advance-clock":
                if env != "sandbox":
                    raise AutumnError(400, "invalid_request", "Test clocks exist only in the sandbox.")
                days = _number(form.get("days"), "Days")
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "customers.advance_test_clock",
                    {"customer_id": customer_id, "days": days},
                )
                return self.back(path, "clock")
        except AutumnError as exc:
            if exc.status == 404 and "customer" in exc.code:
                return self.not_found(request, admin, f"Customer {customer_id}")
            return self.customer_page(
                request, error=exc.message, status_code=exc.status if 400 <= exc.status < 500 else 400
            )
        return self.not_found(request, admin)

    # -- catalog -------------------------------------------------------------------------------------
    def catalog_page(self, request: Request, error: str | None = None, status_code: int = 200) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        with self.ctx.db.read() as conn:
            feature_rows = features_of(conn, admin.org_pk, env)
            counts = active_customers_per_version(conn, admin.org_pk, env)
            plan_rows = plan_versions(conn, admin.org_pk, env)
        grouped: dict[str, dict[str, Any]] = {}
        for row in plan_rows:
            entry = grouped.setdefault(row.id, {"id": row.id, "versions": []})
            entry["versions"].append(
                {"version": row.version, "customers": int(counts.get(row.pk, 0)), "latest": row.is_latest}
            )
            if row.is_latest:
                entry.update(
                    name=row.name,
                    price=row.price,
                    items=row.items,
                    archived=row.archived,
                    group=row.group,
                    add_on=row.add_on,
                )
        return self.render(
            request,
            "catalog.html",
            admin,
            status_code,
            env=env,
            section="catalog",
            features=feature_rows,
            plans=list(grouped.values()),
            error=error,
        )

    def catalog_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        action = str(request.path_params["action"])
        try:
            if action == "feature":
                body: dict[str, Any] = {
                    "feature_id": str(form.get("feature_id", "")).strip(),
                    "name": str(form.get("name", "")).strip(),
                    "type": str(form.get("type", "metered")),
                }
                if body["type"] == "metered":
                    body["consumable"] = form.get("consumable") == "on"
                self.ctx.ops.run(admin.org_pk, env, "features.create", body)
                return self.back(f"/{env}/catalog", "feature")
            if action == "feature-edit":
                body = {"feature_id": str(form.get("feature_id", ""))}
                for field_name in ("name", "new_feature_id"):
                    value = str(form.get(field_name, "")).strip()
                    if value:
                        body[field_name] = value
                if form.get("archived") in ("true", "false"):
                    body["archived"] = form.get("archived") == "true"
                self.ctx.ops.run(admin.org_pk, env, "features.update", body)
                return self.back(f"/{env}/catalog", "feature_saved")
            if action == "plan":
                body = {
                    "plan_id": str(form.get("plan_id", "")).strip(),
                    "name": str(form.get("name", "")).strip(),
                }
                amount = str(form.get("price", "")).strip()
                if amount:
                    body["price"] = {
                        "amount": _number(amount, "Price"),
                        "interval": str(form.get("interval", "month")),
                    }
                feature_id = str(form.get("item_feature_id", "")).strip()
                if feature_id:
                    item: dict[str, Any] = {"feature_id": feature_id}
                    included = str(form.get("included", "")).strip()
                    if included:
                        item["included"] = _number(included, "Included")
                        item["reset"] = {
                            "interval": str(form.get("interval", "month"))
                            if form.get("interval") != "one_off"
                            else "month"
                        }
                    body["items"] = [item]
                op = "plans.update" if form.get("mode") == "edit" else "plans.create"
                self.ctx.ops.run(admin.org_pk, env, op, body)
                return self.back(f"/{env}/catalog", "plan")
        except AutumnError as exc:
            return self.catalog_page(request, exc.message, exc.status if 400 <= exc.status < 500 else 400)
        return self.not_found(request, admin)

    def plan_edit_page(
        self,
        request: Request,
        error: str | None = None,
        status_code: int = 200,
        typed: Mapping[str, str] | None = None,
    ) -> Response:
        """A plan's edit form, filled with its latest version (items as ``plans.update`` takes them),
        and how many customers each version has."""
        admin = self.require(request)
        env = self.env_of(request)
        plan_id = str(request.path_params["plan_id"])
        with self.ctx.db.read() as conn:
            rows = plan_versions(conn, admin.org_pk, env, plan_id)
            counts = active_customers_per_version(conn, admin.org_pk, env, plan_id)
        latest = next((row for row in rows if row.is_latest), None)
        if latest is None:
            return self.not_found(request, admin, f"Plan {plan_id}")
        versions = [{"version": row.version, "customers": int(counts.get(row.pk, 0))} for row in rows]
        price = latest.price or {}
        form = typed or {
            "name": latest.name or "",
            "price": "" if price.get("amount") is None else f"{price['amount']:g}",
            "interval": str(price.get("interval") or "month"),
            "items": json.dumps([_without_nulls(item) for item in latest.items or []], indent=2),
        }
        return self.render(
            request,
            "plan_edit.html",
            admin,
            status_code,
            env=env,
            section="catalog",
            plan_id=plan_id,
            versions=versions,
            latest_customers=int(counts.get(latest.pk, 0)),
            intervals=PRICE_INTERVALS,
            form=form,
            error=error,
        )

    def plan_edit_save(self, request: Request, form: Mapping[str, Any]) -> Response:
        """``plans.update`` with the form's name, base price and items: the API's validation and its
        versioning (a new version when customers hold the current one)."""
        admin = self.require(request, form)
        env = self.env_of(request)
        typed = {key: str(form.get(key, "")) for key in ("name", "price", "interval", "items")}
        body: dict[str, Any] = {"plan_id": str(request.path_params["plan_id"]), "name": typed["name"].strip()}
        try:
            amount = typed["price"].strip()
            body["price"] = (
                {"amount": _number(amount, "Base price"), "interval": typed["interval"]} if amount else None
            )
            try:
                items = json.loads(typed["items"] or "[]")
            except ValueError as exc:
                raise AutumnError(400, "invalid_inputs", f"Items are not valid JSON: {exc}") from None
            if not isinstance(items, list):
                raise AutumnError(400, "invalid_inputs", "Items must be a JSON list of plan items.")
            body["items"] = items
            self.ctx.ops.run(admin.org_pk, env, "plans.update", body)
        except AutumnError as exc:
            status = exc.status if 400 <= exc.status < 500 else 400
            return self.plan_edit_page(request, exc.message, status, typed)
        return self.back(f"/{env}/catalog", "plan")

    # -- developers ----------------------------------------------------------------------------------
    def developers_page(self, request: Request, revealed: tuple[str, str] | None = None) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        if self.ctx.request_log is not None:
            self.ctx.request_log.flush()
        with self.ctx.db.read() as conn:
            keys = keys_of(conn, admin.org_pk, env)
            endpoints = endpoints_of(conn, admin.org_pk, env)
            deliveries = recent_deliveries(conn, admin.org_pk, env)
            requests_ = recent_requests(conn, admin.org_pk, env)
        return self.render(
            request,
            "developers.html",
            admin,
            env=env,
            section="developers",
            keys=keys,
            endpoints=endpoints,
            deliveries=deliveries,
            requests=requests_,
            revealed=revealed,
        )

    def developers_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        action = str(request.path_params["action"])
        if action == "create-key":
            name = str(form.get("name", "")).strip()[:255] or None
            with self.ctx.db.write() as conn:
                key_id, key = create_key(conn, admin.org_pk, env, name)
            return self.developers_page(request, revealed=(key_id, key))
        if action == "revoke-key":
            key_id = str(form.get("key_id", ""))
            with self.ctx.db.write() as conn:
                if not owns_key(conn, admin.org_pk, env, key_id) or not revoke_key(conn, key_id):
                    return self.not_found(request, admin, f"Key {key_id}")
            self.ctx.ops.state.catalog_cache.invalidate(admin.org_pk, env)
            return self.back(f"/{env}/developers", "revoked")
        if action == "resend":
            pk = _int(form.get("delivery"))
            with self.ctx.db.write() as conn:
                if not owns_delivery(conn, admin.org_pk, env, pk):
                    return self.not_found(request, admin, "That delivery")
                resend_delivery(conn, pk, self.ctx.now())
            return self.back(f"/{env}/developers", "resent")
        return self.not_found(request, admin)

    # -- settings ------------------------------------------------------------------------------------
    def settings_page(self, request: Request, error: str | None = None, status_code: int = 200) -> Response:
        admin = self.require(request)
        with self.ctx.db.read() as conn:
            brand = branding_of(conn, admin.org_pk)
        return self.render(
            request,
            "settings.html",
            admin,
            status_code,
            env="sandbox",
            section="settings",
            brand=brand,
            error=error,
        )

    def settings_save(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        name = str(form.get("name", "")).strip()[:255]
        logo = str(form.get("logo_url", "")).strip()
        website = str(form.get("website_url", "")).strip()
        for label, url in (("Logo URL", logo), ("App URL", website)):
            if url and (
                urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).netloc or len(url) > 2000
            ):
                return self.settings_page(request, f"{label} must be an http(s) address.", 400)
        if logo and urlsplit(logo).scheme != "https":
            return self.settings_page(
                request,
                "Logo URL must be an https address (the pages' security policy loads no other images).",
                400,
            )
        with self.ctx.db.write() as conn:
            set_branding(conn, admin.org_pk, name, logo, website, self.ctx.now())
        return RedirectResponse(f"{PREFIX}/settings?notice=branding", 303)


ENTITIES_SHOWN = 25
"""A customer's page shows the balances of its first entities (one entities.get each)."""


def _balance_rows(balances: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Balances as the page shows them: each with the percentage of its grant used."""
    rows = []
    for bal in balances.values():
        granted = float(bal.get("granted") or 0)
        usage = float(bal.get("usage") or 0)
        percent = 0 if bal.get("unlimited") or granted <= 0 else min(100, round(100 * usage / granted))
        rows.append({**bal, "percent": percent})
    return rows


PRICE_INTERVALS = ("month", "year", "quarter", "semi_annual", "week", "one_off")


def _without_nulls(value: Any) -> Any:
    """A stored plan item as ``plans.update`` takes it back: the ``null`` fields it fills in left out."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _number(value: Any, label: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise AutumnError(400, "invalid_inputs", f"{label} must be a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AutumnError(400, "invalid_inputs", f"{label} must be a number.")
    return number


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1


Handler = Callable[[Request], Awaitable[Response]]


def dashboard_routes(ctx: DashboardContext) -> list[BaseRoute]:
    """Routes to mount at the app root: ``/dashboard/...`` and its static files."""
    dash = Dashboard(ctx)

    def page(method: Callable[..., Response], with_form: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            args: list[Any] = [request]
            if with_form:
                args.append(dict(await request.form()))
            try:
                return await run_in_threadpool(method, *args)
            except _Refused as refused:
                return refused.response

        return secured(endpoint)

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/sandbox", 303)

    static = StaticHeaders(StaticFiles(directory=str(HERE / "static")))
    return [
        Route(f"{PREFIX}", secured(root), methods=["GET"]),
        Route(f"{PREFIX}/", secured(root), methods=["GET"]),
        Route(f"{PREFIX}/login", page(dash.login_page), methods=["GET"]),
        Route(f"{PREFIX}/login", page(dash.login, True), methods=["POST"]),
        Route(f"{PREFIX}/logout", page(dash.logout, True), methods=["POST"]),
        Route(f"{PREFIX}/settings", page(dash.settings_page), methods=["GET"]),
        Route(f"{PREFIX}/settings", page(dash.settings_save, True), methods=["POST"]),
        Route(f"{PREFIX}/{{env}}", page(dash.overview), methods=["GET"]),
        Route(f"{PREFIX}/{{env}}/customers", page(dash.customers_page), methods=["GET"]),
        Route(f"{PREFIX}/{{env}}/customers/{{customer_id}}", page(dash.customer_page), methods=["GET"]),
        Route(
            f"{PREFIX}/{{env}}/customers/{{customer_id}}/attach-preview",
            page(dash.attach_preview),
            methods=["GET"],
        ),
        Route(
            f"{PREFIX}/{{env}}/customers/{{customer_id}}/{{action}}",
            page(dash.customer_action, True),
            methods=["POST"],
        ),
        Route(f"{PREFIX}/{{env}}/catalog", page(dash.catalog_page), methods=["GET"]),
        Route(f"{PREFIX}/{{env}}/catalog/plans/{{plan_id}}", page(dash.plan_edit_page), methods=["GET"]),
        Route(
            f"{PREFIX}/{{env}}/catalog/plans/{{plan_id}}", page(dash.plan_edit_save, True), methods=["POST"]
        ),
        Route(f"{PREFIX}/{{env}}/catalog/{{action}}", page(dash.catalog_action, True), methods=["POST"]),
        Route(f"{PREFIX}/{{env}}/developers", page(dash.developers_page), methods=["GET"]),
        Route(
            f"{PREFIX}/{{env}}/developers/{{action}}", page(dash.developers_action, True), methods=["POST"]
        ),
        Mount(f"{PREFIX}/static", app=static),
    ]
