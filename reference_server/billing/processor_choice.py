"""Which payment processor acts for a customer or an organization (made once per app from the
server's settings by ``create_app``: each organization's own, else the server's default)."""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.registry import Processors, processors_from_env
from reference_server.processors.registry import processor_for as choose_processor
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.processors.stripe_accounts import stripe_for_org
from reference_server.service.context import AppState


def processors_of(state: AppState) -> Processors:
    """The server's payment processors (``create_app`` makes them from its settings; a state built
    without them gets them from the environment on first use)."""
    if state.processors is None:
        state.processors = processors_from_env()
    return state.processors


def processor_for(state: AppState, conn: Connection, customer_pk: int) -> PaymentProcessor:
    """The processor acting for the customer: its organization's own (its credentials with a
    registered processor), else the default (:func:`reference_server.processors.registry.processor_for`)."""
    return choose_processor(processors_of(state), conn, customer_pk)


def org_stripe_processor(state: AppState, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
    """The Stripe processor of the organization's environment (its own Stripe account, a connected
    one, or the server's): it gives back Stripe payments and cleans up after deleted customers; None
    when the organization is charged locally."""
    return stripe_for_org(processors_of(state), conn, org_pk, env)
