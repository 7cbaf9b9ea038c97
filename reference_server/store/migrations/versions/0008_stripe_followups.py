"""Durable work owed to Stripe: mirror syncs still due, deleted customers' clean-ups, refunds due.

The refunds due that earlier revisions kept as ``idempotency_keys`` rows of scope ``refund_due``
move into the new table (and back on downgrade), so an upgraded server still gives them back.

Revision ID: 0008_stripe_followups
Revises: 0007_stripe_subscriptions
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import delete, insert, literal, select

from reference_server.store.stripe_objects import STRIPE_FOLLOWUP_TABLES, stripe_followups
from reference_server.store.tables import idempotency_keys

OLD_REFUND_SCOPE = "refund_due"

revision = "0008_stripe_followups"
down_revision = "0007_stripe_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in STRIPE_FOLLOWUP_TABLES:
        table.create(bind, checkfirst=False)
    kept = idempotency_keys.c
    bind.execute(
        insert(stripe_followups).from_select(
            ["org_pk", "env", "kind", "key", "version", "attempts", "next_attempt_at", "created_at"],
            select(
                kept.org_pk,
                kept.env,
                literal("refund"),
                kept.key,
                literal(1),
                literal(0),
                kept.created_at,
                kept.created_at,
            ).where(kept.scope == OLD_REFUND_SCOPE),
        )
    )
    bind.execute(delete(idempotency_keys).where(kept.scope == OLD_REFUND_SCOPE))


def downgrade() -> None:
    bind = op.get_bind()
    due = stripe_followups.c
    bind.execute(
        insert(idempotency_keys).from_select(
            ["org_pk", "env", "scope", "key", "created_at"],
            select(due.org_pk, due.env, literal(OLD_REFUND_SCOPE), due.key, due.created_at).where(
                due.kind == "refund"
            ),
        )
    )
    for table in reversed(STRIPE_FOLLOWUP_TABLES):
        table.drop(bind, checkfirst=True)
