"""An organization's own Stripe account: reading and saving its keys per environment.

The platform API (``POST /platform/organizations/stripe``) stores them; the payment processor router and
the Stripe webhook endpoint read them.  ``test_*`` fields belong to the ``sandbox`` environment and
``live_*`` fields to ``live``, the way the platform API names them.

The secret fields (``secret_key``, ``webhook_secret``) are stored encrypted (:mod:`.secrets`): saving
encrypts with the first configured key, reading decrypts, and :func:`setup_encryption` (run by
``create_app``) encrypts plaintext rows written before encryption existed and refuses to start when a
stored secret does not decrypt with the configured keys.  ``account_id`` names a connected account and
is not secret.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from reference_server.store.db import Database
from reference_server.store.secrets import (
    EncryptionKeyError,
    SecretBox,
    SecretDecryptionError,
    box_for_source,
    box_of,
    install_box,
    is_encrypted,
    resolve_keys,
)
from reference_server.store.tables.billing import payment_methods
from reference_server.store.tables.core import customers
from reference_server.store.tables.stripe import org_stripe_accounts

ENV_PREFIXES = {"sandbox": "test", "live": "live"}
"""Our environment name -> the prefix of its fields in the platform API body."""

CONFIG_FIELDS = ("secret_key", "account_id", "webhook_secret")
SECRET_FIELDS = ("secret_key", "webhook_secret")
"""Fields stored encrypted."""

log = logging.getLogger("reference_server.secrets")


@dataclass(frozen=True)
class OrgStripeConfig:
    """One environment of an organization's Stripe account."""

    secret_key: str | None
    account_id: str | None
    webhook_secret: str | None


def stripe_config(conn: Connection, org_pk: int, env: str) -> OrgStripeConfig | None:
    row = conn.execute(
        select(org_stripe_accounts).where(
            org_stripe_accounts.c.org_pk == org_pk, org_stripe_accounts.c.env == env
        )
    ).first()
    if row is None:
        return None
    box = box_of(conn)
    return OrgStripeConfig(_reveal(box, row.secret_key), row.account_id, _reveal(box, row.webhook_secret))


def _reveal(box: SecretBox | None, stored: str | None) -> str | None:
    if stored is None or not is_encrypted(stored):
        return stored  # unset, or plaintext from before encryption (encrypted at the next start)
    if box is None:
        raise SecretDecryptionError(
            "A stored Stripe secret is encrypted but the server has no encryption key: set "
            "AUTUMN_ENCRYPTION_KEYS"
        )
    return box.decrypt(stored)


def _seal(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the secret fields encrypted; refuses when the server has no encryption key."""
    if not any(values.get(f) is not None for f in SECRET_FIELDS):
        return values
    box = box_of(conn)
    if box is None:
        raise EncryptionKeyError(
            "This server has no encryption key for stored Stripe secrets: set AUTUMN_ENCRYPTION_KEYS "
            "(comma-separated Fernet keys; `autumn-server keys new-encryption-key` prints one)"
        )
    return {k: box.encrypt(v) if k in SECRET_FIELDS and v is not None else v for k, v in values.items()}


def save_stripe_config(conn: Connection, org_pk: int, env: str, values: dict[str, str], now: int) -> None:
    """Set the given fields (others keep their value, secrets encrypted); creates the row on first use."""
    changes: dict[str, Any] = {k: v for k, v in values.items() if k in CONFIG_FIELDS}
    if not changes:
        return
    changes = _seal(conn, changes)
    where = (org_stripe_accounts.c.org_pk == org_pk, org_stripe_accounts.c.env == env)
    if conn.execute(select(org_stripe_accounts.c.pk).where(*where)).first() is None:
        conn.execute(insert(org_stripe_accounts).values(org_pk=org_pk, env=env, updated_at=now, **changes))
    else:
        conn.execute(update(org_stripe_accounts).where(*where).values(updated_at=now, **changes))


def config_updates(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The platform body's fields per environment, e.g. ``test_secret_key`` -> sandbox ``secret_key``.

    Raises ``ValueError`` for a value that is not a non-empty string or a key of the wrong mode.
    """
    out: dict[str, dict[str, str]] = {}
    for env, prefix in ENV_PREFIXES.items():
        for field in CONFIG_FIELDS:
            value = body.get(f"{prefix}_{field}")
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{prefix}_{field}: must be a non-empty string")
            if field == "secret_key" and value.startswith(("sk_", "rk_")):
                mode = value.split("_")[1] if value.count("_") >= 2 else ""
                if mode != prefix:
                    raise ValueError(f"{prefix}_secret_key: expected a {prefix}-mode key")
            out.setdefault(env, {})[field] = value.strip()
    return out


def forget_stripe_ids(conn: Connection, org_pk: int, env: str) -> tuple[int, int]:
    """Drop what the environment's previous Stripe account knew: its customers' Stripe ids and cards.

    Customer and payment-method ids belong to one Stripe account; another account answers "No such
    customer" for them.  The customers lose ``stripe_id`` (the next charge creates them in the new
    account) and their saved cards lose their processor id and stop being the default, so the next
    payment goes through a checkout page instead of charging a card the new account cannot see.
    Returns (customers, cards) changed.
    """
    env_customers = select(customers.c.pk).where(customers.c.org_pk == org_pk, customers.c.env == env)
    cleared_customers = conn.execute(
        update(customers)
        .where(customers.c.pk.in_(env_customers), customers.c.stripe_id.is_not(None))
        .values(stripe_id=None)
    ).rowcount
    cleared_cards = conn.execute(
        update(payment_methods)
        .where(
            payment_methods.c.customer_pk.in_(env_customers),
            or_(payment_methods.c.processor_id.is_not(None), payment_methods.c.is_default.is_(True)),
        )
        .values(processor_id=None, is_default=False)
    ).rowcount
    return int(cleared_customers or 0), int(cleared_cards or 0)


def _secret_rows(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(org_stripe_accounts).where(
                or_(
                    org_stripe_accounts.c.secret_key.is_not(None),
                    org_stripe_accounts.c.webhook_secret.is_not(None),
                )
            )
        ).all()
    )


def reencrypt_secrets(conn: Connection, box: SecretBox, *, only_plaintext: bool) -> int:
    """Encrypt stored secrets with the box's first key; returns how many values were rewritten.

    ``only_plaintext``: just encrypt values stored before encryption existed (start-up), checking that
    every encrypted one still decrypts; otherwise re-encrypt every value not already under the first
    key (rotation).  Raises :class:`SecretDecryptionError` naming how many values do not decrypt,
    before writing anything.
    """
    changes: list[tuple[int, dict[str, str]]] = []
    unreadable = 0
    for row in _secret_rows(conn):
        values: dict[str, str] = {}
        for field in SECRET_FIELDS:
            stored = getattr(row, field)
            if stored is None:
                continue
            try:
                plaintext = box.decrypt(stored)
            except SecretDecryptionError:
                unreadable += 1
                continue
            if not is_encrypted(stored) or (not only_plaintext and not box.is_current(stored)):
                values[field] = box.encrypt(plaintext)
        if values:
            changes.append((int(row.pk), values))
    if unreadable:
        raise SecretDecryptionError(
            f"{unreadable} stored Stripe secret(s) cannot be decrypted with the configured encryption "
            "key(s). Is AUTUMN_ENCRYPTION_KEYS (or the key file beside the SQLite database) the one "
            "they were encrypted with? During a rotation keep the old key in the list, after the new one."
        )
    for pk, values in changes:
        conn.execute(update(org_stripe_accounts).where(org_stripe_accounts.c.pk == pk).values(**values))
    return sum(len(values) for _pk, values in changes)


def setup_encryption(db: Database, encryption_keys: str | Sequence[str] | None = None) -> SecretBox | None:
    """Find the keys (:func:`reference_server.store.secrets.resolve_keys`), install them for ``db`` and
    bring stored secrets up to date: plaintext ones are encrypted, unreadable ones stop the start.

    PostgreSQL without a key returns None (saving a Stripe secret is then refused), unless secrets are
    already stored: then it raises :class:`EncryptionKeyError`.
    """
    source = resolve_keys(db.url, encryption_keys)
    box = box_for_source(source) if source is not None else None
    with db.write() as conn:
        if box is None:
            if _secret_rows(conn):
                raise EncryptionKeyError(
                    "Organizations' Stripe secrets are stored in this database but no encryption key is "
                    "configured: set AUTUMN_ENCRYPTION_KEYS (or --encryption-keys) to the key(s) they are "
                    "encrypted with"
                )
            log.warning(
                "No AUTUMN_ENCRYPTION_KEYS: organizations cannot save Stripe keys on this server until one "
                "is configured (`autumn-server keys new-encryption-key` prints one)"
            )
        else:
            upgraded = reencrypt_secrets(conn, box, only_plaintext=True)
            if upgraded:
                log.warning("Encrypted %d Stripe secret(s) stored in plain text before", upgraded)
    install_box(db.engine, box)
    return box


def connected_account_id(conn: Connection, org_pk: int, env: str) -> str | None:
    """The Stripe account the organization's env is configured with, if any."""
    account_id: str | None = conn.execute(
        select(org_stripe_accounts.c.account_id).where(
            org_stripe_accounts.c.org_pk == org_pk, org_stripe_accounts.c.env == env
        )
    ).scalar()
    return account_id
