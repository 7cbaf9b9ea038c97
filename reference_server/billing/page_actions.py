"""What completing a hosted page does to plans: the actions billing gives the pages it is mounted with.

Billing defines and builds them (:func:`~reference_server.billing.wiring.wire_billing`); the pages, a
layer above, only call them, so they deal with cards, charges and sessions alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import PreviewAttachResponseJson
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.payment_methods import PaymentMethodInfo


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
class PageActions:
    """What billing does when a page completes; every action runs inside the page's transaction."""

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
    preview_switch: Callable[[int, str], PreviewAttachResponseJson] | None = None
    # ... and the switch itself inside the page's transaction: a payment URL when the customer must
    # pay on a checkout page first, else None (switched, or scheduled for the end of the period).
    switch_plan: Callable[[Connection, int, str, int], str | None] | None = None
    # A long-lived checkout link opened (``long_lived_checkout``): (conn, link, base URL, now) -> the URL
    # of the checkout to send the payer to (raises the attach's ApiError when it can no longer be made).
    open_checkout_link: Callable[[Connection, SessionRecord, str, int], str] | None = None


__all__ = ["PageActions", "PortalSubscription"]
