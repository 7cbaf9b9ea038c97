"""An organization's own Stripe account: reading and saving its keys per environment.

The platform API (``POST /platform/organizations/stripe``) stores them; the payment processor router and
the Stripe webhook endpoint read them.  ``test_*`` fields belong to the ``sandbox`` environment and
``live_*`` fields to ``live``, the way the platform API names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from reference_server.store.stripe_tables import org_stripe_accounts

ENV_PREFIXES = {"sandbox": "test", "live": "live"}
"""Our environment name -> the prefix of its fields in the platform API body."""

CONFIG_FIELDS = ("secret_key", "account_id", "webhook_secret")


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
    return OrgStripeConfig(row.secret_key, row.account_id, row.webhook_secret)


def save_stripe_config(conn: Connection, org_pk: int, env: str, values: dict[str, str], now: int) -> None:
    """Set the given fields (others keep their value); creates the row on first use."""
    changes: dict[str, Any] = {k: v for k, v in values.items() if k in CONFIG_FIELDS}
    if not changes:
        return
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
