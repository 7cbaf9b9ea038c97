"""Organizations, users and secret keys.

Keys are stored as SHA-256 hashes; the plain key is shown once, when it is created.  Each key is
scoped to one organization and one env (``am_sk_test_`` = sandbox, ``am_sk_live_`` = live).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from reference_server.store.tables.core import api_keys, memberships, organizations, users


@dataclass(frozen=True)
class Tenant:
    """The organization env a secret key is scoped to."""

    org_pk: int
    org_id: str
    env: str  # "sandbox" | "live"
    clock_offset_ms: int
    catalog_version: int
    is_platform: bool = True


KEY_PREFIXES = {"sandbox": "am_sk_test_", "live": "am_sk_live_"}
DEFAULT_ORG_ID = "org_default"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def env_of_key(key: str) -> str | None:
    for env, prefix in KEY_PREFIXES.items():
        if key.startswith(prefix):
            return env
    return None


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class OrgRow:
    pk: int
    id: str
    name: str
    slug: str
    created_at: int
    parent_org_pk: int | None


def _org(r: Any) -> OrgRow:
    return OrgRow(r.pk, r.id, r.name, r.slug, r.created_at, r.parent_org_pk)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"


def get_org(conn: Connection, org_id: str) -> OrgRow | None:
    r = conn.execute(select(organizations).where(organizations.c.id == org_id)).first()
    return _org(r) if r is not None else None


def get_org_by_slug(conn: Connection, slug: str) -> OrgRow | None:
    r = conn.execute(select(organizations).where(organizations.c.slug == slug)).first()
    return _org(r) if r is not None else None


def create_org(
    conn: Connection,
    name: str,
    slug: str | None = None,
    *,
    org_id: str | None = None,
    parent_org_pk: int | None = None,
    owner_email: str | None = None,
) -> OrgRow:
    slug = slug or slugify(name)
    base, n = slug, 1
    while get_org_by_slug(conn, slug) is not None:
        n += 1
        slug = f"{base}-{n}"
    oid = org_id or "org_" + secrets.token_hex(10)
    pk = conn.execute(
        insert(organizations)
        .values(
            id=oid,
            name=name,
            slug=slug,
            owner_email=owner_email,
            parent_org_pk=parent_org_pk,
            sandbox_clock_offset_ms=0,
            live_clock_offset_ms=0,
            catalog_version=0,
            created_at=now_ms(),
        )
        .returning(organizations.c.pk)
    ).scalar_one()
    r = conn.execute(select(organizations).where(organizations.c.pk == pk)).one()
    return _org(r)


def ensure_default_org(conn: Connection) -> OrgRow:
    org = get_org(conn, DEFAULT_ORG_ID)
    return (
        org if org is not None else create_org(conn, "Default organization", "default", org_id=DEFAULT_ORG_ID)
    )


def create_key(conn: Connection, org_pk: int, env: str, name: str | None = None) -> tuple[str, str]:
    """A new secret key for the org env; returns (key id, plain key)."""
    key = KEY_PREFIXES[env] + secrets.token_urlsafe(32).replace("-", "").replace("_", "")[:40]
    key_id = "key_" + secrets.token_hex(8)
    conn.execute(
        insert(api_keys).values(
            id=key_id,
            org_pk=org_pk,
            env=env,
            key_hash=hash_key(key),
            prefix=key[:16],
            name=name,
            created_at=now_ms(),
        )
    )
    return key_id, key


def register_key(conn: Connection, org_pk: int, key: str, name: str | None = None) -> None:
    """Register a key chosen by the operator (``--secret-key`` / ``AUTUMN_SECRET_KEY``); idempotent."""
    env = env_of_key(key)
    if env is None:
        raise ValueError("secret keys start with am_sk_test_ or am_sk_live_")
    h = hash_key(key)
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == h)).first()
    if row is None:
        conn.execute(
            insert(api_keys).values(
                id="key_" + secrets.token_hex(8),
                org_pk=org_pk,
                env=env,
                key_hash=h,
                prefix=key[:16],
                name=name,
                created_at=now_ms(),
            )
        )
    elif row.revoked_at is not None or row.org_pk != org_pk:
        conn.execute(update(api_keys).where(api_keys.c.pk == row.pk).values(revoked_at=None, org_pk=org_pk))


def list_keys(conn: Connection, org_pk: int | None = None) -> list[dict[str, Any]]:
    q = (
        select(api_keys, organizations.c.id.label("org_id"))
        .join(organizations, organizations.c.pk == api_keys.c.org_pk)
        .order_by(api_keys.c.pk)
    )
    if org_pk is not None:
        q = q.where(api_keys.c.org_pk == org_pk)
    return [
        {
            "id": r.id,
            "org_id": r.org_id,
            "env": r.env,
            "prefix": r.prefix,
            "name": r.name,
            "created_at": r.created_at,
            "revoked": r.revoked_at is not None,
        }
        for r in conn.execute(q)
    ]


def revoke_key(conn: Connection, key_id_or_key: str) -> bool:
    cond = api_keys.c.id == key_id_or_key
    if env_of_key(key_id_or_key):
        cond = api_keys.c.key_hash == hash_key(key_id_or_key)
    result = conn.execute(
        update(api_keys).where(cond, api_keys.c.revoked_at.is_(None)).values(revoked_at=now_ms())
    )
    return bool(result.rowcount)


def tenant_for_key(conn: Connection, key: str) -> Tenant | None:
    row = conn.execute(
        select(
            api_keys.c.env,
            organizations.c.pk,
            organizations.c.id,
            organizations.c.catalog_version,
            organizations.c.sandbox_clock_offset_ms,
            organizations.c.live_clock_offset_ms,
        )
        .join(organizations, organizations.c.pk == api_keys.c.org_pk)
        .where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    offset = row.sandbox_clock_offset_ms if row.env == "sandbox" else row.live_clock_offset_ms
    return Tenant(
        org_pk=row.pk,
        org_id=row.id,
        env=row.env,
        clock_offset_ms=int(offset or 0),
        catalog_version=int(row.catalog_version),
    )


def ensure_user(conn: Connection, email: str, name: str | None = None) -> tuple[int, str, bool]:
    row = conn.execute(select(users).where(users.c.email == email)).first()
    if row is not None:
        return row.pk, row.id, False
    uid = "user_" + secrets.token_hex(10)
    pk = conn.execute(
        insert(users).values(id=uid, email=email, name=name, created_at=now_ms()).returning(users.c.pk)
    ).scalar_one()
    return int(pk), uid, True


def add_member(conn: Connection, org_pk: int, user_pk: int, role: str = "owner") -> None:
    exists = conn.execute(
        select(memberships).where(memberships.c.org_pk == org_pk, memberships.c.user_pk == user_pk)
    ).first()
    if exists is None:
        conn.execute(insert(memberships).values(org_pk=org_pk, user_pk=user_pk, role=role))


def org_names(conn: Connection, org_pk: int) -> tuple[str, str, str]:
    """The organization's (id, name, slug)."""
    row = conn.execute(
        select(organizations.c.id, organizations.c.name, organizations.c.slug).where(
            organizations.c.pk == org_pk
        )
    ).one()
    return str(row.id), str(row.name), str(row.slug)


def advance_sandbox_clock(conn: Connection, org_pk: int, delta_ms: int) -> None:
    """Move the organization's sandbox test clock ``delta_ms`` forward."""
    conn.execute(
        update(organizations)
        .where(organizations.c.pk == org_pk)
        .values(sandbox_clock_offset_ms=organizations.c.sandbox_clock_offset_ms + delta_ms)
    )
