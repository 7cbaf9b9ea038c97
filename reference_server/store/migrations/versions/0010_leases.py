"""Leases: the background jobs run in one process at a time across processes sharing the database.

See :mod:`reference_server.store.leases`.

Revision ID: 0010_leases
Revises: 0009_idempotency_responses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_leases"
down_revision = "0009_idempotency_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
