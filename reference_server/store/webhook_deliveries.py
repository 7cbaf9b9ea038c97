"""An environment's webhook endpoints and recent deliveries as the dashboard shows them, and sending a
delivery again.  Rows are the tables' own columns (the templates read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, update

from reference_server.store.tables.billing import webhook_deliveries, webhook_endpoints, webhook_outbox


def endpoints_of(conn: Connection, org_pk: int, env: str) -> list[Row[Any]]:
    """The environment's endpoints (every column), oldest first."""
    return list(
        conn.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.org_pk == org_pk, webhook_endpoints.c.env == env)
            .order_by(webhook_endpoints.c.pk)
        ).all()
    )


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery of a message to an endpoint: its state, the message, the endpoint's URL."""

    pk: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    delivered_at: int | None
    event_type: str
    payload: Any
    created_at: int
    url: str


def recent_deliveries(conn: Connection, org_pk: int, env: str, limit: int = 50) -> list[DeliveryRow]:
    """The environment's latest deliveries with their message's type, payload and time and the
    endpoint's URL, newest first."""
    rows = conn.execute(
        select(
            webhook_deliveries.c.pk,
            webhook_deliveries.c.status,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.last_status_code,
            webhook_deliveries.c.last_error,
            webhook_deliveries.c.delivered_at,
            webhook_outbox.c.event_type,
            webhook_outbox.c.payload,
            webhook_outbox.c.created_at,
            webhook_endpoints.c.url,
        )
        .select_from(
            webhook_deliveries.join(
                webhook_outbox, webhook_outbox.c.pk == webhook_deliveries.c.message_pk
            ).join(webhook_endpoints, webhook_endpoints.c.pk == webhook_deliveries.c.endpoint_pk)
        )
        .where(webhook_outbox.c.org_pk == org_pk, webhook_outbox.c.env == env)
        .order_by(webhook_deliveries.c.pk.desc())
        .limit(limit)
    ).all()
    return [DeliveryRow(**row._mapping) for row in rows]


def owns_delivery(conn: Connection, org_pk: int, env: str, delivery_pk: int) -> bool:
    """The delivery ``delivery_pk`` is of a message of this organization's environment."""
    row = conn.execute(
        select(webhook_deliveries.c.pk)
        .select_from(
            webhook_deliveries.join(webhook_outbox, webhook_outbox.c.pk == webhook_deliveries.c.message_pk)
        )
        .where(
            webhook_deliveries.c.pk == delivery_pk,
            webhook_outbox.c.org_pk == org_pk,
            webhook_outbox.c.env == env,
        )
    ).first()
    return row is not None


def resend_delivery(conn: Connection, delivery_pk: int, now: int) -> None:
    """Queue the delivery to be sent again at ``now``."""
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.pk == delivery_pk)
        .values(status="pending", next_attempt_at=now, claimed_until=None)
    )
