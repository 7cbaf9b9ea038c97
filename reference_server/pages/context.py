"""What the pages are built with: the database, the clock, the processors and the core's hooks.

The hooks are what completing a page *does* to plans; the pages themselves only deal with cards,
charges and sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from reference_server.clock import Clock
from reference_server.processors.registry import Processors
from reference_server.store.billing_records import InvoiceRecord, PaymentMethodInfo, SessionRecord
from reference_server.store.db import Database


@dataclass(frozen=True)
class PortalSubscription:
    plan_id: str
    name: str
    status: str
    until: str | None
    cancelable: bool
    price: str | None = None

    @property
    def date_label(self) -> str:
        """What the date column says: never blank."""
        if self.until is None:
            return "No end date"
        verb = {
            "scheduled": "Starts",
            "canceling": "Ends",
            "trialing": "Trial ends",
            "past due": "Due since",
        }.get(self.status, "Renews")
        return f"{verb} {self.until}"


@dataclass
class BillingHooks:
    """What the core does when a page completes; every hook runs inside the page's transaction."""

    complete_checkout: Callable[[Connection, SessionRecord, InvoiceRecord | None, int], None] | None = None
    complete_setup: Callable[[Connection, SessionRecord, PaymentMethodInfo, int], None] | None = None
    cancel_subscription: Callable[[Connection, int, str, int], None] | None = None
    subscriptions: Callable[[Connection, int, int], list[PortalSubscription]] | None = None
    customer_now: Callable[[Connection, int], int] | None = None
    # A new card from the portal or a setup page: e.g. retry the invoices of past-due subscriptions.
    payment_method_saved: Callable[[Connection, int, PaymentMethodInfo, int], None] | None = None
    # The portal's undo of a cancel (the API's ``cancel_action: "uncancel"``): (conn, customer, plan, now).
    uncancel_subscription: Callable[[Connection, int, str, int], None] | None = None
    # Plan switching in the portal, through the API's own preview and attach: the preview body
    # (``billing.preview_attach``) of (customer pk, plan id), run in its own transaction ...
    preview_switch: Callable[[int, str], dict[str, Any]] | None = None
    # ... and the switch itself inside the page's transaction: a payment URL when the customer must
    # pay on a checkout page first, else None (switched, or scheduled for the end of the period).
    switch_plan: Callable[[Connection, int, str, int], str | None] | None = None


@dataclass
class PagesContext:
    db: Database
    clock: Clock
    processors: Processors
    """The processors: each page acts through its customer's
    (:func:`~reference_server.processors.registry.processor_for`)."""
    hooks: BillingHooks = field(default_factory=BillingHooks)


StripeCheckoutCompleted = Callable[[Connection, int, str, Mapping[str, Any], int], str]
"""Applies a verified ``checkout.session.completed`` (org pk, env, the session object, now)."""
