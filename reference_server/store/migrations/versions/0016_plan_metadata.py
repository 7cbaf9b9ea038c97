"""Plans carry the user's metadata (Autumn's current API: ``Plan.metadata``, shared by every version).

Revision ID: 0016_plan_metadata
Revises: 0015_billing_import
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_plan_metadata"
down_revision = "0015_billing_import"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("plans", sa.Column("metadata", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("metadata")
