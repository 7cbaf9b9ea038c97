"""The dashboard: the organization's admins see and manage customers, the catalog, keys and webhooks.

Served by the reference server under ``/dashboard`` (server-rendered Jinja2, htmx and uPlot vendored as
static files: no build step).  It is an HTTP layer like ``api/`` and ``pages/``: it runs the API's own
operations (:mod:`.operations`) and reads the store, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute

from reference_server.api.endpoints import Endpoint
from reference_server.request_log import RequestLog, RequestLogMiddleware
from reference_server.service.context import AppState

from .auth import AdminError, create_admin
from .operations import Operations
from .views import DashboardContext, dashboard_routes

__all__ = [
    "AdminError",
    "DashboardContext",
    "Operations",
    "RequestLog",
    "RequestLogMiddleware",
    "create_admin",
    "dashboard_routes",
    "request_log_for",
    "routes_for",
]


def request_log_for(state: AppState) -> RequestLog:
    """The app's request log (one per app): the middleware writes it, the developers page reads it."""
    if state.request_log is None:
        state.request_log = RequestLog(state.db, state.clock)
    return state.request_log


def routes_for(state: AppState, endpoints: Iterable[Endpoint]) -> list[BaseRoute]:
    """The dashboard's routes for an app: ``endpoints`` are the API's operations it may run."""
    return dashboard_routes(
        DashboardContext(Operations(state, endpoints), request_log=request_log_for(state))
    )
