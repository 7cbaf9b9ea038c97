"""The dashboard's route table over its screens (customers, catalog, developers, settings); the pages:
server-rendered (Jinja2), htmx for in-place updates, uPlot for the usage chart.

Every page needs a signed-in admin and shows only that admin's organization; every POST needs the
session's CSRF token.  Changes go through :class:`~reference_server.dashboard.operations.Operations`,
the API's own validation and service functions, so the dashboard can do nothing the API would refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from reference_server.pages.security import StaticHeaders, secured

from .base import HERE, PREFIX, DashboardContext, Refused
from .catalog import CatalogScreens
from .customers import CustomerScreens
from .developers import DeveloperScreens
from .settings import SettingsScreens

__all__ = ["Dashboard", "DashboardContext", "dashboard_routes"]


class Dashboard(CustomerScreens, CatalogScreens, DeveloperScreens, SettingsScreens):
    """Every dashboard screen's handlers, one object per app."""


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
            except Refused as refused:
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
