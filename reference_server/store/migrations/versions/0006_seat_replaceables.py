"""Paid seats released with ``on_decrease: none`` kept per plan instance for reuse (Autumn's replaceables).

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).

Revision ID: 0006_seat_replaceables
Revises: 0005_stripe_objects
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_seat_replaceables"
down_revision = "0005_stripe_objects"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "seat_replaceables",
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("feature_id", sa.String(length=255), nullable=False),
        sa.Column("units", sa.String(length=64), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_plan_pk", "feature_id", name=op.f("pk_seat_replaceables")),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_seat_replaceables_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("seat_replaceables")
