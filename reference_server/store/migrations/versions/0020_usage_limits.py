"""Usage limits.

Revision ID: 0020_usage_limits
Revises: 0019_plan_variants
"""

from __future__ import annotations

revision = "0020_usage_limits"
down_revision = "0019_plan_variants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the slot keeps the revision chain in order while the tables are designed."""


def downgrade() -> None:
    """Nothing to undo."""
