"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (it can serve: the database
answers and is migrated, Redis answers when rate limits use it) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reference_server.api.ratelimit import RateLimiter, SharedRateLimiter
from reference_server.jobs import BACKGROUND_JOBS
from reference_server.observability import gauge, render_metrics
from reference_server.store import leases, outbox
from reference_server.store.db import Database
from reference_server.store.schema_version import current_revision, head_revision


def ops_routes(db: Database, limiter: RateLimiter | None, metrics: bool = True) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> JSONResponse:  # sync: Starlette runs it in its thread pool
        checks: dict[str, str] = {}
        try:
            db.ping()
            current = current_revision(db)
            checks["database"] = "ok"
            checks["migrations"] = (
                "ok" if current == head_revision() else f"at {current or 'none'}, needs {head_revision()}"
            )
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        if isinstance(limiter, SharedRateLimiter):
            checks["redis"] = "ok" if limiter.check_connection() else "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
        )

    def backlog() -> Iterator[Metric]:
        with db.read() as conn:
            pending, failed = outbox.backlog(conn)
        yield gauge("autumn_webhook_backlog", "Webhook deliveries not yet delivered (pending)", pending)
        yield gauge("autumn_webhook_failed", "Webhook deliveries that ran out of attempts", failed)
        with db.read() as conn:
            holder = leases.holder_of(conn, BACKGROUND_JOBS, int(time.time() * 1000))
        yield gauge(
            "autumn_background_jobs_held",
            "1 while some process holds the background jobs' lease (0: no process runs them)",
            0 if holder is None else 1,
        )

    def metrics_endpoint(request: Request) -> Response:
        return Response(render_metrics([backlog]), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    if metrics:
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return routes


__all__ = ["ops_routes"]
