"""Paid billing: payment methods, invoices, charges, credits, sessions, trials, top-ups, webhooks.

Revision ID: 0002_billing
Revises: 0001_initial
"""

from __future__ import annotations

from alembic import op

from reference_server.store.billing_tables import BILLING_TABLES

revision = "0002_billing"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in BILLING_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(BILLING_TABLES):
        table.drop(bind, checkfirst=True)
