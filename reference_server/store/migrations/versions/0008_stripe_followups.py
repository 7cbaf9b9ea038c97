"""Durable work owed to Stripe: mirror syncs still due, deleted customers' clean-ups, refunds due.

The refunds due that earlier revisions kept as ``idempotency_keys`` rows of scope ``refund_due``
move into the new table (and back on downgrade), so an upgraded server still gives them back.

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).  The rows are
moved through lightweight tables naming only the columns this revision reads and writes.

Revision ID: 0008_stripe_followups
Revises: 0007_stripe_subscriptions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

OLD_REFUND_SCOPE = "refund_due"

revision = "0008_stripe_followups"
down_revision = "0007_stripe_subscriptions"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")

_idempotency_keys = sa.table(
    "idempotency_keys",
    sa.column("org_pk", _PK),
    sa.column("env", sa.String(16)),
    sa.column("scope", sa.String(16)),
    sa.column("key", sa.String(255)),
    sa.column("created_at", sa.BigInteger()),
)

_stripe_followups = sa.table(
    "stripe_followups",
    sa.column("org_pk", _PK),
    sa.column("env", sa.String(16)),
    sa.column("kind", sa.String(16)),
    sa.column("key", sa.String(255)),
    sa.column("version", sa.Integer()),
    sa.column("attempts", sa.Integer()),
    sa.column("next_attempt_at", sa.BigInteger()),
    sa.column("created_at", sa.BigInteger()),
)


def upgrade() -> None:
    op.create_table(
        "stripe_followups",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("customer_pk", _PK, nullable=True),
        sa.Column("account_key", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_stripe_followups")),
        sa.UniqueConstraint("org_pk", "env", "kind", "key", name="uq_stripe_followups_key"),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_stripe_followups_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_stripe_followups_customer", "stripe_followups", ["customer_pk", "kind"], unique=False)
    op.create_index(
        "ix_stripe_followups_next_attempt_at", "stripe_followups", ["next_attempt_at"], unique=False
    )
    bind = op.get_bind()
    kept = _idempotency_keys.c
    bind.execute(
        sa.insert(_stripe_followups).from_select(
            ["org_pk", "env", "kind", "key", "version", "attempts", "next_attempt_at", "created_at"],
            sa.select(
                kept.org_pk,
                kept.env,
                sa.literal("refund"),
                kept.key,
                sa.literal(1),
                sa.literal(0),
                kept.created_at,
                kept.created_at,
            ).where(kept.scope == OLD_REFUND_SCOPE),
        )
    )
    bind.execute(sa.delete(_idempotency_keys).where(kept.scope == OLD_REFUND_SCOPE))


def downgrade() -> None:
    bind = op.get_bind()
    due = _stripe_followups.c
    bind.execute(
        sa.insert(_idempotency_keys).from_select(
            ["org_pk", "env", "scope", "key", "created_at"],
            sa.select(due.org_pk, due.env, sa.literal(OLD_REFUND_SCOPE), due.key, due.created_at).where(
                due.kind == "refund"
            ),
        )
    )
    op.drop_index("ix_stripe_followups_next_attempt_at", table_name="stripe_followups")
    op.drop_index("ix_stripe_followups_customer", table_name="stripe_followups")
    op.drop_table("stripe_followups")
