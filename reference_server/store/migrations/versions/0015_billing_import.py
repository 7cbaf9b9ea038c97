"""Imported billing state: imported invoices' extra fields, imported plans, processor identities.

See :mod:`reference_server.store.tables.imports`.

Revision ID: 0015_billing_import
Revises: 0014_invoices
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_billing_import"
down_revision = "0014_invoices"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "imported_invoices",
        sa.Column("invoice_pk", _PK, nullable=False),
        sa.Column("processor_type", sa.String(16), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["invoices.pk"],
            name=op.f("fk_imported_invoices_invoice_pk_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invoice_pk", name=op.f("pk_imported_invoices")),
    )
    op.create_table(
        "imported_plans",
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("processor", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("processor_subscription_id", sa.String(255), nullable=True),
        sa.Column("processor_schedule_id", sa.String(255), nullable=True),
        sa.Column("billing_cycle_anchor", sa.BigInteger(), nullable=True),
        sa.Column("imported_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_imported_plans_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_plan_pk", name=op.f("pk_imported_plans")),
    )
    op.create_table(
        "customer_processor_ids",
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("processor", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_customer_processor_ids_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_pk", "processor", name=op.f("pk_customer_processor_ids")),
    )
    op.create_index(
        "ix_customer_processor_ids_processor", "customer_processor_ids", ["processor", "external_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_customer_processor_ids_processor", table_name="customer_processor_ids")
    op.drop_table("customer_processor_ids")
    op.drop_table("imported_plans")
    op.drop_table("imported_invoices")
