"""Operations the official SDK has beyond the spec.

Revision ID: 0021_sdk_extras
Revises: 0020_usage_limits
"""

from __future__ import annotations

revision = "0021_sdk_extras"
down_revision = "0020_usage_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the slot keeps the revision chain in order while the tables are designed."""


def downgrade() -> None:
    """Nothing to undo."""
