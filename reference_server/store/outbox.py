"""The webhook outbox as stored: messages, one delivery row per endpoint, and the deliverer's claims
and attempts (the SQL behind ``webhooks.outbox``, ``webhooks.delivery`` and the backlog metrics)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, insert, or_, select, update

from reference_server.store.tables.billing import webhook_deliveries, webhook_endpoints, webhook_outbox


def insert_message(
    conn: Connection,
    org_pk: int,
    env: str,
    *,
    message_id: str,
    event_type: str,
    payload: str,
    created_at: int,
) -> int:
    """Insert an outbox message; its pk."""
    pk: int = conn.execute(
        insert(webhook_outbox)
        .values(
            id=message_id,
            org_pk=org_pk,
            env=env,
            event_type=event_type,
            payload=payload,
            created_at=created_at,
        )
        .returning(webhook_outbox.c.pk)
    ).scalar_one()
    return pk


def insert_deliveries(conn: Connection, message_pk: int, endpoint_pks: list[int]) -> None:
    """One pending delivery of the message per endpoint, due at once."""
    conn.execute(
        insert(webhook_deliveries),
        [
            {
                "message_pk": message_pk,
                "endpoint_pk": endpoint_pk,
                "status": "pending",
                "attempts": 0,
                # Due at once: retries are scheduled on the deliverer's own clock, not tenant time.
                "next_attempt_at": 0,
            }
            for endpoint_pk in endpoint_pks
        ],
    )


def _claimable(now: int) -> ColumnElement[bool]:
    d = webhook_deliveries.c
    return and_(
        d.status == "pending",
        d.next_attempt_at <= now,
        or_(d.claimed_until.is_(None), d.claimed_until < now),
    )


def any_claimable(conn: Connection, now: int) -> bool:
    """Whether some pending delivery is due and unclaimed at ``now``."""
    d = webhook_deliveries.c
    return conn.execute(select(d.pk).where(_claimable(now)).limit(1)).first() is not None


def claimable(conn: Connection, now: int, limit: int) -> list[Row[Any, Any, Any, Any, Any, Any, Any]]:
    """Up to ``limit`` due, unclaimed deliveries (pk, attempts, id, payload, url, secret, enabled),
    the earliest due first."""
    d, o, e = webhook_deliveries.c, webhook_outbox.c, webhook_endpoints.c
    return list(
        conn.execute(
            select(d.pk, d.attempts, o.id, o.payload, e.url, e.secret, e.enabled)
            .select_from(
                webhook_deliveries.join(webhook_outbox, d.message_pk == o.pk).join(
                    webhook_endpoints, d.endpoint_pk == e.pk
                )
            )
            .where(_claimable(now))
            .order_by(d.next_attempt_at, d.pk)
            .limit(limit)
        ).all()
    )


def claim(conn: Connection, delivery_pk: int, now: int, until: int) -> int:
    """Claim the delivery until ``until`` if it is still claimable; 1 when taken, else 0."""
    d = webhook_deliveries.c
    taken: int = conn.execute(
        update(webhook_deliveries).where(d.pk == delivery_pk, _claimable(now)).values(claimed_until=until)
    ).rowcount
    return taken


def release_claims(conn: Connection) -> int:
    """Free every pending delivery's claim; how many were claimed."""
    d = webhook_deliveries.c
    return int(
        conn.execute(
            update(webhook_deliveries)
            .where(d.status == "pending", d.claimed_until.is_not(None))
            .values(claimed_until=None)
        ).rowcount
    )


def record_attempt(conn: Connection, delivery_pk: int, values: dict[str, Any]) -> None:
    """Store an attempt's outcome (``values``: the delivery's changed columns)."""
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.pk == delivery_pk).values(**values))


def backlog(conn: Connection) -> tuple[int, int]:
    """How many deliveries are pending and how many failed, across every organization."""
    d = webhook_deliveries.c
    pending: int = conn.execute(select(func.count()).where(d.status == "pending")).scalar_one()
    failed: int = conn.execute(select(func.count()).where(d.status == "failed")).scalar_one()
    return pending, failed
