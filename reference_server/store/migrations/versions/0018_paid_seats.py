"""Paid license seats.

Revision ID: 0018_paid_seats
Revises: 0017_current_fields
"""

from __future__ import annotations

revision = "0018_paid_seats"
down_revision = "0017_current_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the slot keeps the revision chain in order while the tables are designed."""


def downgrade() -> None:
    """Nothing to undo."""
