"""Webhook endpoints as Autumn's ``webhooks.*`` have them (the caller's id, a note, a change time); sandboxes.

The DDL is written out here (not read from :mod:`reference_server.store.tables.webhooks`), so later
changes to that module never change what this revision creates.

Revision ID: 0021_webhooks_sandboxes
Revises: 0020_usage_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_webhooks_sandboxes"
down_revision = "0020_usage_limits"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint_details",
        sa.Column("endpoint_pk", _PK, nullable=False, autoincrement=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("webhook_id", sa.String(256), nullable=False),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_pk"],
            ["webhook_endpoints.pk"],
            name="fk_webhook_endpoint_details_endpoint_pk_webhook_endpoints",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name="fk_webhook_endpoint_details_org_pk_organizations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_pk", name="pk_webhook_endpoint_details"),
        sa.UniqueConstraint("org_pk", "env", "webhook_id", name="uq_webhook_endpoint_details_org_pk"),
    )
    op.create_table(
        "sandboxes",
        sa.Column("org_pk", _PK, nullable=False, autoincrement=False),
        sa.Column("parent_org_pk", _PK, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("color", sa.String(16), nullable=False),
        sa.Column("icon", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"], ["organizations.pk"], name="fk_sandboxes_org_pk_organizations", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_org_pk"],
            ["organizations.pk"],
            name="fk_sandboxes_parent_org_pk_organizations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_pk", name="pk_sandboxes"),
    )
    op.create_index("ix_sandboxes_parent_org_pk", "sandboxes", ["parent_org_pk"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sandboxes_parent_org_pk", table_name="sandboxes")
    op.drop_table("sandboxes")
    op.drop_table("webhook_endpoint_details")
