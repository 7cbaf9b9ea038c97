"""Hosted billing pages a person uses in a browser: checkout, setup payment, customer portal, invoices.

The app mounts :func:`billing_page_routes`; what completing a page *does* to plans (activating the
attached plan, cancelling from the portal) comes in through billing's
:class:`~reference_server.billing.page_actions.PageActions`, so these pages only deal with cards, charges
and sessions.
"""

from reference_server.billing.page_actions import PageActions, PortalSubscription

from .context import PagesContext, StripeCheckoutCompleted
from .formatting import format_money
from .routes import billing_page_routes, stripe_checkout_completer

__all__ = [
    "PageActions",
    "PagesContext",
    "PortalSubscription",
    "StripeCheckoutCompleted",
    "billing_page_routes",
    "format_money",
    "stripe_checkout_completer",
]
