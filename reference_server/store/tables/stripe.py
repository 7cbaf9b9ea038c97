"""Tables of an organization's own Stripe account: its keys per environment and the events it sent.

Each organization (and each of its environments, ``sandbox`` and ``live``) may bring its own Stripe
account, so the keys live with the organization rather than in the server's environment.  Stripe
delivers an event at least once; ``stripe_events`` remembers the ids already applied so a redelivery
changes nothing.  Both hang off the core ``metadata``; revision ``0004_org_stripe`` creates them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table, Text, UniqueConstraint

from reference_server.store.tables.core import PK, metadata

org_stripe_accounts = Table(
    "org_stripe_accounts",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),  # sandbox | live
    Column("secret_key", Text),  # the organization's own key (sk_test_... / sk_live_... / rk_...)
    Column("account_id", String(255)),  # a connected account charged with the server's platform key
    Column("webhook_secret", Text),  # whsec_...: verifies the Stripe-Signature of incoming events
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", name="uq_org_stripe_accounts_org_env"),
)

stripe_events = Table(
    "stripe_events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "event_id", name="uq_stripe_events_org_event"),
)

STRIPE_TABLES: tuple[Table, ...] = (org_stripe_accounts, stripe_events)
"""Tables created by migration ``0004_org_stripe``, in dependency order."""
