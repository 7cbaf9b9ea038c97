"""Coupons applied to a subscription (``subscription_discounts``): the reward as applied, how long it
still lasts (billing periods, or invoice credit left) and what it has taken off so far.

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0028_subscription_discounts
Revises: 0027_processor_metadata
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_subscription_discounts"
down_revision = "0027_processor_metadata"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "subscription_discounts",
        sa.Column("pk", _PK, nullable=False, autoincrement=True),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("reward_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("plan_ids", sa.JSON(), nullable=True),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("duration_type", sa.String(16), nullable=False),
        sa.Column("duration_length", sa.Integer(), nullable=True),
        sa.Column("periods_left", sa.Integer(), nullable=True),
        sa.Column("credit_left", sa.BigInteger(), nullable=True),
        sa.Column("total_discount", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name="fk_subscription_discounts_customer_pk_customers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name="fk_subscription_discounts_customer_plan_pk_customer_plans",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name="pk_subscription_discounts"),
    )
    op.create_index(
        "ix_subscription_discounts_customer_pk", "subscription_discounts", ["customer_pk"], unique=False
    )
    op.create_index(
        "ix_subscription_discounts_customer_plan_pk",
        "subscription_discounts",
        ["customer_plan_pk"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_discounts_customer_plan_pk", table_name="subscription_discounts")
    op.drop_index("ix_subscription_discounts_customer_pk", table_name="subscription_discounts")
    op.drop_table("subscription_discounts")
