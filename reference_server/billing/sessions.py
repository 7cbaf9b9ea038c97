"""Hosted sessions: the checkout, setup-payment and customer-portal links the API hands out.

A checkout session stores the quote's lines, so the page charges exactly what the preview showed, and an
``action`` saying what completing it does (for example the pending attach request).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.store.billing_sessions import create_session

SESSION_TTL_MS = 24 * 3_600_000
LINK_TTL_MS = 90 * 24 * 3_600_000
"""How long a long-lived checkout link (``long_lived_checkout``) can be opened (Autumn: 90 days)."""
# A declined or 3-D Secure charge gets a short window; then its invoice is voided (Autumn: 10 minutes).
PAYMENT_RETRY_TTL_MS = 10 * 60_000


def session_url(base_url: str, kind: str, session_id: str) -> str:
    return f"{base_url.rstrip('/')}/{kind}/{session_id}"


def create_checkout_session(
    conn: Connection,
    customer_pk: int,
    draft: InvoiceDraft,
    action: dict[str, Any],
    now: int,
    base_url: str,
    success_url: str | None = None,
    invoice_pk: int | None = None,
    ttl_ms: int = SESSION_TTL_MS,
) -> tuple[str, str]:
    """A checkout for ``draft``; with ``invoice_pk`` it collects that open invoice instead of a new one."""
    session_id = create_session(
        conn,
        "checkout",
        customer_pk,
        now,
        ttl_ms,
        draft=draft,
        action=action,
        success_url=success_url,
        invoice_pk=invoice_pk,
    )
    return session_id, session_url(base_url, "checkout", session_id)


def create_checkout_link(
    conn: Connection,
    customer_pk: int,
    action: dict[str, Any],
    now: int,
    base_url: str,
    success_url: str | None = None,
) -> tuple[str, str]:
    """A long-lived checkout link (``/l/{id}``): each opening prices ``action`` again and sends the payer
    to a checkout for it (the one still open from an earlier opening, else a fresh one)."""
    session_id = create_session(
        conn, "link", customer_pk, now, LINK_TTL_MS, action=action, success_url=success_url
    )
    return session_id, f"{base_url.rstrip('/')}/l/{session_id}"


def create_setup_session(
    conn: Connection,
    customer_pk: int,
    action: dict[str, Any],
    now: int,
    base_url: str,
    success_url: str | None = None,
) -> tuple[str, str]:
    session_id = create_session(
        conn, "setup", customer_pk, now, SESSION_TTL_MS, action=action, success_url=success_url
    )
    return session_id, session_url(base_url, "setup", session_id)


def create_portal_session(
    conn: Connection, customer_pk: int, now: int, base_url: str, return_url: str | None = None
) -> tuple[str, str]:
    session_id = create_session(conn, "portal", customer_pk, now, SESSION_TTL_MS, return_url=return_url)
    return session_id, session_url(base_url, "portal", session_id)
