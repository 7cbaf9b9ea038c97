"""What every dashboard screen shares: templates, the signed-in admin and CSRF checks, the page
frame, signing in and out, and the overview.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from reference_server.errors import ApiError
from reference_server.request_log import RequestLog
from reference_server.store.env_counts import env_counts

from . import auth
from .operations import Operations

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


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def loopback_http(request: Request) -> bool:
    return request.url.scheme == "http" and (request.url.hostname or "") in ("127.0.0.1", "localhost", "::1")


class DashboardBase:
    """The shared part of the dashboard's handlers; each screen adds its own in a subclass."""

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
                raise Refused(RedirectResponse(f"{PREFIX}/login?next={quote(target)}", 303))
            raise Refused(self.forbidden(request, None, "Sign in first."))
        if request.method == "POST":
            self.check_origin(request, admin)
            given = (form or {}).get("csrf_token") or request.headers.get("x-csrf-token")
            if not auth.same_token(admin.csrf_token, str(given) if given else None):
                raise Refused(
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
                raise Refused(self.forbidden(request, admin, "Cross-origin request refused."))

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
            raise Refused(Response("Not found", status_code=404))
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
            secure = not loopback_http(request)
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


def form_number(value: Any, label: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ApiError(400, "invalid_inputs", f"{label} must be a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ApiError(400, "invalid_inputs", f"{label} must be a number.")
    return number


def form_int(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1
