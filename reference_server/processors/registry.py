"""Which payment processor acts for a customer: the registered processors and the choice between them.

:data:`PROCESSORS` maps each processor's name (``AUTUMN_PAYMENT_PROCESSOR``) to its registration: how
the server-wide processor of that name is made and, where the processor has them, the routes that
ingest its events.  Adding a processor is one folder under ``processors/`` and one entry here.

:func:`processor_for` picks the processor of a customer: its organization's own Stripe account when it
saved one for the customer's environment (platform API ``POST /platform/organizations/stripe``; a
connected account is charged with the server's platform key), else the server-wide default (local
unless ``AUTUMN_PAYMENT_PROCESSOR=stripe``).  Callers then talk to that processor directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection
from starlette.routing import BaseRoute

from reference_server.clock import Clock
from reference_server.processors.compensation import ReverserFor
from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.stripe.accounts import StripeAccounts
from reference_server.processors.stripe.events import (
    CheckoutCompleted,
    CompleteCheckout,
    stripe_webhook_routes,
)
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.customer_lookup import customer_owner
from reference_server.store.db import Database


@dataclass(frozen=True)
class ProcessorSettings:
    """The processor part of the server's settings: ``create_app_from_settings`` makes it from
    ``ServerSettings``; :meth:`from_env` reads the same variables for an app built without it."""

    default: str = "local"
    """``AUTUMN_PAYMENT_PROCESSOR``: the name of the processor of organizations without their own."""
    stripe_secret_key: str | None = None
    """``STRIPE_SECRET_KEY``: the platform's Stripe key (also charges connected accounts)."""
    stripe_api_base: str | None = None
    """``STRIPE_API_BASE``: every Stripe client talks to this address instead (localstripe in tests)."""

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        name = os.environ.get("AUTUMN_PAYMENT_PROCESSOR", "local")
        return cls(
            default=name if name in PROCESSORS else "local",  # as before: anything unknown is local
            stripe_secret_key=os.environ.get("STRIPE_SECRET_KEY"),
            stripe_api_base=os.environ.get("STRIPE_API_BASE"),
        )


@dataclass(frozen=True)
class EventHooks:
    """What a processor's event routes do with an event: the billing hooks they call back."""

    db: Database
    clock: Clock
    complete_checkout: CompleteCheckout | None = None
    """Finishes what a checkout session an event paid was for."""
    on_change: Callable[[], None] | None = None
    """Runs after an event changed something (cache resets)."""
    checkout_completed: CheckoutCompleted | None = None
    """Applies a completed processor-hosted card setup to its server session."""
    reverser_for: ReverserFor | None = None
    """Gives back payments whose server invoice was lost."""


@dataclass(frozen=True)
class Registration:
    """One processor: how its server-wide instance is made and the routes ingesting its events."""

    create: Callable[[Processors], PaymentProcessor]
    event_routes: Callable[[EventHooks], list[BaseRoute]] | None = None


def _stripe_event_routes(hooks: EventHooks) -> list[BaseRoute]:
    return stripe_webhook_routes(
        hooks.db,
        hooks.clock,
        hooks.complete_checkout,
        hooks.on_change,
        checkout_completed=hooks.checkout_completed,
        reverser_for=hooks.reverser_for,
    )


PROCESSORS: dict[str, Registration] = {
    "local": Registration(create=lambda processors: LocalProcessor()),
    "stripe": Registration(
        create=lambda processors: processors.stripe.platform(), event_routes=_stripe_event_routes
    ),
}
"""Every processor the server knows, by name (``AUTUMN_PAYMENT_PROCESSOR``)."""


@dataclass
class Processors:
    """The server-wide default processor and the organizations' own Stripe accounts."""

    settings: ProcessorSettings = field(default_factory=ProcessorSettings.from_env)
    default: PaymentProcessor | None = None
    """The processor of organizations without their own (made from ``settings`` when not given)."""
    stripe: StripeAccounts = field(init=False)

    def __post_init__(self) -> None:
        self.stripe = StripeAccounts(self.settings.stripe_api_base, self.settings.stripe_secret_key)
        if self.default is None:
            self.default = PROCESSORS[self.settings.default].create(self)

    @property
    def server_default(self) -> PaymentProcessor:
        assert self.default is not None  # set by __post_init__
        return self.default

    def for_org(self, conn: Connection, org_pk: int, env: str) -> PaymentProcessor:
        """The processor of an organization's environment: its own Stripe account, else the default."""
        own = self.stripe.for_org(conn, org_pk, env)
        return own if own is not None else self.server_default

    def stripe_for_org(self, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
        """The Stripe account an organization's environment is charged through (its own, a connected
        one, or the server's); None when it is charged by another processor."""
        own = self.stripe.for_org(conn, org_pk, env)
        if own is not None or self.server_default.name != StripeProcessor.name:
            return own
        return self.stripe.platform()

    def event_routes(self, hooks: EventHooks) -> list[BaseRoute]:
        """The routes of every registered processor that has events."""
        return [
            route
            for registration in PROCESSORS.values()
            if registration.event_routes is not None
            for route in registration.event_routes(hooks)
        ]


def processors_from_env() -> Processors:
    """The processors as the environment configures them (see :class:`ProcessorSettings`): for an
    app state built without the server's settings."""
    return Processors(ProcessorSettings.from_env())


def _org_of(conn: Connection, customer_pk: int) -> tuple[int, str]:
    owner = customer_owner(conn, customer_pk)
    return owner.org_pk, owner.env


def processor_for(processors: Processors, conn: Connection, customer_pk: int) -> PaymentProcessor:
    """The processor that acts for the customer (see the module docs)."""
    return processors.for_org(conn, *_org_of(conn, customer_pk))


def stripe_processor_for(
    processors: Processors, conn: Connection, customer_pk: int
) -> StripeProcessor | None:
    """The customer's Stripe account when the customer is charged through Stripe, else None."""
    return processors.stripe_for_org(conn, *_org_of(conn, customer_pk))


__all__ = [
    "PROCESSORS",
    "EventHooks",
    "ProcessorSettings",
    "Processors",
    "Registration",
    "processor_for",
    "processors_from_env",
    "stripe_processor_for",
]
