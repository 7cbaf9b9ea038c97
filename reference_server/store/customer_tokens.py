"""SQL of per-customer tokens: each customer's token family and the deployment's signing key.

A family is a customer's revocation ``epoch`` (tokens minted under an older epoch are refused) and
the generation of its newest refresh token (``refresh_kid``), as Autumn keeps them per customer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from reference_server.store.tables.core import customers, organizations
from reference_server.store.tables.licenses import customer_token_families, customer_token_secrets


@dataclass(frozen=True)
class Family:
    epoch: int
    refresh_kid: int


def read_family(conn: Connection, customer_pk: int, *, lock: bool = False) -> Family:
    q = select(customer_token_families).where(customer_token_families.c.customer_pk == customer_pk)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    return Family(0, 0) if row is None else Family(int(row.epoch), int(row.refresh_kid))


def write_family(conn: Connection, customer_pk: int, family: Family, now: int) -> None:
    values = {"epoch": family.epoch, "refresh_kid": family.refresh_kid, "updated_at": now}
    done = conn.execute(
        update(customer_token_families)
        .where(customer_token_families.c.customer_pk == customer_pk)
        .values(**values)
    )
    if not done.rowcount:
        conn.execute(insert(customer_token_families).values(customer_pk=customer_pk, **values))


def stored_secret(conn: Connection) -> str | None:
    secret = conn.execute(
        select(customer_token_secrets.c.secret).where(customer_token_secrets.c.pk == 1)
    ).scalar_one_or_none()
    return None if secret is None else str(secret)


def signing_secret(conn: Connection, now: int) -> str:
    """The stored signing key, created on first use (a concurrent creator's key wins the race)."""
    existing = stored_secret(conn)
    if existing is not None:
        return existing
    candidate = secrets.token_urlsafe(48)
    try:
        with conn.begin_nested():
            conn.execute(insert(customer_token_secrets).values(pk=1, secret=candidate, created_at=now))
    except IntegrityError:
        winner = stored_secret(conn)
        assert winner is not None
        return winner
    return candidate


def token_subject(conn: Connection, customer_pk: int) -> Any:
    """The customer a token names, with its organization's tenancy columns (None once deleted)."""
    return conn.execute(
        select(
            customers.c.pk,
            customers.c.id,
            customers.c.env,
            organizations.c.pk.label("org_pk"),
            organizations.c.id.label("org_id"),
            organizations.c.catalog_version,
            organizations.c.sandbox_clock_offset_ms,
            organizations.c.live_clock_offset_ms,
        )
        .join(organizations, organizations.c.pk == customers.c.org_pk)
        .where(customers.c.pk == customer_pk)
    ).first()
