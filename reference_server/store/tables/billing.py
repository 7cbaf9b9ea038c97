"""Tables of the paid billing side: payment methods, invoices, charges, hosted sessions, webhooks.

They hang off the core schema's ``metadata`` so one Alembic history (revision ``0002_billing``) covers
them. Money columns are integer minor units; quantities are stored as decimal strings so nothing is
ever rounded through a float.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from reference_server.store.tables.core import PK, metadata

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("processor", String(16), nullable=False),
    Column("processor_id", String(255)),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    # What an off-session charge on this card does: succeed, decline or require authentication.
    Column("behavior", String(32), nullable=False, default="succeed"),
    Column("is_default", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_payment_methods_customer", "customer_pk"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("entity_id", String(255)),
    Column("status", String(16), nullable=False),  # draft | open | paid | void | uncollectible
    Column("reason", String(32), nullable=False),  # attach | upgrade | renewal | cancel | update | topup ...
    Column("currency", String(8), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=False, default=0),
    Column("credit_applied", BigInteger, nullable=False, default=0),
    Column("plan_ids", JSON, nullable=False),
    Column("processor", String(16), nullable=False),
    Column("processor_id", String(255)),
    Column("hosted_url", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("paid_at", BigInteger),
    # Invoice mode: the days the customer has to pay (``invoice_mode.net_terms_days``, default 30) and
    # the due date they give, set when the invoice is finalized (null while a draft).
    Column("net_terms_days", Integer),
    Column("due_at", BigInteger),
    # The caller's metadata for the processor's invoice (``billing.attach``'s ``metadata``, its
    # ``autumn_*`` keys stripped): on Stripe, beside the server's own keys.  Null: none.
    Column("processor_metadata", JSON),
    Index("ix_invoices_customer", "customer_pk", "created_at"),
)

INVOICE_REASON = "invoice"
"""``invoices.reason`` of an invoice-mode invoice (``billing.attach`` with ``invoice_mode.enabled``)."""
RETRYABLE_REASONS = ("renewal", "trial_end", "final_usage")
"""``invoices.reason`` of the invoices a renewal retry collects again (open ones make a plan past due)."""

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("display_name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("feature_id", String(255)),
    Column("quantity", String(64), nullable=False),
    Column("period_start", BigInteger),
    Column("period_end", BigInteger),
    Index("ix_invoice_lines_invoice", "invoice_pk"),
)

charges = Table(
    "charges",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="CASCADE"), nullable=False),
    Column("payment_method_pk", PK, ForeignKey("payment_methods.pk", ondelete="SET NULL")),
    Column("amount", BigInteger, nullable=False),  # negative for refunds
    Column("status", String(24), nullable=False),  # succeeded | failed | requires_action | refunded
    Column("failure_code", String(64)),
    Column("failure_message", Text),
    Column("created_at", BigInteger, nullable=False),
)

credit_ledger = Table(
    "credit_ledger",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("currency", String(8), nullable=False),
    # Positive adds customer credit (a prorated downgrade/cancel); negative consumes it on an invoice.
    Column("amount", BigInteger, nullable=False),
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="SET NULL")),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_credit_ledger_customer", "customer_pk"),
)

billing_sessions = Table(
    "billing_sessions",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # checkout | portal | setup
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("status", String(24), nullable=False),  # open | requires_action | complete | expired
    Column("currency", String(8), nullable=False, default="usd"),
    Column("amount", BigInteger, nullable=False, default=0),
    Column("lines", JSON, nullable=False),  # the quote's lines, so the page charges exactly the preview
    Column("action", JSON, nullable=False),  # what completing the session does (attach request, plan...)
    Column("success_url", Text),
    Column("return_url", Text),
    Column("pending_payment_method_pk", PK, ForeignKey("payment_methods.pk", ondelete="SET NULL")),
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="SET NULL")),
    Column("processor_id", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
)

subscription_billing = Table(
    "subscription_billing",
    metadata,
    Column(
        "customer_plan_pk",
        PK,
        ForeignKey("customer_plans.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("anchor_at", BigInteger),
    Column("prepaid_quantities", JSON, nullable=False),  # feature_id -> decimal string
    # The plan as attached when ``customize`` changed it (renewals bill this, not the catalogue).
    Column("custom_plan", JSON),
    Column("past_due", Boolean, nullable=False, default=False),
    Column("processor_subscription_id", String(255)),
    # The caller's metadata for the processor's subscription (the ``metadata`` of the attaches that made
    # or re-attached the instance, ``autumn_*`` keys stripped): the mirrored Stripe Subscription's, beside
    # the server's own keys.  Null: none.
    Column("processor_metadata", JSON),
    # The plans a ``billing.multi_attach`` made together (one subscription, as Autumn's one Stripe
    # subscription with an item per plan): those renewing at the same boundary share one invoice.
    # Null: the instance renews on its own.
    Column("billing_group", String(255)),
    Column("updated_at", BigInteger, nullable=False),
)

trials_used = Table(
    "trials_used",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("fingerprint", String(255)),
    Column("used_at", BigInteger, nullable=False),
    UniqueConstraint("customer_pk", "plan_id", name="uq_trials_used_customer_plan"),
)

auto_topup_purchases = Table(
    "auto_topup_purchases",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("feature_id", String(255), nullable=False),
    Column("quantity", String(64), nullable=False),
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="SET NULL")),
    Column("purchased_at", BigInteger, nullable=False),
    Index("ix_auto_topup_purchases_customer_feature", "customer_pk", "feature_id", "purchased_at"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("event_types", JSON, nullable=False),  # [] means every event type
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_webhook_endpoints_org_env", "org_pk", "env"),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),  # the stable message id receivers dedupe on
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the exact JSON body that is signed and sent
    Column("created_at", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("message_pk", PK, ForeignKey("webhook_outbox.pk", ondelete="CASCADE"), nullable=False),
    Column("endpoint_pk", PK, ForeignKey("webhook_endpoints.pk", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", BigInteger),
    UniqueConstraint("message_pk", "endpoint_pk", name="uq_webhook_deliveries_message_endpoint"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

seat_replaceables = Table(
    "seat_replaceables",
    metadata,
    Column(
        "customer_plan_pk",
        PK,
        ForeignKey("customer_plans.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("feature_id", String(255), primary_key=True),
    # Paid seats released with ``on_decrease: none`` (Autumn's replaceables), a decimal string: re-adding
    # a seat before ``period_end`` reuses one for free; from ``period_end`` on they are gone.
    Column("units", String(64), nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
"""Created by migration ``0006_seat_replaceables`` (not part of :data:`BILLING_TABLES`)."""

BILLING_TABLES: tuple[Table, ...] = (
    payment_methods,
    invoices,
    invoice_lines,
    charges,
    credit_ledger,
    billing_sessions,
    subscription_billing,
    trials_used,
    auto_topup_purchases,
    webhook_endpoints,
    webhook_outbox,
    webhook_deliveries,
)
"""Tables created by migration ``0002_billing``, in dependency order."""

subscription_discounts = Table(
    "subscription_discounts",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="CASCADE"), nullable=False),
    # The coupon as it was applied (a later edit or deletion of the reward does not change it).
    Column("reward_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(32), nullable=False),  # percentage_discount | fixed_discount | invoice_credits
    Column("value", String(64), nullable=False),  # decimal string: a percentage or major units
    Column("plan_ids", JSON),  # the plans it discounts; null: every plan
    Column("currency", String(16), nullable=False),
    Column("duration_type", String(16), nullable=False),  # one_off | months | forever
    Column("duration_length", Integer),
    # Billing periods still discounted (null: forever); invoice credit still to spend (minor units).
    Column("periods_left", Integer),
    Column("credit_left", BigInteger),
    Column("total_discount", BigInteger, nullable=False),  # minor units taken off so far
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),  # set when it is used up or its subscription ends
    Index("ix_subscription_discounts_customer_pk", "customer_pk"),
    Index("ix_subscription_discounts_customer_plan_pk", "customer_plan_pk"),
)
"""Coupons applied to a subscription (``discounts`` of a billing change): created by migration
``0028_subscription_discounts`` (not part of :data:`BILLING_TABLES`)."""
