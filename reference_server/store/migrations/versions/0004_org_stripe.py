"""Per-organization Stripe accounts (keys and webhook secret per environment) and applied Stripe events.

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).

Revision ID: 0004_org_stripe
Revises: 0003_track_functions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_org_stripe"
down_revision = "0003_track_functions"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "org_stripe_accounts",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("secret_key", sa.Text(), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_org_stripe_accounts")),
        sa.UniqueConstraint("org_pk", "env", name="uq_org_stripe_accounts_org_env"),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_org_stripe_accounts_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "stripe_events",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_stripe_events")),
        sa.UniqueConstraint("org_pk", "event_id", name="uq_stripe_events_org_event"),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_stripe_events_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_table("org_stripe_accounts")
