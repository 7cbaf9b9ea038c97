"""Stripe's registration (:class:`~reference_server.processors.registration.Registration`): its settings
(``STRIPE_SECRET_KEY``, ``STRIPE_API_BASE``), its instances (:class:`.accounts.StripeAccounts`: the
platform's account and each organization's own), its webhook routes (:mod:`.events`) and what a Stripe
error nothing caught answers (:func:`describe_failure`).

The Stripe account of an organization or a customer, for what only Stripe has, is
:mod:`reference_server.processors.stripe_accounts` (beside the registry, which lists this registration).
"""

from __future__ import annotations

import stripe
from starlette.routing import BaseRoute

from reference_server.errors import ApiError
from reference_server.processors.registration import EventHooks, Registration
from reference_server.processors.stripe.accounts import SETTINGS, StripeAccounts, default_problem
from reference_server.processors.stripe.events import stripe_webhook_routes
from reference_server.processors.stripe.processor import StripeProcessor


def _event_routes(hooks: EventHooks) -> list[BaseRoute]:
    return stripe_webhook_routes(
        hooks.db,
        hooks.clock,
        hooks.complete_checkout,
        hooks.on_change,
        checkout_completed=hooks.checkout_completed,
        reverser_for=hooks.reverser_for,
    )


def describe_failure(exc: Exception) -> ApiError | None:
    """A Stripe error nothing caught (Stripe unreachable, a customer deleted on Stripe, a 4xx the
    server did not expect) as Autumn's error middleware answers it: 400 ``stripe_error``,
    ``(Stripe Error) <Stripe's message>``; None for any other exception."""
    if not isinstance(exc, stripe.StripeError):
        return None
    message = exc.user_message or type(exc).__name__  # Stripe's own message, without "Request req_...: "
    return ApiError(400, "stripe_error", f"(Stripe Error) {message}")


STRIPE: Registration[StripeAccounts] = Registration(
    name=StripeProcessor.name,
    accounts=StripeAccounts.from_settings,
    settings=SETTINGS,
    default_problem=default_problem,
    event_routes=_event_routes,
    describe_failure=describe_failure,
)


__all__ = ["STRIPE", "describe_failure"]
