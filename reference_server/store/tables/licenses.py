"""Tables of licenses (seat pools) and per-customer tokens (revision ``0012_licenses_keys``).

``plan_licenses``: a plan version's license links.  A link offers another plan (the license plan) as
an assignable seat, ``included`` seats per customer holding the parent plan.  A customer's pool is
derived from its active parent plan instances and their links, so it needs no row of its own.
``license_assignments``: a seat of a pool held by an entity.  Each assignment provisions the license
plan on the entity as an ordinary plan instance (``customer_plan_pk``), which gives the entity the
license plan's balances; releasing the seat ends that instance and stamps ``ended_at``.
``customer_plan_licenses``: a plan instance's own links (``customize.upsert_licenses``).
``customer_token_families``: the revocation epoch and refresh-token generation of a customer's
``am_jwt_`` tokens (``keys.mint`` / ``keys.refresh`` / ``keys.revoke``).
``customer_token_secrets``: the HMAC key the tokens are signed with when ``AUTUMN_CUSTOMER_JWT_SECRET``
is not set, generated once so every process of a deployment signs with the same key.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from reference_server.store.tables.core import PK, metadata

plan_licenses = Table(
    "plan_licenses",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("plan_pk", PK, ForeignKey("plans.pk", ondelete="CASCADE"), nullable=False),
    Column("license_plan_id", String(255), nullable=False),
    Column("included", Integer, nullable=False),
    Column("prepaid_only", Boolean),
    Column("position", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("plan_pk", "license_plan_id", name="uq_plan_licenses_plan_license"),
)

license_assignments = Table(
    "license_assignments",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("entity_pk", PK, ForeignKey("entities.pk", ondelete="CASCADE"), nullable=False),
    Column(
        "parent_customer_plan_pk",
        PK,
        ForeignKey("customer_plans.pk", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("license_plan_id", String(255), nullable=False),
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="SET NULL")),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Index("ix_license_assignments_customer_ended", "customer_pk", "ended_at"),
)

customer_plan_licenses = Table(
    "customer_plan_licenses",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="CASCADE"), nullable=False),
    Column("license_plan_id", String(255), nullable=False),
    Column("included", Integer),
    Column("prepaid_only", Boolean),
    Column("price", JSON),
    Column("position", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint(
        "customer_plan_pk", "license_plan_id", name="uq_customer_plan_licenses_instance_license"
    ),
)
"""A plan instance's own license links (``customize.upsert_licenses``, revision ``0018_paid_seats``):
each overrides the plan version's link of the same license plan (a null field inherits it) or adds
one; ``price`` is the seat price for this customer."""

customer_token_families = Table(
    "customer_token_families",
    metadata,
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), primary_key=True),
    Column("epoch", Integer, nullable=False),
    Column("refresh_kid", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

customer_token_secrets = Table(
    "customer_token_secrets",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=False),
    Column("secret", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
