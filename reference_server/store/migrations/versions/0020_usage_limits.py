"""Usage limits: the window counters of ``billing_controls.usage_limits``; plans' billing controls.

Revision ID: 0020_usage_limits
Revises: 0019_plan_variants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_usage_limits"
down_revision = "0019_plan_variants"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.add_column("plans", sa.Column("billing_controls", sa.JSON(), nullable=True))
    op.create_table(
        "usage_limit_windows",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("customer_pk", _PK, sa.ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("scope_pk", sa.BigInteger(), nullable=False),
        sa.Column("limit_key", sa.String(1024), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("usage", sa.Float(), nullable=False),
        sa.UniqueConstraint("customer_pk", "scope_pk", "limit_key", name="uq_usage_limit_windows_scope_key"),
    )


def downgrade() -> None:
    op.drop_table("usage_limit_windows")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("billing_controls")
