"""The Stripe account of an organization or a customer, for what only Stripe has (the mirrored
subscriptions, the catalogue's Products and Prices, imported subscriptions, giving back its payments).

It sits beside :mod:`.registry` rather than in ``stripe/``: it reads the app's instances
(:class:`.registry.Processors`), and the registry lists Stripe's registration.
"""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.processors.registry import Processors
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.processors.stripe.registration import STRIPE
from reference_server.store.customer_lookup import customer_owner


def stripe_for_org(processors: Processors, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
    """The Stripe account an organization's environment is charged through (its own, a connected one,
    or the platform's; :meth:`.stripe.accounts.StripeAccounts.charging`); None when another processor
    charges it."""
    return processors.accounts_of(STRIPE).charging(conn, org_pk, env, processors.server_default)


def stripe_processor_for(
    processors: Processors, conn: Connection, customer_pk: int
) -> StripeProcessor | None:
    """The customer's Stripe account when the customer is charged through Stripe, else None."""
    owner = customer_owner(conn, customer_pk)
    return stripe_for_org(processors, conn, owner.org_pk, owner.env)


__all__ = ["stripe_for_org", "stripe_processor_for"]
