"""Header idempotency claims keep the request they were made for and the response they answered.

The claim of an ``Idempotency-Key`` header now commits with the request's work and its response
(:mod:`reference_server.store.idempotency`): the request hash tells a replay from a different request
with a used key, the status and body are replayed.  Claims made before this revision have none and
still answer 409 ``duplicate_idempotency_key`` until they expire.  An index on ``created_at`` serves
the purge of expired claims.

Revision ID: 0009_idempotency_responses
Revises: 0008_stripe_followups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_idempotency_responses"
down_revision = "0008_stripe_followups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("request_hash", sa.String(64), nullable=True))
    op.add_column("idempotency_keys", sa.Column("response_status", sa.Integer(), nullable=True))
    op.add_column("idempotency_keys", sa.Column("response_body", sa.Text(), nullable=True))
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_body")
        batch.drop_column("response_status")
        batch.drop_column("request_hash")
