"""Plan instances mirrored as Stripe Subscriptions (payment collection paused: the server bills).

Revision ID: 0007_stripe_subscriptions
Revises: 0006_seat_replaceables
"""

from __future__ import annotations

from alembic import op

from reference_server.store.stripe_objects import STRIPE_SUBSCRIPTION_TABLES

revision = "0007_stripe_subscriptions"
down_revision = "0006_seat_replaceables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in STRIPE_SUBSCRIPTION_TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(STRIPE_SUBSCRIPTION_TABLES):
        table.drop(bind, checkfirst=True)
