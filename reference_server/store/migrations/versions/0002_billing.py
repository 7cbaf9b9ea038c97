"""Paid billing: payment methods, invoices, charges, credits, sessions, trials, top-ups, webhooks.

Frozen DDL: the tables as this revision created them, written out rather than taken from the live
table definitions, so a later change to those needs its own revision and a fresh database gets the
same schema as an upgraded one (``tests/server/test_migrations.py`` compares them).

Revision ID: 0002_billing
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_billing"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "payment_methods",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("processor", sa.String(length=16), nullable=False),
        sa.Column("processor_id", sa.String(length=255), nullable=True),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("behavior", sa.String(length=32), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_payment_methods")),
        sa.UniqueConstraint("id", name=op.f("uq_payment_methods_id")),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_payment_methods_customer_pk_customers"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_payment_methods_customer", "payment_methods", ["customer_pk"], unique=False)
    op.create_table(
        "invoices",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("credit_applied", sa.BigInteger(), nullable=False),
        sa.Column("plan_ids", sa.JSON(), nullable=False),
        sa.Column("processor", sa.String(length=16), nullable=False),
        sa.Column("processor_id", sa.String(length=255), nullable=True),
        sa.Column("hosted_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_invoices")),
        sa.UniqueConstraint("id", name=op.f("uq_invoices_id")),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_invoices_customer_pk_customers"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_invoices_customer", "invoices", ["customer_pk", "created_at"], unique=False)
    op.create_table(
        "invoice_lines",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("invoice_pk", _PK, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.String(length=255), nullable=False),
        sa.Column("feature_id", sa.String(length=255), nullable=True),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=True),
        sa.Column("period_end", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_invoice_lines")),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["invoices.pk"],
            name=op.f("fk_invoice_lines_invoice_pk_invoices"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_invoice_lines_invoice", "invoice_lines", ["invoice_pk"], unique=False)
    op.create_table(
        "charges",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("invoice_pk", _PK, nullable=False),
        sa.Column("payment_method_pk", _PK, nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_charges")),
        sa.UniqueConstraint("id", name=op.f("uq_charges_id")),
        sa.ForeignKeyConstraint(
            ["invoice_pk"], ["invoices.pk"], name=op.f("fk_charges_invoice_pk_invoices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["payment_method_pk"],
            ["payment_methods.pk"],
            name=op.f("fk_charges_payment_method_pk_payment_methods"),
            ondelete="SET NULL",
        ),
    )
    op.create_table(
        "credit_ledger",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("invoice_pk", _PK, nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_credit_ledger")),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_credit_ledger_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["invoices.pk"],
            name=op.f("fk_credit_ledger_invoice_pk_invoices"),
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_credit_ledger_customer", "credit_ledger", ["customer_pk"], unique=False)
    op.create_table(
        "billing_sessions",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("pending_payment_method_pk", _PK, nullable=True),
        sa.Column("invoice_pk", _PK, nullable=True),
        sa.Column("processor_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_billing_sessions")),
        sa.UniqueConstraint("id", name=op.f("uq_billing_sessions_id")),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_billing_sessions_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pending_payment_method_pk"],
            ["payment_methods.pk"],
            name=op.f("fk_billing_sessions_pending_payment_method_pk_payment_methods"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["invoices.pk"],
            name=op.f("fk_billing_sessions_invoice_pk_invoices"),
            ondelete="SET NULL",
        ),
    )
    op.create_table(
        "subscription_billing",
        sa.Column("customer_plan_pk", _PK, nullable=False),
        sa.Column("anchor_at", sa.BigInteger(), nullable=True),
        sa.Column("prepaid_quantities", sa.JSON(), nullable=False),
        sa.Column("custom_plan", sa.JSON(), nullable=True),
        sa.Column("past_due", sa.Boolean(), nullable=False),
        sa.Column("processor_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_plan_pk", name=op.f("pk_subscription_billing")),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_subscription_billing_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "trials_used",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("plan_id", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=True),
        sa.Column("used_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_trials_used")),
        sa.UniqueConstraint("customer_pk", "plan_id", name="uq_trials_used_customer_plan"),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_trials_used_customer_pk_customers"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "auto_topup_purchases",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("feature_id", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("invoice_pk", _PK, nullable=True),
        sa.Column("purchased_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_auto_topup_purchases")),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_auto_topup_purchases_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_pk"],
            ["invoices.pk"],
            name=op.f("fk_auto_topup_purchases_invoice_pk_invoices"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "ix_auto_topup_purchases_customer_feature",
        "auto_topup_purchases",
        ["customer_pk", "feature_id", "purchased_at"],
        unique=False,
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("id", name=op.f("uq_webhook_endpoints_id")),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_webhook_endpoints_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_endpoints_org_env", "webhook_endpoints", ["org_pk", "env"], unique=False)
    op.create_table(
        "webhook_outbox",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_webhook_outbox_id")),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_webhook_outbox_org_pk_organizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("message_pk", _PK, nullable=False),
        sa.Column("endpoint_pk", _PK, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("message_pk", "endpoint_pk", name="uq_webhook_deliveries_message_endpoint"),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["webhook_outbox.pk"],
            name=op.f("fk_webhook_deliveries_message_pk_webhook_outbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_pk"],
            ["webhook_endpoints.pk"],
            name=op.f("fk_webhook_deliveries_endpoint_pk_webhook_endpoints"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_outbox")
    op.drop_index("ix_webhook_endpoints_org_env", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_auto_topup_purchases_customer_feature", table_name="auto_topup_purchases")
    op.drop_table("auto_topup_purchases")
    op.drop_table("trials_used")
    op.drop_table("subscription_billing")
    op.drop_table("billing_sessions")
    op.drop_index("ix_credit_ledger_customer", table_name="credit_ledger")
    op.drop_table("credit_ledger")
    op.drop_table("charges")
    op.drop_index("ix_invoice_lines_invoice", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_index("ix_invoices_customer", table_name="invoices")
    op.drop_table("invoices")
    op.drop_index("ix_payment_methods_customer", table_name="payment_methods")
    op.drop_table("payment_methods")
