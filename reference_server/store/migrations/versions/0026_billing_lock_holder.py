"""The process that holds a customer's billing lock (``idempotency_keys.holder``).

A server killed while it held a lock left the row behind, and the customer's billing changes were
refused with 429 until the row aged out (two minutes). With the holder recorded, a process on the
same machine sees that the holder is gone and takes the lock over at once
(:mod:`reference_server.store.lock_holders`).

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0026_billing_lock_holder
Revises: 0025_track_apply_batch
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026_billing_lock_holder"
down_revision = "0025_track_apply_batch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("holder", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("holder")
