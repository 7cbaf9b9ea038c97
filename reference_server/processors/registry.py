"""Which payment processor acts for a customer: the registered processors and the choice between them.

:data:`PROCESSORS` lists each processor's :class:`~reference_server.processors.registration.Registration`
by name (``AUTUMN_PAYMENT_PROCESSOR``): the settings it reads, how its instances are made (the
server-wide one and, where the processor has per-organization credentials, each organization's own)
and the routes that ingest its events.  Each processor's folder defines its registration
(``local/registration.py``, ``stripe/registration.py``); adding a processor is one folder under
``processors/`` and one entry here.

:func:`processor_for` picks the processor of a customer: the instance of its organization's own that a
registered processor has for the customer's environment (Stripe's: a key or a connected account saved
with ``POST /platform/organizations/stripe``, :mod:`~reference_server.processors.stripe.accounts`), else
the server-wide default (local unless ``AUTUMN_PAYMENT_PROCESSOR`` names another).  Callers then talk to
that processor directly.

:func:`describe_failure` turns a registered processor's own exception that nothing caught into the
Autumn error it answers (each registration's ``describe_failure``): the dispatcher's catch-all, the
dashboard and the hosted pages ask it without knowing which processor raised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Connection
from starlette.routing import BaseRoute

from reference_server.errors import ApiError
from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.local.registration import LOCAL
from reference_server.processors.registration import EventHooks, ProcessorAccounts, Registration
from reference_server.processors.stripe.registration import STRIPE
from reference_server.store.customer_lookup import customer_owner

A = TypeVar("A", bound=ProcessorAccounts)

PROCESSORS: dict[str, Registration[Any]] = {
    registration.name: registration for registration in (LOCAL, STRIPE)
}
"""Every processor the server knows, by name (``AUTUMN_PAYMENT_PROCESSOR``)."""


def processor_variables() -> tuple[str, ...]:
    """The environment variables of every registered processor's settings."""
    return tuple(name for registration in PROCESSORS.values() for name in registration.variables)


@dataclass(frozen=True)
class ProcessorSettings:
    """The processor part of the server's settings: ``ServerSettings.processor_settings`` makes it;
    :meth:`from_env` reads the same variables (as given, unchecked) for an app built without it."""

    default: str = "local"
    """``AUTUMN_PAYMENT_PROCESSOR``: the name of the processor of organizations without their own."""
    values: Mapping[str, str] = field(default_factory=dict)
    """The registered processors' own settings by variable (their registrations'
    ``settings``, such as ``STRIPE_SECRET_KEY``); each registration is given its own."""

    def of(self, registration: Registration[Any]) -> dict[str, str]:
        """The values of ``registration``'s own settings, by variable."""
        return {name: self.values[name] for name in registration.variables if name in self.values}

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        name = os.environ.get("AUTUMN_PAYMENT_PROCESSOR", "local")
        return cls(
            default=name if name in PROCESSORS else "local",  # as before: anything unknown is local
            values={
                variable: value
                for registration in PROCESSORS.values()
                for variable, value in registration.read(os.environ).items()
            },
        )


@dataclass
class Processors:
    """Every registered processor's instances in one app, and the server-wide default processor."""

    settings: ProcessorSettings = field(default_factory=ProcessorSettings.from_env)
    default: PaymentProcessor | None = None
    """The processor of organizations without their own (made from ``settings`` when not given)."""
    accounts: dict[str, ProcessorAccounts] = field(init=False)
    """Each registered processor's instances, by name."""

    def __post_init__(self) -> None:
        self.accounts = {
            name: registration.accounts(self.settings.of(registration))
            for name, registration in PROCESSORS.items()
        }
        if self.default is None:
            self.default = self.accounts[self.settings.default].server_wide()

    @property
    def server_default(self) -> PaymentProcessor:
        assert self.default is not None  # set by __post_init__
        return self.default

    def accounts_of(self, registration: Registration[A]) -> A:
        """The instances ``registration`` made for this app, as its own type."""
        return cast(A, self.accounts[registration.name])  # made by registration.accounts, see above

    def for_org(self, conn: Connection, org_pk: int, env: str) -> PaymentProcessor:
        """The processor of an organization's environment: a registered processor's instance of its own
        (its credentials), else the server-wide default."""
        for accounts in self.accounts.values():
            own = accounts.for_org(conn, org_pk, env)
            if own is not None:
                return own
        return self.server_default

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


def processor_for(processors: Processors, conn: Connection, customer_pk: int) -> PaymentProcessor:
    """The processor that acts for the customer (see the module docs)."""
    owner = customer_owner(conn, customer_pk)
    return processors.for_org(conn, owner.org_pk, owner.env)


def describe_failure(exc: Exception) -> ApiError | None:
    """The Autumn error answering ``exc`` when it is a registered processor's own failure (Stripe's:
    400 ``stripe_error``); None for any other exception (a bug: 500 ``internal_error``)."""
    for registration in PROCESSORS.values():
        described = registration.describe_failure(exc)
        if described is not None:
            return described
    return None


__all__ = [
    "PROCESSORS",
    "ProcessorSettings",
    "Processors",
    "describe_failure",
    "processor_for",
    "processor_variables",
    "processors_from_env",
]
