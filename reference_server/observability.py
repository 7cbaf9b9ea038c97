"""Request ids, access logs, Prometheus metrics and log formats of the reference server.

One pure ASGI middleware (:class:`OpsMiddleware`) wraps every request: it takes a valid incoming
``x-request-id`` or makes one, puts it on the response and in every log record written while the
request runs (:data:`request_id`), logs one access line, and counts the request in the metrics.

Metrics are ``prometheus_client`` objects made once per process.  With several processes
(``autumn-server --workers N``, gunicorn) ``PROMETHEUS_MULTIPROC_DIR`` names a directory they share,
and a scrape of any process adds up all of them (``prometheus_client``'s multiprocess mode).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autumn_sdk._generated.operations import OPERATIONS

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("autumn_request_id", default="-")
"""The id of the request this code runs for ("-" outside a request); copied into worker threads."""

# No ``*_created`` series: they double the output and say little here (untyped in prometheus_client).
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
"""This process's metrics (a scrape in multiprocess mode reads the shared directory instead)."""

REQUESTS = Counter(
    "autumn_requests",
    "HTTP requests answered, by operation and status code",
    ["operation", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "autumn_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by operation",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
CHECKS = Counter(
    "autumn_checks", "balances.check answers, by whether access was allowed", ["allowed"], registry=REGISTRY
)
TRACKS = Counter("autumn_tracks", "balances.track calls answered with success", registry=REGISTRY)
JOB_RUNS = Counter("autumn_background_job_runs", "Background job rounds, by job", ["job"], registry=REGISTRY)
JOB_FAILURES = Counter(
    "autumn_background_job_failures",
    "Background job rounds that raised, by job",
    ["job"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "autumn_webhook_attempts",
    "Webhook delivery attempts, by result (delivered, retry, failed)",
    ["result"],
    registry=REGISTRY,
)
JOBS_LEADER = Gauge(
    "autumn_background_jobs_leader",
    "1 in the process that holds the background jobs' lease",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

_OPERATION_OF_PATH = {op.path: op.qualified_name for op in OPERATIONS}
_OPS_PATHS = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


def operation_of(path: str) -> str:
    """A bounded label for a path: the operation's name, an ops endpoint, or a coarse group."""
    name = _OPERATION_OF_PATH.get(path) or _OPS_PATHS.get(path)
    if name is not None:
        return name
    if path.startswith("/v1/"):
        return "other_api"
    if path.startswith("/webhooks/"):
        return "inbound_webhooks"
    return "pages"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


access_log = logging.getLogger("autumn.access")


error_log = logging.getLogger("reference_server")


def _internal_error_body(scope: Scope) -> bytes:
    authorization = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
    env = "live" if authorization[7:].strip().startswith("am_sk_live_") else "sandbox"
    return json.dumps({"message": "Internal error", "code": "internal_error", "env": env}).encode()


def _internal_error_start(scope: Scope) -> Message:
    length = str(len(_internal_error_body(scope))).encode()
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [(b"content-type", b"application/json"), (b"content-length", length)],
    }


class OpsMiddleware:
    """Request id, metrics and one access log line for every HTTP request (pure ASGI, no buffering)."""

    def __init__(self, app: ASGIApp, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        # Metric children by label values: ``labels()`` takes a lock and builds a key on every call.
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def _record(self, operation: str, status: int, elapsed: float, allowed: bool | None) -> None:
        counter = self._counted.get((operation, status))
        if counter is None:
            counter = self._counted[(operation, status)] = REQUESTS.labels(operation, str(status))
        counter.inc()
        timer = self._timed.get(operation)
        if timer is None:
            timer = self._timed[operation] = LATENCY.labels(operation)
        timer.observe(elapsed)
        if allowed is not None:
            CHECKS.labels("true" if allowed else "false").inc()
        elif operation == "track" and 200 <= status < 300:
            TRACKS.inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_request_id(scope) or new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        path: str = scope["path"]
        operation = operation_of(path)
        status = 500
        allowed: bool | None = None
        header = (b"x-request-id", rid.encode("latin-1"))

        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, allowed, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
            elif operation == "check" and allowed is None and status == 200:
                allowed = b'"allowed":true' in bytes(message.get("body", b""))[:64]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A route outside the API dispatcher (pages, dashboard, extensions) failed unexpectedly:
            # Autumn's error JSON with the request id, never Starlette's plain-text 500 or a traceback.
            if started_response:
                raise
            error_log.exception("unhandled error in %s %s", scope["method"], path)
            await send_with_id(_internal_error_start(scope))
            await send_with_id({"type": "http.response.body", "body": _internal_error_body(scope)})
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics:
                self._record(operation, status, elapsed, allowed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    path,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "operation": operation,
                        "request_id": rid,
                    },
                )
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (the current request's, "-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


def logging_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server and uvicorn: text lines or one JSON object per
    line (``python-json-logger``), each with the request id; uvicorn's own access log is replaced
    by ``autumn.access``."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"levelname": "level", "asctime": "time", "name": "logger"},
        }
        if fmt == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": ["request_id"],
    }
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "alembic": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},  # one INFO line per webhook sent otherwise
        },
        "root": {"handlers": ["default"], "level": upper},
    }


class _LiveGauges(Collector):
    """Gauges read from the database at scrape time (the same from every process)."""

    def __init__(self, readers: Iterable[Callable[[], Iterable[Metric]]]) -> None:
        self.readers = tuple(readers)

    def collect(self) -> Iterator[Metric]:
        for read in self.readers:
            try:
                yield from read()
            except Exception:  # a scrape must answer even when the database does not
                logging.getLogger(__name__).warning("a live metric could not be read", exc_info=True)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def metrics_registry(live: Iterable[Callable[[], Iterable[Metric]]] = ()) -> CollectorRegistry:
    """What a scrape reads: this process's metrics, or every process's in multiprocess mode, plus the
    live gauges."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    else:
        registry.register(_ProcessMetrics())
    registry.register(_LiveGauges(live))
    return registry


def render_metrics(live: Iterable[Callable[[], Iterable[Metric]]] = ()) -> bytes:
    """The Prometheus text exposition: this process's metrics, or every process's in multiprocess
    mode, plus the live gauges."""
    return generate_latest(metrics_registry(live))


class _ProcessMetrics(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


__all__ = [
    "CHECKS",
    "JOBS_LEADER",
    "JOB_FAILURES",
    "JOB_RUNS",
    "LATENCY",
    "REQUESTS",
    "REQUEST_ID_HEADER",
    "TRACKS",
    "WEBHOOK_ATTEMPTS",
    "OpsMiddleware",
    "RequestIdFilter",
    "gauge",
    "logging_config",
    "metrics_registry",
    "new_request_id",
    "operation_of",
    "render_metrics",
    "request_id",
]
