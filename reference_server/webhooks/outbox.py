"""Writing events to the outbox, inside the caller's transaction.

Because the event row and one delivery row per subscribed endpoint are inserted with the billing change,
either both commit or neither does: no webhook for a rolled-back change, no change without its webhook.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from reference_server.store import outbox

from .endpoints import list_endpoints


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def enqueue(
    conn: Connection,
    org_pk: int,
    env: str,
    event_type: str,
    data: Mapping[str, Any],
    now: int,
    message_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str | None:
    """Record ``{"type": event_type, "data": data}`` for every endpoint that wants it.

    Returns the message id, or None when no endpoint subscribes (nothing is stored then).
    ``extra`` adds top-level fields (auto top-up events carry ``id`` and ``occurred_at``).
    """
    endpoints = [e for e in list_endpoints(conn, org_pk, env) if e.wants(event_type)]
    if not endpoints:
        return None
    message_id = message_id or new_message_id()
    body = {"type": event_type, "data": dict(data), **dict(extra or {})}
    message_pk = outbox.insert_message(
        conn,
        org_pk,
        env,
        message_id=message_id,
        event_type=event_type,
        payload=json.dumps(body, separators=(",", ":"), sort_keys=True),
        created_at=now,
    )
    outbox.insert_deliveries(conn, message_pk, [endpoint.pk for endpoint in endpoints])
    return message_id
