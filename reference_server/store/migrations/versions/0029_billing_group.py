"""The plans a ``billing.multi_attach`` made together (``subscription_billing.billing_group``): they renew
on one invoice at each boundary they share.

The DDL is written out here, so later changes elsewhere never change what this revision creates.

Revision ID: 0029_billing_group
Revises: 0028_subscription_discounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029_billing_group"
down_revision = "0028_subscription_discounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscription_billing", sa.Column("billing_group", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription_billing") as batch:
        batch.drop_column("billing_group")
