"""Per-customer license links (``customize.upsert_licenses``).

Paid seats themselves need no table: a pool's bought total is a prepaid quantity of the parent
instance (``subscription_billing.prepaid_quantities``, key ``license:<license plan id>``).
See :mod:`reference_server.store.tables.licenses`.

Revision ID: 0018_paid_seats
Revises: 0017_current_fields
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_paid_seats"
down_revision = "0017_current_fields"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "customer_plan_licenses",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("license_plan_id", sa.String(255), nullable=False),
        sa.Column("included", sa.Integer(), nullable=True),
        sa.Column("prepaid_only", sa.Boolean(), nullable=True),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_customer_plan_licenses_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_customer_plan_licenses")),
        sa.UniqueConstraint(
            "customer_plan_pk", "license_plan_id", name="uq_customer_plan_licenses_instance_license"
        ),
    )


def downgrade() -> None:
    op.drop_table("customer_plan_licenses")
