"""Net terms of invoice-mode invoices (``invoice_mode.net_terms_days``): the days the customer has to pay
and the due date they give once the invoice is finalized.

The DDL is written out here (not read from :mod:`reference_server.store.tables.billing`), so later
changes to that module never change what this revision creates.

Revision ID: 0023_invoice_net_terms
Revises: 0022_events_aggregate_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_invoice_net_terms"
down_revision = "0022_events_aggregate_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("net_terms_days", sa.Integer(), nullable=True))
    op.add_column("invoices", sa.Column("due_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("due_at")
        batch.drop_column("net_terms_days")
