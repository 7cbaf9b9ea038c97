"""Webhook endpoints, sandboxes and invoice actions as the official SDK has them.

Revision ID: 0022_webhooks_sandboxes
Revises: 0021_sdk_extras
"""

from __future__ import annotations

revision = "0022_webhooks_sandboxes"
down_revision = "0021_sdk_extras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet: the slot keeps the revision chain in order while the tables are designed."""


def downgrade() -> None:
    """Nothing to undo."""
