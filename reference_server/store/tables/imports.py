"""Tables of imported billing state (revision ``0015_billing_import``).

Their statements are in :mod:`reference_server.store.imported_billing` and
:mod:`reference_server.store.invoice_pages`.

``imported_invoices``: what ``invoices.insert`` records beyond the ``invoices`` row it upserts: the
processor that owns the invoice, the amount paid as given (``None`` when the caller did not know it)
and the refunded amount.  An invoice without such a row was made by this server: its processor type
is ``stripe`` (every processor here stands in for Stripe), its refunds are its refund charges.
``imported_plans``: plan instances ``billing.import`` created: the processor that bills them (they
get no ``subscription_billing`` row, so this server never renews or charges them), the processor
objects they were adopted from and the billing anchor.
``customer_processor_ids``: a customer's identity at a processor other than Stripe (RevenueCat's
``app_user_id``); Stripe's stays in ``customers.stripe_id``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
)

from reference_server.store.tables.core import (
    PK,
    metadata,
)

imported_invoices = Table(
    "imported_invoices",
    metadata,
    Column("invoice_pk", PK, ForeignKey("invoices.pk", ondelete="CASCADE"), primary_key=True),
    Column("processor_type", String(16), nullable=False),  # stripe | revenuecat
    Column("amount_paid", BigInteger),  # minor units; NULL: not known
    Column("refunded_amount", BigInteger, nullable=False),  # minor units
    Column("imported_at", BigInteger, nullable=False),
)

imported_plans = Table(
    "imported_plans",
    metadata,
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="CASCADE"), primary_key=True),
    Column("processor", String(16)),  # stripe | revenuecat | NULL (no processor: a free plan)
    Column("status", String(16), nullable=False),  # the imported status: active | trialing | past_due ...
    Column("processor_subscription_id", String(255)),
    Column("processor_schedule_id", String(255)),
    Column("billing_cycle_anchor", BigInteger),
    Column("imported_at", BigInteger, nullable=False),
)

customer_processor_ids = Table(
    "customer_processor_ids",
    metadata,
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("processor", String(16), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("customer_pk", "processor"),
    Index("ix_customer_processor_ids_processor", "processor", "external_id"),
)

IMPORT_TABLES: tuple[Table, ...] = (imported_invoices, imported_plans, customer_processor_ids)
"""Tables created by migration ``0015_billing_import``."""
