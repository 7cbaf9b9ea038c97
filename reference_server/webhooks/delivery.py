"""Delivering outbox messages: claim, sign, POST, record; retry with exponential backoff.

State lives only in ``webhook_deliveries``, so a restarted server picks up where it stopped: a claim
expires after ``claim_ms`` (seconds), and the process that takes the background jobs' lease over from
one that died frees its claims at once (:meth:`WebhookDeliverer.release_claims`), so an attempt that
died mid-flight is simply retried. A receiver may see a
message more than once after such a crash, always with the same ``webhook-id``, which is what
Standard Webhooks receivers deduplicate on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from reference_server.backoff import ExponentialBackoff
from reference_server.clock import Clock
from reference_server.jobs import LeaderLease
from reference_server.observability import JOB_FAILURES, JOB_RUNS, WEBHOOK_ATTEMPTS
from reference_server.store import outbox
from reference_server.store.db import Database

from .signing import sign_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy(ExponentialBackoff):
    """Retry schedule (exponential backoff) and limits of a delivery."""

    max_attempts: int = 8
    request_timeout_s: float = 10.0
    claim_ms: int = 15_000
    """Longer than one attempt (``request_timeout_s``); only the lease holder claims, and a new holder
    frees the claims of the one before."""
    batch_size: int = 50


@dataclass(frozen=True)
class _Claimed:
    pk: int
    attempts: int
    message_id: str
    payload: str
    url: str
    secret: str
    claimed_at: int


def _utc_now() -> dt.datetime:
    return dt.datetime.now(tz=dt.timezone.utc)


class WebhookDeliverer:
    """Delivers whatever is due, one batch per :meth:`deliver_due` call."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: DeliveryPolicy | None = None,
        client: httpx.Client | None = None,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy or DeliveryPolicy()
        self.client = client or httpx.Client(timeout=self.policy.request_timeout_s)
        self.wall_clock = wall_clock

    def _claim(self) -> list[_Claimed]:
        now = self.clock.now_ms()
        claimed: list[_Claimed] = []
        with self.db.read() as conn:  # polling must not take SQLite's write lock when nothing is due
            if not outbox.any_claimable(conn, now):
                return claimed
        with self.db.write() as conn:
            rows = outbox.claimable(conn, now, self.policy.batch_size)
            for row in rows:
                taken = outbox.claim(conn, row.pk, now, now + self.policy.claim_ms)
                if taken and row.enabled:
                    claimed.append(
                        _Claimed(row.pk, row.attempts, row.id, row.payload, row.url, row.secret, now)
                    )
        return claimed

    def release_claims(self) -> int:
        """Free every pending delivery's claim: the background jobs' new lease holder calls this when it
        takes over, as the claims can only be the previous holder's (gone, or no longer delivering)."""
        with self.db.write() as conn:
            return outbox.release_claims(conn)

    def _send(self, item: _Claimed) -> tuple[int | None, str | None]:
        headers = sign_headers(item.secret, item.message_id, item.payload, self.wall_clock())
        try:
            response = self.client.post(item.url, content=item.payload.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"

    def _record(self, item: _Claimed, status_code: int | None, error: str | None) -> None:
        now = self.clock.now_ms()
        attempts = item.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "claimed_until": None,
            "last_status_code": status_code,
        }
        if error is None:
            values.update(status="delivered", delivered_at=now, last_error=None)
            WEBHOOK_ATTEMPTS.labels("delivered").inc()
        elif attempts >= self.policy.max_attempts:
            values.update(status="failed", last_error=error)
            WEBHOOK_ATTEMPTS.labels("failed").inc()
        else:
            WEBHOOK_ATTEMPTS.labels("retry").inc()
            # Back off from when the attempt started, so a slow receiver does not push the retry further out.
            values.update(
                next_attempt_at=item.claimed_at + self.policy.delay_after(attempts), last_error=error
            )
        with self.db.write() as conn:
            outbox.record_attempt(conn, item.pk, values)

    def deliver_due(self) -> int:
        """Attempt every due delivery once; returns how many attempts were made."""
        claimed = self._claim()
        for item in claimed:
            status_code, error = self._send(item)
            self._record(item, status_code, error)
        return len(claimed)

    def close(self) -> None:
        self.client.close()


class WebhookWorker:
    """Background thread that keeps calling :meth:`WebhookDeliverer.deliver_due`, and each of ``jobs``
    (other background work with its own schedule in the database, e.g. the refunds still due of
    :class:`reference_server.processors.compensation.RefundRetrier`; each returns how much it did).

    :meth:`wake` lets the API nudge it right after committing an event instead of waiting a poll interval.
    With a ``lease`` (:class:`reference_server.jobs.LeaderLease`) it works only while this process
    holds it, so across processes the jobs run in one place at a time.
    """

    def __init__(
        self,
        deliverer: WebhookDeliverer,
        poll_interval_s: float = 1.0,
        jobs: Sequence[Callable[[], int]] = (),
        lease: LeaderLease | None = None,
    ) -> None:
        self.deliverer = deliverer
        self.jobs = tuple(jobs)
        self.lease = lease
        if lease is not None:
            lease.on_acquire.extend((deliverer.release_claims, self.wake))
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.lease is not None and not self.lease.enabled:
            return  # the jobs run elsewhere (``autumn-server worker``)
        if self.lease is not None:
            self.lease.start()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.lease is not None:
            self.lease.stop()

    def _leading(self) -> bool:
        return self.lease is None or self.lease.held()

    def _run(self) -> None:
        named = [("webhooks", self.deliverer.deliver_due), *((_job_name(j), j) for j in self.jobs)]
        while not self._stop.is_set():
            attempted = 0
            for name, job in named:
                if self._stop.is_set() or not self._leading():
                    break
                JOB_RUNS.labels(name).inc()
                try:
                    attempted += job()
                except Exception:  # each job records its own failures; the next round retries
                    JOB_FAILURES.labels(name).inc()
                    log.exception("background job %s failed", name)
            if attempted == 0:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()


_JOB_LABELS = {"RefundRetrier": "refunds_due", "StripeSubscriptionMirror": "stripe_followups"}
"""Metric labels of the bound-method jobs; a function job is labelled by its name."""


def _job_name(job: Callable[[], int]) -> str:
    """A stable metric label per job: ``RefundRetrier.run_due`` -> ``refunds_due``."""
    owner = type(getattr(job, "__self__", None)).__name__
    return _JOB_LABELS.get(owner, getattr(job, "__name__", "job"))
