"""Hosted billing sessions (``billing_sessions``): checkout, portal and setup pages a customer opens,
what completing one does (its ``action``), and the invoice a checkout pays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.store.ids import new_id
from reference_server.store.invoice_lines import draft_from_json, draft_to_json
from reference_server.store.tables.billing import billing_sessions

WAITING = ("open", "requires_action")
"""Statuses of a checkout session still waiting for its payment."""


@dataclass(frozen=True)
class SessionRecord:
    pk: int
    id: str
    kind: str  # checkout | portal | setup | link (a long-lived checkout link)
    customer_pk: int
    status: str  # open | requires_action | complete | expired
    currency: str
    amount: int
    lines: list[dict[str, Any]]
    action: dict[str, Any]
    success_url: str | None
    return_url: str | None
    pending_payment_method_pk: int | None
    invoice_pk: int | None
    expires_at: int

    @property
    def draft(self) -> InvoiceDraft:
        return draft_from_json(self.lines, self.currency)


def _record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        row.pk,
        row.id,
        row.kind,
        row.customer_pk,
        row.status,
        row.currency,
        row.amount,
        list(row.lines or []),
        dict(row.action or {}),
        row.success_url,
        row.return_url,
        row.pending_payment_method_pk,
        row.invoice_pk,
        row.expires_at,
    )


def create_session(
    conn: Connection,
    kind: str,
    customer_pk: int,
    now: int,
    ttl_ms: int,
    draft: InvoiceDraft | None = None,
    action: dict[str, Any] | None = None,
    success_url: str | None = None,
    return_url: str | None = None,
    invoice_pk: int | None = None,
) -> str:
    prefix = {"checkout": "cs", "portal": "bps", "setup": "seti", "link": "lco"}[kind]
    session_id = new_id(prefix)
    conn.execute(
        insert(billing_sessions).values(
            id=session_id,
            kind=kind,
            customer_pk=customer_pk,
            status="open",
            currency=draft.currency if draft else "usd",
            amount=draft.total if draft else 0,
            lines=draft_to_json(draft) if draft else [],
            action=action or {},
            success_url=success_url,
            return_url=return_url,
            invoice_pk=invoice_pk,
            created_at=now,
            expires_at=now + ttl_ms,
        )
    )
    return session_id


def load_session(conn: Connection, session_id: str, kind: str, lock: bool = False) -> SessionRecord | None:
    """A session by id; ``lock`` takes a row lock (PostgreSQL) so a double submit cannot pay twice."""
    query = select(billing_sessions).where(
        billing_sessions.c.id == session_id, billing_sessions.c.kind == kind
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _record(row)


def update_session(conn: Connection, session_pk: int, **values: Any) -> None:
    conn.execute(update(billing_sessions).where(billing_sessions.c.pk == session_pk).values(**values))


def session_processor_id(conn: Connection, session_pk: int) -> str | None:
    """The processor's checkout session of a server session (None while it has none)."""
    value = conn.execute(
        select(billing_sessions.c.processor_id).where(billing_sessions.c.pk == session_pk)
    ).scalar()
    return str(value) if value else None


def checkout_sessions_of(conn: Connection, invoice_pk: int) -> list[SessionRecord]:
    """The checkout sessions paying the invoice."""
    rows = conn.execute(
        select(billing_sessions).where(
            billing_sessions.c.invoice_pk == invoice_pk, billing_sessions.c.kind == "checkout"
        )
    ).all()
    return [_record(r) for r in rows]


def waiting_checkout_sessions(conn: Connection, invoice_pk: int) -> list[str]:
    """The ids of checkout sessions still waiting on the invoice (open or requiring action)."""
    waiting = conn.execute(
        select(billing_sessions.c.id).where(
            billing_sessions.c.invoice_pk == invoice_pk,
            billing_sessions.c.kind == "checkout",
            billing_sessions.c.status.in_(WAITING),
        )
    ).scalars()
    return [str(session_id) for session_id in list(waiting)]
