"""Stripe Products and Prices created for plans (one per plan version and fixed price, per Stripe account).

Revision ID: 0005_stripe_objects
Revises: 0004_org_stripe
"""

from __future__ import annotations

from alembic import op

from reference_server.store.stripe_objects import STRIPE_OBJECT_TABLES

revision = "0005_stripe_objects"
down_revision = "0004_org_stripe"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in STRIPE_OBJECT_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(STRIPE_OBJECT_TABLES):
        table.drop(bind, checkfirst=True)
