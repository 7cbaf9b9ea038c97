"""Webhook outbox delivery to a real local receiver that fails, then recovers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from reference_server.clock import ManualClock
from reference_server.store.db import Database
from reference_server.store.tables.billing import webhook_deliveries, webhook_outbox
from reference_server.webhooks import (
    LIMIT_REACHED,
    USAGE_ALERT_TRIGGERED,
    DeliveryPolicy,
    WebhookDeliverer,
    create_endpoint,
    enqueue,
    limit_reached,
    new_secret,
    usage_alert_triggered,
)

from .fixtures_db import add_org, migrated_database
from .receiver import Receiver


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = migrated_database(tmp_path)
    yield database
    database.dispose()


def delivery_rows(db: Database) -> list[object]:
    with db.read() as conn:
        return list(conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.pk)).all())


def test_failed_deliveries_back_off_then_succeed_exactly_once_per_id(db: Database) -> None:
    org = add_org(db)
    secret = new_secret()
    receiver = Receiver(secret, failures=2)
    clock = ManualClock(1_000_000)
    try:
        with db.write() as conn:
            create_endpoint(conn, org, "sandbox", receiver.url, now=0, secret=secret)
            message_id = enqueue(
                conn, org, "sandbox", LIMIT_REACHED, limit_reached("cus_1", "messages", "included"), now=0
            )
        assert message_id is not None
        policy = DeliveryPolicy(max_attempts=5, base_delay_ms=1_000)
        deliverer = WebhookDeliverer(db, clock, policy)
        assert deliverer.deliver_due() == 1
        (row,) = delivery_rows(db)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
        assert row.next_attempt_at == clock.now_ms() + 1_000
        assert deliverer.deliver_due() == 0  # not due yet
        clock.advance(1_000)
        assert deliverer.deliver_due() == 1
        (row,) = delivery_rows(db)
        assert (row.attempts, row.next_attempt_at) == (2, clock.now_ms() + 2_000)  # exponential
        deliverer.close()

        # A restarted server (new deliverer, same database) finishes the job.
        clock.advance(2_000)
        restarted = WebhookDeliverer(db, clock, policy)
        assert restarted.deliver_due() == 1
        (row,) = delivery_rows(db)
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 204)
        clock.advance(10_000_000)
        assert restarted.deliver_due() == 0
        restarted.close()
        assert receiver.seen_ids == [message_id] * 3
        assert receiver.accepted == {
            message_id: {
                "type": "balances.limit_reached",
                "data": {"customer_id": "cus_1", "feature_id": "messages", "limit_type": "included"},
            }
        }
    finally:
        receiver.close()


def test_attempts_are_bounded(db: Database) -> None:
    org = add_org(db)
    secret = new_secret()
    receiver = Receiver(secret, failures=100)
    clock = ManualClock(0)
    try:
        with db.write() as conn:
            create_endpoint(conn, org, "sandbox", receiver.url, now=0, secret=secret)
            enqueue(conn, org, "sandbox", LIMIT_REACHED, limit_reached("c", "m", "included"), now=0)
        deliverer = WebhookDeliverer(db, clock, DeliveryPolicy(max_attempts=3, base_delay_ms=10))
        for _ in range(5):
            deliverer.deliver_due()
            clock.advance(1_000)
        deliverer.close()
        (row,) = delivery_rows(db)
        assert (row.status, row.attempts) == ("failed", 3)
        assert receiver.requests == 3
    finally:
        receiver.close()


def test_unreachable_endpoint_is_retried(db: Database) -> None:
    org = add_org(db)
    clock = ManualClock(0)
    with db.write() as conn:
        create_endpoint(conn, org, "sandbox", "http://127.0.0.1:9/unreachable", now=0)
        enqueue(conn, org, "sandbox", LIMIT_REACHED, limit_reached("c", "m", "included"), now=0)
    deliverer = WebhookDeliverer(db, clock, DeliveryPolicy(base_delay_ms=50))
    assert deliverer.deliver_due() == 1
    deliverer.close()
    (row,) = delivery_rows(db)
    assert row.status == "pending" and row.last_status_code is None and "ConnectError" in row.last_error


def test_event_filters_and_rollback_write_nothing(db: Database) -> None:
    org = add_org(db)
    with db.write() as conn:
        create_endpoint(
            conn, org, "sandbox", "http://127.0.0.1:9/a", now=0, event_types=[USAGE_ALERT_TRIGGERED]
        )
        assert enqueue(conn, org, "sandbox", LIMIT_REACHED, {"x": 1}, now=0) is None
    with pytest.raises(RuntimeError), db.write() as conn:
        enqueue(
            conn,
            org,
            "sandbox",
            USAGE_ALERT_TRIGGERED,
            usage_alert_triggered("c", "m", {"threshold": 80, "threshold_type": "usage"}, entity_id="e1"),
            now=0,
        )
        raise RuntimeError("the billing change failed")
    with db.read() as conn:
        assert conn.execute(select(webhook_outbox)).all() == []
    with db.write() as conn:
        message_id = enqueue(
            conn,
            org,
            "sandbox",
            USAGE_ALERT_TRIGGERED,
            usage_alert_triggered("c", "m", {"threshold": 1}),
            now=0,
        )
    with db.read() as conn:
        (stored,) = conn.execute(select(webhook_outbox)).all()
    assert stored.id == message_id
    assert json.loads(stored.payload)["data"]["usage_alert"] == {"threshold": 1}
    with pytest.raises(ValueError), db.write() as conn:
        create_endpoint(conn, org, "sandbox", "http://x", now=0, event_types=["nope"])
