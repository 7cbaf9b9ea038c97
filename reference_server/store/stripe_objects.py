"""Stripe Products and Prices created for an organization's plans, so each is created once.

Each plan version billed through an organization's Stripe account becomes one Stripe Product, and
each of its fixed prices (the base price, a prepaid item's price per pack) one Stripe Price.  A row
maps ``(organization, env, Stripe account, plan id, version, price key)`` to the Stripe id; ``price_key``
is empty for the product itself.  ``account_key`` is the Stripe account id the objects were created
in (``GET /v1/account``; a connected account's own id), so a rolled secret key of the same account
keeps using them and an organization that switches to another Stripe account gets new objects
there; when the account could not be read it is a digest of the secret key and connected account.
Revision ``0005_stripe_objects`` creates the table.

``stripe_subscriptions`` maps each plan instance mirrored as a Stripe Subscription (see
:mod:`reference_server.processors.stripe.subscriptions`) to its subscription in one Stripe account, with
the state last written there (``synced``), so a sync that finds nothing changed calls no Stripe API.
``customer_plan_pk`` has no foreign key: an instance deleted with its entity still has a Stripe
subscription to cancel.  Revision ``0007_stripe_subscriptions`` creates it.

``stripe_followups`` is the durable to-do list of work owed to Stripe after a transaction: a customer
whose mirrored subscriptions are still to be synced (``sync``: written in the billing change's own
transaction, removed once a sync after it succeeded), what a deleted customer left on Stripe
(``cleanup``: written in the deletion's transaction), and a payment or opened invoice to give back
because its billing transaction did not commit (``refund``, keyed by the Stripe and server invoice ids:
see :mod:`reference_server.processors.compensation`).  Each keeps its retries, next attempt and last
error, so a restarted server or another process finishes it.  ``customer_pk`` has no foreign key (a
deleted customer's clean-up outlives it; a refund names none).  ``next_attempt_at`` is wall-clock ms for
the mirror's rows (Stripe's backoff is real time) and the server's clock for refunds (as their
``created_at``).  Revision ``0008_stripe_followups`` creates it and moves the refunds earlier revisions
kept as ``idempotency_keys`` rows of scope ``refund_due`` into it.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from reference_server.store.tables.core import PK, metadata

stripe_objects = Table(
    "stripe_objects",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("account_key", String(64), nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("price_key", String(255), nullable=False),  # "" for the product, "base", "prepaid:<feature>"
    Column("object_type", String(16), nullable=False),  # product | price
    Column("stripe_id", String(255), nullable=False),
    Column("unit_amount", BigInteger),  # minor units, for prices
    Column("currency", String(3)),
    Column("recurring", String(32)),  # "<count> <interval>" of a recurring price, null for one-time
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint(
        "org_pk",
        "env",
        "account_key",
        "plan_id",
        "plan_version",
        "price_key",
        name="uq_stripe_objects_plan_price",
    ),
)

STRIPE_OBJECT_TABLES: tuple[Table, ...] = (stripe_objects,)
"""Tables created by migration ``0005_stripe_objects``."""

stripe_subscriptions = Table(
    "stripe_subscriptions",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("account_key", String(64), nullable=False),
    Column("customer_plan_pk", PK, nullable=False),  # the plan instance (no FK: see the module docs)
    Column("stripe_id", String(255), nullable=False),  # sub_...
    Column("status", String(16), nullable=False),  # active | canceled (as the server last left it)
    Column("synced", JSON, nullable=False),  # the mirrored state last written to Stripe
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("account_key", "customer_plan_pk", name="uq_stripe_subscriptions_account_instance"),
)

STRIPE_SUBSCRIPTION_TABLES: tuple[Table, ...] = (stripe_subscriptions,)
"""Tables created by migration ``0007_stripe_subscriptions``."""

stripe_followups = Table(
    "stripe_followups",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # sync | cleanup | refund
    Column("key", String(255)),  # refund: "<Stripe invoice id> <server invoice id>"
    Column("customer_pk", PK),  # sync, cleanup (no FK: see the module docs)
    Column("account_key", String(64)),  # cleanup: the Stripe account its objects are in
    Column("payload", JSON),  # cleanup: {"subscriptions": [sub_...], "stripe_customer": cus_... | null}
    Column("version", Integer, nullable=False),  # sync: bumped by each change that asks for one
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),  # wall-clock ms
    Column("last_error", String(500)),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", "kind", "key", name="uq_stripe_followups_key"),
    Index("ix_stripe_followups_customer", "customer_pk", "kind"),
    Index("ix_stripe_followups_next_attempt_at", "next_attempt_at"),
)

STRIPE_FOLLOWUP_TABLES: tuple[Table, ...] = (stripe_followups,)
"""Tables created by migration ``0008_stripe_followups``."""
