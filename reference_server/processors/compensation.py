"""Undoing a processor payment whose billing transaction did not commit.

A charge through Stripe happens inside the billing call's database transaction: the Stripe invoice
is paid first, then the server records the payment and makes the change it paid for.  When that
transaction does not commit (an error later in the same call, a failed ``COMMIT``, a lost database
connection), Stripe holds money the server never recorded.  Money and balances change together or
not at all, so the payment is given back:

1. the processor registers every payment it took with :func:`settle_after_transaction`, which runs
   :func:`settle` once the transaction has ended (:func:`reference_server.store.db.after_transaction`);
2. :func:`settle` proves from the database which way it went: the server invoice is ``paid`` with
   that Stripe invoice as its ``processor_id`` only if the transaction committed.  Otherwise the
   processor reverses the payment (:meth:`Reverser.reverse_payment`: the Stripe invoice is marked,
   its PaymentIntent refunded in full; an unpaid one is voided);
3. a reversal that fails (Stripe unreachable or refusing, say) is recorded durably (a row of
   ``stripe_followups`` of kind :data:`REFUND_KIND`, keyed by the Stripe and server invoice ids; its
   ``created_at`` is when it became due, on the server's clock, with the error) and tried again, with
   the same proof first, by :class:`RefundRetrier` from the server's background worker
   (:class:`reference_server.webhooks.delivery.WebhookWorker`) with a bounded exponential backoff per
   row (:class:`RefundRetryPolicy`).  Its attempts, next attempt time and last error are kept in the
   row, so a restarted server carries on where it stopped; :func:`refunds_due` lists them and
   :func:`retry_refunds` retries those of one organization at once.  Every failure is logged with the
   Stripe invoice id;
4. a failure of the database itself after the transaction (unreachable, or refusing to keep the
   refund due) leaves nothing on the server: it is logged at ERROR with the Stripe invoice id and
   the amount, and the Stripe ``invoice.paid`` event repairs it (5);
5. a process that dies between the Stripe payment and its ``COMMIT`` runs no callback at all, and the
   server invoice id vanishes with the rollback.  The Stripe invoice still carries our metadata
   (``autumn_invoice_id``, ``autumn_customer_id``), so its ``invoice.paid`` event
   (:mod:`~reference_server.processors.stripe.events`) finds no server invoice of that id and calls
   :func:`reverse_orphan` holding the customer's billing lock: it first proves that no transaction
   that could still commit the invoice is in flight (SQLite: a write transaction excludes every other
   writer; PostgreSQL: ``LOCK TABLE invoices IN SHARE MODE`` waits for every transaction that wrote an
   invoice row, and the server invoice row is inserted before its Stripe invoice is created), then
   reverses the payment as above.  Stripe delivers events at least once and retries failed deliveries
   for days, so no separate sweep listing recent paid Stripe invoices of every organization is needed;
   an organization that never configured its Stripe webhook gets no such repair (the ERROR log is then
   the operator's signal).

The refund carries an idempotency key derived from the PaymentIntent and the amount still to refund,
and the amount is read from the charge first, so a retried reversal never refunds twice.  The local
processor collects nothing outside the database and registers nothing.

An invoice-mode Stripe invoice (``send_invoice``, open or still a draft) takes no money at once but can
be paid by the customer on Stripe, so one whose billing transaction does not commit would be owed for
a change the server never made.  :func:`void_after_transaction` registers it as soon as Stripe made
it (:attr:`TakenPayment.opened`): the proof is then that the server invoice exists at all (its status
may already have moved on); otherwise the reversal voids it (a draft is deleted, one the customer paid
meanwhile is refunded), and a failed void is kept and retried exactly like a refund (same scope; a
kept row's server invoice can never appear later, since its transaction was proven rolled back).

The other way round, a refund the server decides on (``refund_last_payment`` of ``billing.update``) is
recorded in the billing transaction as a negative charge on the refunded invoice
(:attr:`TakenPayment.refund_id`) and made on the processor only once that transaction committed:
:func:`refund_after_transaction` registers it, the proof is that the charge row exists, and a refund the
processor refuses is kept and retried exactly like a reversal (its row's key names the charge, whose
amount is read back each time; the refund's idempotency keys derive from it, so it is never made twice).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from reference_server.backoff import ExponentialBackoff
from reference_server.clock import Clock
from reference_server.store.customer_lookup import customer_owner
from reference_server.store.db import after_transaction
from reference_server.store.invoice_refunds import refund_amount
from reference_server.store.invoices import invoice_by_id
from reference_server.store.refunds_due import (
    REFUND_KIND,
    RefundDueRow,
    all_refunds_due,
    delete_refund_due,
    insert_refund_due,
    invoice_exists_after_commits,
    record_refund_retry,
    refund_keys,
    refund_still_due,
)

log = logging.getLogger(__name__)


class Reverser(Protocol):
    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        """Give back what ``processor_invoice_id`` collected (idempotent); raises when it could not."""

    def refund_payment(self, processor_invoice_id: str, amount: int, refund_id: str) -> None:
        """Refund ``amount`` (minor units) of what ``processor_invoice_id`` collected, as the server's
        refund ``refund_id`` (idempotent per ``refund_id``); raises when it could not."""


ReverserFor = Callable[[Connection, int, str], "Reverser | None"]
"""The reverser of an organization's environment (its Stripe processor), None when it has none."""


@dataclass(frozen=True)
class TakenPayment:
    """A payment taken on the processor during a billing transaction (``amount`` in minor units,
    when known: for the logs)."""

    org_pk: int
    env: str
    server_invoice_id: str
    processor_invoice_id: str
    amount: int | None = None
    opened: bool = False
    """An invoice opened for the customer to pay (invoice mode), not a payment taken: recorded when the
    server invoice exists, else voided."""
    refund_id: str | None = None
    """Not a payment taken but a refund the server recorded (the id of its negative charge on the server
    invoice): made on the processor when recorded, else (rolled back) nothing is owed."""


def _is_recorded(conn: Connection, payment: TakenPayment, lock: bool) -> bool:
    if payment.refund_id is not None:
        return refund_amount(conn, payment.refund_id, lock=lock) is not None
    row = invoice_by_id(conn, payment.server_invoice_id, lock=lock)
    if row is None:
        return False
    if payment.opened:  # the server invoice exists only if its transaction committed
        return True
    return bool(row.status == "paid" and row.processor_id == payment.processor_invoice_id)


def recorded(conn: Connection, payment: TakenPayment) -> bool:
    """Whether the server recorded ``payment``: its invoice is paid with that processor invoice (an
    :attr:`~TakenPayment.opened` invoice: the server invoice exists; a refund: its charge exists)."""
    return _is_recorded(conn, payment, lock=False)


def _locked(conn: Connection, payment: TakenPayment) -> bool:
    """:func:`recorded`, holding the invoice row (PostgreSQL) so no billing call records it meanwhile;
    SQLite's write transaction holds the whole database already."""
    return _is_recorded(conn, payment, lock=True)


def _owed(payment: TakenPayment, is_recorded: bool) -> bool:
    """Whether the processor still owes the customer something: a payment taken that the server did not
    record, or a refund the server did record."""
    return is_recorded if payment.refund_id is not None else not is_recorded


def _key(payment: TakenPayment) -> str:
    key = f"{payment.processor_invoice_id} {payment.server_invoice_id}"
    return key if payment.refund_id is None else f"{key} {payment.refund_id}"


def _from_key(org_pk: int, env: str, key: str) -> TakenPayment:
    processor_id, _, rest = key.partition(" ")
    server_id, _, refund_id = rest.partition(" ")
    return TakenPayment(org_pk, env, server_id, processor_id, refund_id=refund_id or None)


def _still_due(conn: Connection, payment: TakenPayment) -> bool:
    """Whether the refund-due row is still there, holding it (PostgreSQL) so two retriers (two server
    processes) never reverse the same payment at once."""
    return refund_still_due(conn, payment.org_pk, payment.env, _key(payment))


def _remember(conn: Connection, payment: TakenPayment, now: int | None, error: str | None) -> None:
    due = int(time.time() * 1000) if now is None else now
    try:
        with conn.begin_nested():
            insert_refund_due(conn, payment.org_pk, payment.env, _key(payment), due, error)
    except IntegrityError:
        if not _still_due(conn, payment):
            raise  # not "already due": the database refused the row, so the refund would be lost
        # already due


def _forget(conn: Connection, payment: TakenPayment) -> None:
    delete_refund_due(conn, payment.org_pk, payment.env, _key(payment))


def _reverse(
    engine: Engine,
    reverser: Reverser,
    payment: TakenPayment,
    *,
    kept: bool,
    now: int | None,
    errors: list[str] | None,
) -> str:
    with engine.begin() as conn:
        if kept and not _still_due(conn, payment):
            return "settled"  # another retrier did it meanwhile
        is_recorded = _locked(conn, payment)
        if not _owed(payment, is_recorded):
            _forget(conn, payment)
            return "recorded" if is_recorded else "not_recorded"
        try:
            if payment.refund_id is not None:
                amount = refund_amount(conn, payment.refund_id)
                assert amount is not None  # recorded: the charge is there
                reverser.refund_payment(payment.processor_invoice_id, amount, payment.refund_id)
            else:
                reverser.reverse_payment(payment.processor_invoice_id, payment.server_invoice_id)
        except Exception as exc:
            log.warning(
                "refunding Stripe invoice %s (%s minor units, Autumn invoice %s) failed; kept for a retry",
                payment.processor_invoice_id,
                payment.amount,
                payment.server_invoice_id,
                exc_info=True,
            )
            error = f"{type(exc).__name__}: {exc}"[:500]
            if errors is not None:
                errors.append(error)
            _remember(conn, payment, now, error)
            return "refund_due"
        _forget(conn, payment)
        return "refunded"


def settle(
    engine: Engine,
    reverser: Reverser,
    payment: TakenPayment,
    kept: bool = False,
    *,
    now: int | None = None,
    errors: list[str] | None = None,
) -> str:
    """After the transaction: ``recorded``, ``refunded``, or ``refund_due`` (the reversal failed and
    is kept for a retry, due from ``now``; its error appended to ``errors``); ``kept``: the payment is
    one of :func:`refunds_due` (``settled`` when another retrier settled it meanwhile).  A refund the
    server decided on (:attr:`TakenPayment.refund_id`): ``refunded``, ``refund_due``, or
    ``not_recorded`` (its transaction rolled back: nothing to refund).  Raises only when the database
    fails."""
    if not kept:  # the usual case, a committed payment: a plain read proves it
        reader = engine.connect().execution_options(sqlite_begin="DEFERRED")
        with reader, reader.begin():
            is_recorded = recorded(reader, payment)
        if not _owed(payment, is_recorded):
            return "recorded" if is_recorded else "not_recorded"
    return _reverse(engine, reverser, payment, kept=kept, now=now, errors=errors)


def reverse_orphan(engine: Engine, reverser: Reverser, payment: TakenPayment, now: int | None = None) -> str:
    """Reverse a paid processor invoice whose server invoice does not exist (its transaction was lost
    with the process): ``exists`` (the invoice is there after all: apply the event as usual), else as
    :func:`settle`.  The caller holds the customer's billing lock; the proof that no transaction still
    in flight can commit the invoice is taken here (see the module docs, 5)."""
    with engine.begin() as conn:
        exists = invoice_exists_after_commits(conn, payment.server_invoice_id)
    if exists:
        return "exists"
    return _reverse(engine, reverser, payment, kept=False, now=now, errors=None)


def refunds_due(conn: Connection, org_pk: int, env: str) -> list[TakenPayment]:
    return [_from_key(org_pk, env, key) for key in refund_keys(conn, org_pk, env)]


def retry_refunds(engine: Engine, reverser: Reverser, org_pk: int, env: str) -> list[str]:
    """Try the reversals still due for the organization again (each proven first, as in :func:`settle`)."""
    with engine.connect() as conn, conn.begin():
        due = refunds_due(conn, org_pk, env)
    return [settle(engine, reverser, payment, kept=True) for payment in due]


@dataclass(frozen=True)
class RefundRetryPolicy(ExponentialBackoff):
    """Backoff of a refund still due: the first retry ``base_delay_ms`` after the failure that made it
    due, then exponential (never given up: the money is the customer's)."""

    base_delay_ms: int = 30_000


@dataclass(frozen=True)
class RetryState:
    """One refund due as its row says: its retries so far, when the next is due, the last error."""

    attempts: int
    next_attempt_at: int
    last_error: str | None


class RefundRetrier:
    """Retries the refunds due of every organization, each on its own backoff (:meth:`run_due` is one
    round, called by the background worker).  Everything it knows is in the rows."""

    def __init__(
        self,
        engine: Engine,
        reverser_for: ReverserFor,
        clock: Clock,
        policy: RefundRetryPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.reverser_for = reverser_for
        self.clock = clock
        self.policy = policy or RefundRetryPolicy()
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def _due_at(self, row: RefundDueRow) -> int:
        """A row never retried is first due a base delay after it became due."""
        if int(row.attempts) == 0:
            return int(row.next_attempt_at) + self.policy.base_delay_ms
        return int(row.next_attempt_at)

    def _rows(self) -> list[RefundDueRow]:
        with self.engine.connect() as conn, conn.begin():
            return all_refunds_due(conn)

    def state(self) -> dict[tuple[int, str, str], RetryState]:
        """Each refund due (org pk, env, row key): its retries, next attempt and last error, for
        operators and tests."""
        return {
            (int(r.org_pk), str(r.env), str(r.key)): RetryState(
                int(r.attempts), self._due_at(r), None if r.last_error is None else str(r.last_error)
            )
            for r in self._rows()
        }

    def run_due(self) -> int:
        """Retry every refund whose backoff has passed; returns how many were attempted."""
        attempted = 0
        for row in self._rows():
            now = self.clock.now_ms()
            with self._lock:
                if self._due_at(row) > now or int(row.pk) in self._running:
                    continue
                self._running.add(int(row.pk))
            try:
                attempted += 1
                self._attempt(row, now)
            finally:
                with self._lock:
                    self._running.discard(int(row.pk))
        return attempted

    def _attempt(self, row: RefundDueRow, now: int) -> None:
        org_pk, env, key = int(row.org_pk), str(row.env), str(row.key)
        payment = _from_key(org_pk, env, key)
        processor_id = payment.processor_invoice_id
        attempts = int(row.attempts) + 1
        errors: list[str] = []
        try:
            with self.engine.connect() as conn, conn.begin():
                reverser = self.reverser_for(conn, org_pk, env)
            if reverser is None:
                errors.append("the organization has no Stripe account configured any more")
                result = "refund_due"
            else:
                result = settle(self.engine, reverser, payment, kept=True, now=now, errors=errors)
        except Exception as exc:  # the database failed: the row is still there, tried again later
            log.error("retrying the refund of Stripe invoice %s failed", processor_id, exc_info=True)
            errors.append(f"{type(exc).__name__}: {exc}"[:500])
            result = "refund_due"
        if result == "refund_due":
            try:
                with self.engine.begin() as conn:
                    record_refund_retry(
                        conn,
                        org_pk,
                        env,
                        _key(payment),
                        attempts,
                        now + self.policy.delay_after(attempts),
                        errors[-1] if errors else None,
                    )
            except Exception:  # tried again at once next round: a retry too many, never one too few
                log.error("recording the retry of Stripe invoice %s failed", processor_id, exc_info=True)
        elif result == "refunded":
            log.info("refunded Stripe invoice %s after %d retries", processor_id, attempts)


def settle_after_transaction(
    conn: Connection,
    reverser: Reverser,
    customer_pk: int,
    server_invoice_id: str,
    processor_invoice_id: str,
    amount: int | None = None,
    now: int | None = None,
) -> None:
    """Register a payment just taken (``amount`` in minor units, at the server's ``now``): once
    ``conn``'s transaction has ended it is proven recorded or reversed (a reversal that fails is left
    to :class:`RefundRetrier`).  A database failure meanwhile is logged at ERROR (nothing else can
    record it; the Stripe ``invoice.paid`` event repairs it, see :func:`reverse_orphan`)."""
    owner = customer_owner(conn, customer_pk)
    payment = TakenPayment(owner.org_pk, owner.env, server_invoice_id, processor_invoice_id, amount)
    failed = (
        f"payment of Stripe invoice {processor_invoice_id} ({amount} minor units, Autumn invoice "
        f"{server_invoice_id}) could not be reconciled: the database failed after the transaction; its "
        "invoice.paid event will refund it if the server invoice is missing"
    )
    if not _settle_after(conn, reverser, payment, now, failed):
        log.warning("payment %s taken outside Database.write: not reconciled", processor_invoice_id)


def void_after_transaction(
    conn: Connection,
    reverser: Reverser,
    customer_pk: int,
    server_invoice_id: str,
    processor_invoice_id: str,
    amount: int | None = None,
    now: int | None = None,
) -> None:
    """Register an invoice just made on the processor for the customer to pay (invoice mode, open or a
    draft): once ``conn``'s transaction has ended it is kept if the server invoice exists, else voided
    (a failed void is left to :class:`RefundRetrier`, like a refund)."""
    owner = customer_owner(conn, customer_pk)
    opened = TakenPayment(
        owner.org_pk, owner.env, server_invoice_id, processor_invoice_id, amount, opened=True
    )
    failed = (
        f"Stripe invoice {processor_invoice_id} ({amount} minor units, Autumn invoice {server_invoice_id}) "
        "could not be reconciled: the database failed after the transaction; void it on Stripe if the "
        "server invoice is missing"
    )
    if not _settle_after(conn, reverser, opened, now, failed):
        log.warning("invoice %s opened outside Database.write: not reconciled", processor_invoice_id)


def refund_after_transaction(
    conn: Connection,
    refunder: Reverser,
    customer_pk: int,
    server_invoice_id: str,
    processor_invoice_id: str,
    refund_id: str,
    amount: int,
    now: int | None = None,
) -> None:
    """Register a refund just recorded in ``conn``'s transaction (the negative charge ``refund_id`` of
    ``amount`` minor units on the server invoice): once the transaction has committed it is made on the
    processor (a refund that fails is left to :class:`RefundRetrier`); rolled back, nothing is done."""
    owner = customer_owner(conn, customer_pk)
    refund = TakenPayment(
        owner.org_pk, owner.env, server_invoice_id, processor_invoice_id, amount, refund_id=refund_id
    )
    failed = (
        f"refund {refund_id} of Stripe invoice {processor_invoice_id} ({amount} minor units, Autumn invoice "
        f"{server_invoice_id}) could not be made: the database failed after the transaction; refund it on "
        "Stripe if the charge is recorded"
    )
    if not _settle_after(conn, refunder, refund, now, failed):
        raise RuntimeError(f"refund {refund_id} recorded outside Database.write: it would never be made")


def _settle_after(
    conn: Connection, reverser: Reverser, payment: TakenPayment, now: int | None, failed: str
) -> bool:
    """Run :func:`settle` for ``payment`` once ``conn``'s write transaction has ended; a database
    failure then is logged at ERROR as ``failed`` (nothing else can record it).  False when ``conn``
    is not in a transaction opened by ``Database.write`` (nothing registered)."""
    engine = conn.engine

    def run() -> None:
        try:
            settle(engine, reverser, payment, now=now)
        except Exception:
            log.error("%s", failed, exc_info=True)

    return after_transaction(conn, run)


__all__ = [
    "REFUND_KIND",
    "RefundRetrier",
    "RefundRetryPolicy",
    "RetryState",
    "Reverser",
    "ReverserFor",
    "TakenPayment",
    "recorded",
    "refund_after_transaction",
    "refunds_due",
    "retry_refunds",
    "reverse_orphan",
    "settle",
    "settle_after_transaction",
    "void_after_transaction",
]
