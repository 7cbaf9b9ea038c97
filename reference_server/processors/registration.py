"""What registers a payment processor: its settings, its instances and its event routes.

A processor's folder under ``processors/`` defines one :class:`Registration` (``local/registration.py``,
``stripe/registration.py``) and :data:`~reference_server.processors.registry.PROCESSORS` lists it.  A
registration gives:

- its settings (:attr:`Registration.settings`, one :class:`Setting` each: its environment variable,
  what it is, whether it is secret, how a value is checked).  The server's settings object reads them
  into its block of this processor (``ServerSettings.processors[name]``), each is an ``autumn-server``
  flag and a row of the README's settings table (a test compares them), so a new processor touches
  none of ``settings.py``; and what they must hold for the processor to be the server-wide default
  (:attr:`Registration.default_problem`, checked at start);
- its instances (:class:`ProcessorAccounts`, made once per app from those settings): the server-wide
  one and, through the per-organization credentials hook :meth:`ProcessorAccounts.for_org`, an
  organization's own.  An instance of a processor is one set of credentials (Stripe: one secret key,
  perhaps on a connected account), so the credentials belong here rather than on
  :class:`~reference_server.processors.contract.PaymentProcessor`;
- the routes that ingest its events, if it sends any (:attr:`Registration.event_routes`), given the
  billing hooks they call back (:class:`EventHooks`);
- what one of its own exceptions that nothing caught means to the API's caller
  (:attr:`Registration.describe_failure`: Stripe's are Autumn's 400 ``stripe_error``), asked by the
  dispatcher's catch-all, the dashboard and the hosted pages through
  :func:`~reference_server.processors.registry.describe_failure`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from starlette.routing import BaseRoute

from reference_server.clock import Clock
from reference_server.errors import ApiError
from reference_server.processors.compensation import ReverserFor
from reference_server.processors.contract import PaymentProcessor
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.db import Database
from reference_server.store.invoices import InvoiceRecord

CompleteCheckout = Callable[[Connection, SessionRecord, InvoiceRecord | None, int], None]
"""The billing hook that finishes what a checkout session was for (e.g. starts an attached plan)."""

CheckoutCompleted = Callable[[Connection, int, str, dict[str, Any], int], str]
"""Applies a card setup completed on the processor's own page (org pk, env, the processor's session
object, now; Stripe: ``checkout.session.completed``): the card it saved continues its hosted session
(see :mod:`reference_server.pages.stripe_checkout`)."""


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


class ProcessorAccounts(ABC):
    """The instances of one registered processor in an app: the server's own, each organization's own."""

    @abstractmethod
    def server_wide(self) -> PaymentProcessor:
        """The instance acting for organizations without their own when this processor is the server's
        default (``AUTUMN_PAYMENT_PROCESSOR``); asked only then, so it may refuse missing settings."""

    def for_org(self, conn: Connection, org_pk: int, env: str) -> PaymentProcessor | None:
        """The organization's own instance of this processor in ``env`` (made from credentials it
        saved); None when it has none, as always for a processor without per-organization credentials."""
        return None


class SingleAccount(ProcessorAccounts):
    """A processor with one instance and no per-organization credentials (the local processor)."""

    def __init__(self, processor: PaymentProcessor) -> None:
        self.processor = processor

    def server_wide(self) -> PaymentProcessor:
        return self.processor


A = TypeVar("A", bound=ProcessorAccounts)


def stripped(value: str) -> str:
    """A setting's value as given, without surrounding blanks."""
    return value.strip()


def http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (without a trailing ``/``); ValueError otherwise."""
    value = value.strip().rstrip("/")
    try:
        url = make_url(value) if "://" in value else None
    except ArgumentError:
        url = None
    if url is None or url.drivername not in ("http", "https") or not url.host:
        raise ValueError("use an http:// or https:// URL, such as https://billing.example.com")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting of a processor, declared by its registration: the server's settings object, the
    ``autumn-server`` flags and the README's settings table all come from these."""

    variable: str
    """Its environment variable, the name the processor reads it by (``STRIPE_SECRET_KEY``); the same
    name with ``AUTUMN_`` before it is read too, and wins."""
    description: str
    """What it is: the flag's help and the README row's last column."""
    secret: bool = False
    """Never shown back (in a start-up error, in the settings' repr)."""
    check: Callable[[str], str] = stripped
    """The value to use for a given one (ValueError, with what to do, for one that cannot work)."""

    @property
    def name(self) -> str:
        """Its name as a flag's (``stripe_secret_key`` for ``--stripe-secret-key``)."""
        return self.variable.lower().removeprefix("autumn_")

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables it is read from, the first one set wins."""
        if self.variable.startswith("AUTUMN_"):
            return (self.variable,)
        return (f"AUTUMN_{self.variable}", self.variable)

    def lookup(self, environ: Mapping[str, str | None], case_sensitive: bool = True) -> str | None:
        """Its value in ``environ`` (None when none of :attr:`variables` is set); ``case_sensitive``
        False for an environment whose names were lowered."""
        for variable in self.variables:
            value = environ.get(variable if case_sensitive else variable.lower())
            if value is not None:
                return value
        return None


def no_problem(values: Mapping[str, str]) -> str | None:
    """A processor that needs no settings can always be the server-wide default."""
    return None


def no_failure(exc: Exception) -> ApiError | None:
    """A processor whose exceptions are all bugs: none of them is the caller's error."""
    return None


@dataclass(frozen=True)
class Registration(Generic[A]):
    """One processor: its name, its settings, how its instances are made, its event routes."""

    name: str
    """Its name (``AUTUMN_PAYMENT_PROCESSOR``; :attr:`PaymentProcessor.name` of its instances)."""
    accounts: Callable[[Mapping[str, str]], A]
    """Makes its instances, once per app, from its settings (the values of those of :attr:`settings`
    that are set, by variable)."""
    settings: tuple[Setting, ...] = ()
    """Its settings (the server's settings object reads them into its block of this processor)."""
    default_problem: Callable[[Mapping[str, str]], str | None] = no_problem
    """Why it cannot be the server-wide default with these settings; None when it can."""
    event_routes: Callable[[EventHooks], list[BaseRoute]] | None = None
    """The routes ingesting its events, if it sends any."""
    describe_failure: Callable[[Exception], ApiError | None] = no_failure
    """The Autumn error answering one of its own exceptions that nothing caught (the processor down,
    refusing a call); None for an exception that is not its own.  The request that raised it is still
    rolled back as for any unexpected exception; only its answer changes."""

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables of its settings (:attr:`Setting.variable`)."""
        return tuple(setting.variable for setting in self.settings)

    def read(self, environ: Mapping[str, str | None], case_sensitive: bool = True) -> dict[str, str]:
        """Its settings that ``environ`` sets, by variable, as given (unchecked)."""
        values = {setting.variable: setting.lookup(environ, case_sensitive) for setting in self.settings}
        return {variable: value for variable, value in values.items() if value is not None}


__all__ = [
    "CheckoutCompleted",
    "CompleteCheckout",
    "EventHooks",
    "ProcessorAccounts",
    "Registration",
    "Setting",
    "SingleAccount",
    "http_url",
    "no_failure",
    "no_problem",
    "stripped",
]
