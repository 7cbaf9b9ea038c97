"""The caller's metadata for the processor's objects (``billing.attach``'s ``metadata``): on an invoice
(``invoices.processor_metadata``) and on a plan instance's billing state
(``subscription_billing.processor_metadata``), written beside the server's own keys on the Stripe
invoice and the mirrored Stripe subscription.

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0027_processor_metadata
Revises: 0026_billing_lock_holder
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027_processor_metadata"
down_revision = "0026_billing_lock_holder"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("processor_metadata", sa.JSON(), nullable=True))
    op.add_column("subscription_billing", sa.Column("processor_metadata", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription_billing") as batch:
        batch.drop_column("processor_metadata")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("processor_metadata")
