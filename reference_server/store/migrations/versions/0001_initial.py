"""Initial schema: tenancy, catalogue, customers, balances, events, locks, rewards.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

from alembic import op

from reference_server.store.tables import INITIAL_TABLES

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in INITIAL_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(INITIAL_TABLES):
        table.drop(bind, checkfirst=True)
