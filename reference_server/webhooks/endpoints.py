"""Webhook endpoints an organization env registers (URL, secret, event filter)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from reference_server.store import webhook_endpoints as webhook_endpoints_repo
from reference_server.store.webhook_deliveries import endpoints_of

from .events import EVENT_TYPES


@dataclass(frozen=True)
class Endpoint:
    pk: int
    id: str
    url: str
    secret: str
    event_types: tuple[str, ...]
    enabled: bool

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
        }


def new_secret() -> str:
    """A fresh ``whsec_`` secret (24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _row_to_endpoint(row: Any) -> Endpoint:
    return Endpoint(row.pk, row.id, row.url, row.secret, tuple(row.event_types or ()), bool(row.enabled))


def create_endpoint(
    conn: Connection,
    org_pk: int,
    env: str,
    url: str,
    now: int,
    event_types: Sequence[str] = (),
    secret: str | None = None,
) -> Endpoint:
    """Register an endpoint; ``event_types`` empty means every event."""
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown webhook event types: {', '.join(unknown)}")
    if not url.startswith(("http://", "https://")):
        raise ValueError("webhook url must be http(s)")
    endpoint_id = "ep_" + secrets.token_hex(12)
    secret = secret or new_secret()
    pk = webhook_endpoints_repo.insert_endpoint(
        conn,
        org_pk,
        env,
        endpoint_id=endpoint_id,
        url=url,
        secret=secret,
        event_types=event_types,
        created_at=now,
    )
    return Endpoint(pk, endpoint_id, url, secret, tuple(event_types), True)


def list_endpoints(conn: Connection, org_pk: int, env: str) -> list[Endpoint]:
    return [_row_to_endpoint(row) for row in endpoints_of(conn, org_pk, env)]


def delete_endpoint(conn: Connection, org_pk: int, env: str, endpoint_id: str) -> bool:
    return bool(webhook_endpoints_repo.delete_endpoint_by_id(conn, org_pk, env, endpoint_id))
