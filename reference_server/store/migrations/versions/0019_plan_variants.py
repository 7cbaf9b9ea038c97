"""Plan variants: a plan row may name the base plan it was derived from.

Revision ID: 0019_plan_variants
Revises: 0018_paid_seats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_plan_variants"
down_revision = "0018_paid_seats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("plans", sa.Column("base_plan_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("base_plan_id")
