"""Auto top-up purchase counts set through ``billing_controls.auto_topups[].purchase_limit.count``.

Revision ID: 0017_current_fields
Revises: 0016_plan_metadata
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_current_fields"
down_revision = "0016_plan_metadata"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "auto_topup_counts",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("customer_pk", _PK, sa.ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("feature_id", sa.String(255), nullable=False),
        sa.Column("purchase_count", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("customer_pk", "feature_id", name="uq_auto_topup_counts_customer_feature"),
    )


def downgrade() -> None:
    op.drop_table("auto_topup_counts")
