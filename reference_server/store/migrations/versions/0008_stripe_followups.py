"""The Stripe subscription mirror's durable follow-ups (syncs still due, deleted customers' clean-ups).

Revision ID: 0008_stripe_followups
Revises: 0007_stripe_subscriptions
"""

from __future__ import annotations

from alembic import op

from reference_server.store.stripe_objects import STRIPE_FOLLOWUP_TABLES

revision = "0008_stripe_followups"
down_revision = "0007_stripe_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in STRIPE_FOLLOWUP_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(STRIPE_FOLLOWUP_TABLES):
        table.drop(bind, checkfirst=True)
