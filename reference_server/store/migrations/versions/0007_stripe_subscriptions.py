"""Plan instances mirrored as Stripe Subscriptions (payment collection paused: the server bills).

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).

Revision ID: 0007_stripe_subscriptions
Revises: 0006_seat_replaceables
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_stripe_subscriptions"
down_revision = "0006_seat_replaceables"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "stripe_subscriptions",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("synced", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_stripe_subscriptions")),
        sa.UniqueConstraint(
            "account_key", "customer_plan_pk", name="uq_stripe_subscriptions_account_instance"
        ),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_stripe_subscriptions_customer_pk_customers"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_subscriptions")
