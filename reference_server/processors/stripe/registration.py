"""Stripe's registration (:class:`~reference_server.processors.registration.Registration`): its settings
(``STRIPE_SECRET_KEY``, ``STRIPE_API_BASE``), its instances (:class:`.accounts.StripeAccounts`: the
platform's account and each organization's own) and its webhook routes (:mod:`.events`).

Also the Stripe account of an organization or a customer, for what only Stripe has (the mirrored
subscriptions, the catalogue's Products and Prices, imported subscriptions, giving back its payments):
:func:`stripe_for_org`, :func:`stripe_processor_for`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection
from starlette.routing import BaseRoute

from reference_server.processors.registration import EventHooks, Registration
from reference_server.processors.stripe.accounts import VARIABLES, StripeAccounts, default_problem
from reference_server.processors.stripe.events import stripe_webhook_routes
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.customer_lookup import customer_owner

if TYPE_CHECKING:  # the registry lists this registration
    from reference_server.processors.registry import Processors


def _event_routes(hooks: EventHooks) -> list[BaseRoute]:
    return stripe_webhook_routes(
        hooks.db,
        hooks.clock,
        hooks.complete_checkout,
        hooks.on_change,
        checkout_completed=hooks.checkout_completed,
        reverser_for=hooks.reverser_for,
    )


STRIPE: Registration[StripeAccounts] = Registration(
    name=StripeProcessor.name,
    accounts=StripeAccounts.from_settings,
    variables=VARIABLES,
    default_problem=default_problem,
    event_routes=_event_routes,
)


def stripe_for_org(processors: Processors, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
    """The Stripe account an organization's environment is charged through (its own, a connected one,
    or the platform's; :meth:`.accounts.StripeAccounts.charging`); None when another processor charges it."""
    return processors.accounts_of(STRIPE).charging(conn, org_pk, env, processors.server_default)


def stripe_processor_for(
    processors: Processors, conn: Connection, customer_pk: int
) -> StripeProcessor | None:
    """The customer's Stripe account when the customer is charged through Stripe, else None."""
    owner = customer_owner(conn, customer_pk)
    return stripe_for_org(processors, conn, owner.org_pk, owner.env)


__all__ = ["STRIPE", "stripe_for_org", "stripe_processor_for"]
