"""Stripe Products and Prices created for plans (one per plan version and fixed price, per Stripe account).

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).

Revision ID: 0005_stripe_objects
Revises: 0004_org_stripe
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_stripe_objects"
down_revision = "0004_org_stripe"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "stripe_objects",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=255), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("price_key", sa.String(length=255), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("recurring", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_stripe_objects")),
        sa.UniqueConstraint(
            "org_pk",
            "env",
            "account_key",
            "plan_id",
            "plan_version",
            "price_key",
            name="uq_stripe_objects_plan_price",
        ),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_stripe_objects_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_objects")
