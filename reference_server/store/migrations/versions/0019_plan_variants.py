"""Plan variants and version migrations.

Revision ID: 0019_plan_variants
Revises: 0018_paid_seats
"""

from __future__ import annotations

revision = "0019_plan_variants"
down_revision = "0018_paid_seats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the slot keeps the revision chain in order while the tables are designed."""


def downgrade() -> None:
    """Nothing to undo."""
