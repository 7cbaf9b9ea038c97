"""AI credit systems' markups: one JSON column on ``features``.

``features.markups`` holds an AI credit system's ``default_markup``, ``provider_markups`` and
``model_markups`` (``track_tokens`` prices token usage with them).  ``batch_track`` needs no table:
its items are applied in the request's own transaction before the 202 is answered.

Revision ID: 0014_invoices
Revises: 0013_rewards
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_invoices"
down_revision = "0013_rewards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("features", sa.Column("markups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("features") as batch:
        batch.drop_column("markups")
