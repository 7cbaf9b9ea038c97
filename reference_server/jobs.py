"""Background jobs run in exactly one process at a time: the holder of a lease in the database.

Every server process (and ``autumn-server worker``) starts a :class:`LeaderLease`; a heartbeat thread
takes or renews the lease every third of its length.  Only while it holds the lease does the process's
background worker run the jobs (webhook deliveries, Stripe follow-ups, refunds due).  A holder that
dies stops renewing and another process takes over once the lease has expired (``ttl_s``, seconds);
a clean stop gives it up at once.  On taking over, :attr:`LeaderLease.on_acquire` callbacks free the
claims the previous holder left, so its work is picked up at once rather than when those claims end.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from reference_server.observability import JOBS_LEADER
from reference_server.store import leases
from reference_server.store.db import Database

log = logging.getLogger(__name__)

BACKGROUND_JOBS = "background-jobs"
"""The lease the background worker holds while it runs the jobs."""
DEFAULT_LEASE_S = 5.0


def process_name() -> str:
    """This process, for the ``holder`` column: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaderLease:
    """Takes and renews the lease ``name`` on its own thread; :meth:`held` says whether this process
    may run the work now.  ``enabled=False`` never takes it (a web process that leaves the jobs to
    ``autumn-server worker``)."""

    def __init__(
        self,
        db: Database,
        name: str = BACKGROUND_JOBS,
        ttl_s: float = DEFAULT_LEASE_S,
        enabled: bool = True,
    ) -> None:
        self.db = db
        self.name = name
        self.ttl_s = ttl_s
        self.enabled = enabled
        self.holder = process_name()
        self.on_acquire: list[Callable[[], object]] = []
        self._valid_until = 0.0
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changed = threading.Event()
        """Set whenever the lease is taken (for a worker waiting to start)."""

    def held(self) -> bool:
        """True while the lease is this process's, with a margin: a renewal that stalls (the database
        slow or gone) makes this False before another process can take the lease."""
        return self._held and time.monotonic() < self._valid_until

    def renew(self) -> bool:
        """One attempt to take or keep the lease; whether it is held now."""
        if not self.enabled:
            return False
        started = time.monotonic()
        try:
            with self.db.write() as conn:
                won = leases.acquire(
                    conn, self.name, self.holder, int(time.time() * 1000), int(self.ttl_s * 1000)
                )
        except Exception:
            log.warning("renewing the %s lease failed", self.name, exc_info=True)
            won = False
        was_held = self._held  # the last renewal's outcome: still ours in the database if it is again
        if won:
            self._valid_until = started + self.ttl_s * 0.8
        self._held = won
        if won and not was_held:
            log.info("took the %s lease (%s)", self.name, self.holder)
            for callback in self.on_acquire:
                try:
                    callback()
                except Exception:
                    log.exception("taking over %s: %r failed", self.name, callback)
            self.changed.set()
        elif was_held and not won:
            log.warning("lost the %s lease (%s)", self.name, self.holder)
        JOBS_LEADER.set(1 if won else 0)
        return won

    def start(self) -> None:
        if self._thread is None and self.enabled:
            self._stop.clear()
            self.renew()
            self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            self.renew()

    def stop(self) -> None:
        """Stop renewing and give the lease up, so another process takes it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._held:
            self._held = False
            JOBS_LEADER.set(0)
            try:
                with self.db.write() as conn:
                    leases.release(conn, self.name, self.holder)
            except Exception:  # it expires on its own
                log.warning("releasing the %s lease failed", self.name, exc_info=True)


__all__ = ["BACKGROUND_JOBS", "DEFAULT_LEASE_S", "LeaderLease", "process_name"]
