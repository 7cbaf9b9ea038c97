"""Per-organization Stripe accounts (keys and webhook secret per environment) and applied Stripe events.

Revision ID: 0004_org_stripe
Revises: 0003_track_functions
"""

from __future__ import annotations

from alembic import op

from reference_server.store.stripe_tables import STRIPE_TABLES

revision = "0004_org_stripe"
down_revision = "0003_track_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in STRIPE_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(STRIPE_TABLES):
        table.drop(bind, checkfirst=True)
