"""Paid seats released with ``on_decrease: none`` kept per plan instance for reuse (Autumn's replaceables).

Revision ID: 0006_seat_replaceables
Revises: 0005_stripe_objects
"""

from __future__ import annotations

from alembic import op

from reference_server.store.billing_tables import seat_replaceables

revision = "0006_seat_replaceables"
down_revision = "0005_stripe_objects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    seat_replaceables.create(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    seat_replaceables.drop(op.get_bind(), checkfirst=True)
