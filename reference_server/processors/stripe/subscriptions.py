"""Keeping the Stripe subscription mirror current: the follow-up queue and its retries.

What each customer's Stripe Subscriptions look like and how one sync reconciles them is in
:mod:`~reference_server.processors.stripe.subscription_sync`.

:class:`StripeSubscriptionMirror` runs :func:`.subscription_sync.sync_stripe_subscriptions` after each
committed billing change of a customer
(:func:`reference_server.store.db.after_transaction`, registered by the flows' ``billing.updated``
and the renewal maintenance), in the request's thread, so the Stripe dashboard is current when the
billing call answers.  The sync is recorded as due (table ``stripe_followups``) in the billing change's own
transaction and the record removed once a sync after it succeeded, so nothing is lost to a crash or a
restart.  A Stripe failure is logged and never fails the billing call nor touches its money; the sync
stays due and runs again from the background worker (exponential backoff,
:meth:`StripeSubscriptionMirror.run_due`) or with the customer's next billing change, whichever comes
first.  A deleted customer's clean-up is kept and retried the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.backoff import ExponentialBackoff
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.processors.stripe.subscription_sync import SyncResult, sync_stripe_subscriptions
from reference_server.store.customer_lookup import customer_owner
from reference_server.store.db import Database, after_transaction
from reference_server.store.stripe_customers import customer_stripe_id
from reference_server.store.stripe_mirror import (
    active_subscription_ids,
    bump_followup_version,
    claim_followup,
    customer_exists,
    delete_customer_followups,
    delete_followup,
    due_followups,
    followup_attempts,
    followup_of_customer,
    followup_row,
    followup_versions,
    followups_of_kind,
    insert_followup,
    update_followup,
)

log = logging.getLogger(__name__)


StripeOf = Callable[[Connection, int], StripeProcessor | None]
"""The Stripe account a customer (by pk) is charged through; None when another processor charges it
(:func:`reference_server.processors.stripe_accounts.stripe_processor_for`)."""


OrgStripeOf = Callable[[Connection, int, str], StripeProcessor | None]
"""The Stripe account of an organization's environment, None when it is not on Stripe
(:func:`reference_server.processors.stripe_accounts.stripe_for_org`)."""


NowOf = Callable[[Connection, int], int]
"""The server's time for a customer (its organization's and its own test clocks)."""


SYNC = "sync"


CLEANUP = "cleanup"


def _wall_ms() -> int:
    return int(time.time() * 1000)


class StripeSubscriptionMirror:
    """Runs :func:`sync_stripe_subscriptions` after billing changes, and again for failed ones.

    What is still to do lives in ``stripe_followups``, written in the transaction of the change that
    asks for it: a sync is due from the moment the change commits, so a server that dies before (or
    while) syncing, a Stripe outage or a restart loses none; :meth:`run_due` (the background worker)
    does every follow-up whose backoff has passed, claiming each for :attr:`CLAIM_S` so two server
    processes never work on the same one at once."""

    BACKOFF = ExponentialBackoff(base_delay_ms=5_000, max_delay_ms=600_000)
    """A failed follow-up's backoff (shorter than the refunds': nothing here is money)."""
    CLAIM_S = 30.0
    """How long a follow-up taken by :meth:`run_due` is left to it before another process may take it
    (the background jobs run in one process at a time, :mod:`reference_server.jobs`, so this only
    matters after that process died: then its follow-ups wait this long, not minutes)."""

    def __init__(
        self, db: Database, processor_of: StripeOf, now_of: NowOf, processor_for_org: OrgStripeOf
    ) -> None:
        self.db = db
        self.processor_of = processor_of
        self.now_of = now_of
        self.processor_for_org = processor_for_org
        self._locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    def _insert_due(self, conn: Connection, customer_pk: int, kind: str, **values: Any) -> int:
        """Record a follow-up of the customer (still in ``customers``), due after the first backoff."""
        owner = customer_owner(conn, customer_pk)
        now = _wall_ms()
        return insert_followup(
            conn,
            {
                "org_pk": owner.org_pk,
                "env": owner.env,
                "kind": kind,
                "customer_pk": customer_pk,
                "version": 1,
                "attempts": 0,
                "next_attempt_at": now + self.BACKOFF.delay_after(1),
                "created_at": now,
                **values,
            },
        )

    def after_change(self, conn: Connection, customer_pk: int) -> None:
        """The customer's plans changed in ``conn``'s transaction: a sync is recorded as due in that
        transaction and run once it has ended (committed or not: the sync reads the database as it
        then is); outside :meth:`Database.write` it is left to :meth:`run_due`."""
        if self.processor_of(conn, customer_pk) is None:
            return
        due = followup_of_customer(conn, customer_pk, SYNC)
        if due is not None:  # already due (a failed sync in backoff): this change asks for one more
            bump_followup_version(conn, due)
        else:
            self._insert_due(conn, customer_pk, SYNC)
        after_transaction(conn, lambda: self._sync_quietly(customer_pk))

    def _sync_quietly(self, customer_pk: int) -> None:
        self.sync(customer_pk)

    def before_customer_delete(self, conn: Connection, customer_pk: int, delete_in_stripe: bool) -> None:
        """The customer is being deleted in ``conn``'s transaction (its ``stripe_subscriptions`` rows go
        with it): a clean-up is recorded in that transaction and run once it commits: its mirrored
        subscriptions are canceled on Stripe without a final invoice or proration and, with
        ``delete_in_stripe`` (``customers.delete``), the Stripe customer is deleted too.  A rolled-back
        deletion changes nothing; a Stripe failure is retried by :meth:`run_due`."""
        processor = self.processor_of(conn, customer_pk)
        if processor is None:
            return
        delete_customer_followups(conn, customer_pk, SYNC)  # nothing of a deleted customer is synced any more
        stripe_customer = customer_stripe_id(conn, customer_pk)
        subs = active_subscription_ids(conn, customer_pk, processor.catalog.account)
        doomed = None if not delete_in_stripe or not stripe_customer else stripe_customer
        if not subs and doomed is None:
            return
        row_pk = self._insert_due(
            conn,
            customer_pk,
            CLEANUP,
            account_key=processor.catalog.account,
            payload={"subscriptions": subs, "stripe_customer": doomed},
        )

        def clean() -> None:
            self._clean(row_pk, processor)

        after_transaction(conn, clean)

    def _clean(self, row_pk: int, processor: StripeProcessor | None = None) -> bool:
        """Cancel (and delete) what a deleted customer left on Stripe, as its follow-up row says (none:
        the deletion did not commit, or it is done); False when Stripe failed (kept, in backoff)."""
        try:
            with self.db.read() as conn:
                row = followup_row(conn, row_pk)
                if row is None:
                    return True
                if processor is None:
                    processor = self.processor_for_org(conn, int(row.org_pk), str(row.env))
        except Exception:
            log.exception("reading the Stripe clean-up %s failed", row_pk)
            return False
        payload = dict(row.payload or {})
        subs = [str(s) for s in payload.get("subscriptions") or []]
        doomed = payload.get("stripe_customer")
        if processor is None or processor.catalog.account != row.account_key:
            log.warning(
                "Stripe clean-up of deleted customer %s dropped: the organization no longer uses Stripe "
                "account %s (subscriptions %s and customer %s left there)",
                row.customer_pk,
                row.account_key,
                subs,
                doomed,
            )
            self._finish(row_pk)
            return True
        client = processor.client
        try:
            for stripe_id in list(subs):
                current = client.v1.subscriptions.retrieve(stripe_id)
                if current.status not in ("canceled", "incomplete_expired"):
                    client.v1.subscriptions.cancel(stripe_id, {"invoice_now": False, "prorate": False})
                subs.remove(stripe_id)
            if doomed is not None:
                try:
                    client.v1.customers.delete(str(doomed))
                except stripe.InvalidRequestError as exc:
                    if exc.http_status != 404:  # already deleted: done
                        raise
                doomed = None
        except stripe.StripeError as exc:
            log.warning(
                "Stripe clean-up of deleted customer %s failed (subscriptions %s, customer %s): %s",
                row.customer_pk,
                subs,
                doomed,
                exc,
            )
            self._retry_later(
                row_pk, f"{type(exc).__name__}: {exc}", {"subscriptions": subs, "stripe_customer": doomed}
            )
            return False
        self._finish(row_pk)
        return True

    def _finish(self, row_pk: int, version: int | None = None) -> None:
        """The follow-up is done (a sync: unless a change asked for another meanwhile, ``version``)."""
        try:
            with self.db.write() as conn:
                delete_followup(conn, row_pk, version)
        except Exception:  # done twice at worst: every follow-up is idempotent
            log.exception("removing the done Stripe follow-up %s failed", row_pk)

    def _retry_later(self, row_pk: int, error: str, payload: dict[str, Any] | None = None) -> None:
        try:
            with self.db.write() as conn:
                attempts = followup_attempts(conn, row_pk)
                if attempts is None:
                    return
                values: dict[str, Any] = {
                    "attempts": int(attempts) + 1,
                    "next_attempt_at": _wall_ms() + self.BACKOFF.delay_after(int(attempts) + 1),
                    "last_error": error[:500],
                }
                if payload is not None:
                    values["payload"] = payload
                update_followup(conn, row_pk, values)
        except Exception:  # the row keeps its claim, taken again when that runs out
            log.exception("recording the retry of Stripe follow-up %s failed", row_pk)

    def _followups(self, kind: str) -> list[Any]:
        with self.db.read() as conn:
            return followups_of_kind(conn, kind)

    def pending_cleanups(self) -> list[tuple[int, list[str], str | None]]:
        """Deleted customers whose Stripe clean-up is still to do: (customer pk, subscriptions, Stripe
        customer)."""
        out: list[tuple[int, list[str], str | None]] = []
        for row in self._followups(CLEANUP):
            payload = dict(row.payload or {})
            doomed = payload.get("stripe_customer")
            subs = [str(s) for s in payload.get("subscriptions") or []]
            out.append((int(row.customer_pk), subs, None if doomed is None else str(doomed)))
        return out

    def pending(self) -> set[int]:
        """Customers whose subscriptions are still to be synced (their last sync failed, or has not run)."""
        return {int(row.customer_pk) for row in self._followups(SYNC)}

    def _customer_lock(self, customer_pk: int) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(customer_pk, threading.Lock())

    def sync(self, customer_pk: int) -> SyncResult | None:
        """Sync one customer now; None when it is not charged through Stripe (or is gone).  Its sync
        follow-ups are done when the sync succeeds, else retried later.  Never raises."""
        due: list[Any] = []
        try:
            with self.db.read() as conn:
                # read before the sync: a change committed after asks for another
                due = followup_versions(conn, customer_pk, SYNC)
                exists = customer_exists(conn, customer_pk)
                processor = self.processor_of(conn, customer_pk) if exists else None
                if processor is None:
                    for row in due:  # gone, or no longer on Stripe: nothing to mirror
                        self._finish(int(row.pk))
                    return None
                now = self.now_of(conn, customer_pk)
            with self._customer_lock(customer_pk):
                result = sync_stripe_subscriptions(self.db, processor, customer_pk, now)
        except Exception as exc:
            log.exception("Stripe subscription sync of customer %s failed", customer_pk)
            result = SyncResult([], [], [], [f"database: {type(exc).__name__}: {exc}"])
        if result.ok:
            for row in due:
                self._finish(int(row.pk), int(row.version))
        elif due:
            for row in due:
                self._retry_later(int(row.pk), result.errors[-1])
        else:  # called directly, with nothing recorded: due from now on
            self._record_due(customer_pk, result.errors[-1])
        return result

    def _record_due(self, customer_pk: int, error: str) -> None:
        try:
            with self.db.write() as conn:
                if customer_exists(conn, customer_pk):
                    self._insert_due(conn, customer_pk, SYNC, attempts=1, last_error=error[:500])
        except Exception:
            log.exception("recording the failed Stripe sync of customer %s failed", customer_pk)

    def _claim(self, row_pk: int, seen_at: int) -> bool:
        """Take a due follow-up for :attr:`CLAIM_S` (False: another process took it first)."""
        with self.db.write() as conn:
            return claim_followup(conn, row_pk, seen_at, _wall_ms() + int(self.CLAIM_S * 1000))

    def run_due(self, limit: int = 100) -> int:
        """Do the follow-ups whose backoff has passed (syncs again, deleted customers' clean-ups): a
        background worker job; how many were attempted."""
        with self.db.read() as conn:
            rows = due_followups(conn, (SYNC, CLEANUP), _wall_ms(), limit)  # refunds: compensation's retrier
        attempted = 0
        for row in rows:
            if not self._claim(int(row.pk), int(row.next_attempt_at)):
                continue
            attempted += 1
            if row.kind == CLEANUP:
                self._clean(int(row.pk))
            else:
                self.sync(int(row.customer_pk))
        return attempted
