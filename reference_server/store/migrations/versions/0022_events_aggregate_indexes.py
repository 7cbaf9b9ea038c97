"""Indexes for ``events.aggregate`` in SQL: a customer's (or an env's) events of one feature in time
order, carrying their value, so each bin of an aggregate is one index range read without the table.

The DDL is written out here (not read from :mod:`reference_server.store.tables.core`), so later
changes to that module never change what this revision creates.

Revision ID: 0022_events_aggregate_indexes
Revises: 0021_webhooks_sandboxes
"""

from __future__ import annotations

from alembic import op

revision = "0022_events_aggregate_indexes"
down_revision = "0021_webhooks_sandboxes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_customer_feature_ts",
        "events",
        ["customer_pk", "feature_id", "timestamp", "value"],
        unique=False,
    )
    op.create_index(
        "ix_events_org_feature_ts",
        "events",
        ["org_pk", "env", "feature_id", "timestamp", "value"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_org_feature_ts", table_name="events")
    op.drop_index("ix_events_customer_feature_ts", table_name="events")
