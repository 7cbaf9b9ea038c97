"""Stripe's instances per app: the platform's account and each organization's own.

An organization that saved a Stripe secret key for an environment (platform API
``POST /platform/organizations/stripe``) is charged with that key; one that named only a connected
account is charged with the server's platform key on that account.  Clients hold connection pools, so
one is kept per (key, account) and reused.

Stripe's settings are declared here too (:data:`SETTINGS`, read by :meth:`StripeAccounts.from_settings`):
the server's settings object reads them into its ``stripe`` block, the ``--stripe-*`` flags and the
README's rows come from them, and the registry hands the registration their values.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from sqlalchemy import Connection

from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.registration import ProcessorAccounts, Setting, http_url
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.org_stripe import stripe_config

SECRET_KEY, API_BASE = "STRIPE_SECRET_KEY", "STRIPE_API_BASE"
SETTINGS = (
    Setting(
        SECRET_KEY,
        "the platform's Stripe key (or `AUTUMN_STRIPE_SECRET_KEY`); needed with `stripe`",
        secret=True,
    ),
    Setting(
        API_BASE,
        "another Stripe API address (or `AUTUMN_STRIPE_API_BASE`; tests: localstripe)",
        check=http_url,
    ),
)
"""Stripe's settings: the platform's key (also charges connected accounts) and the address every Stripe
client talks to instead of Stripe's (localstripe in tests)."""


def default_problem(values: Mapping[str, str]) -> str | None:
    """Why Stripe cannot be the server-wide default with these settings (None when it can)."""
    if SECRET_KEY not in values:
        return (
            "AUTUMN_PAYMENT_PROCESSOR=stripe needs the platform's Stripe key: set STRIPE_SECRET_KEY "
            "(sk_test_... or sk_live_...), or use AUTUMN_PAYMENT_PROCESSOR=local"
        )
    return None


class StripeAccounts(ProcessorAccounts):
    """The Stripe processors of the organizations' own accounts, and the platform's."""

    def __init__(self, api_base: str | None = None, platform_key: str | None = None) -> None:
        self.api_base = api_base
        self.platform_key = platform_key
        self._clients: dict[tuple[str, str | None], StripeProcessor] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, values: Mapping[str, str]) -> StripeAccounts:
        """The accounts as Stripe's settings (:data:`VARIABLES`) configure them."""
        return cls(values.get(API_BASE), values.get(SECRET_KEY))

    def client(self, secret_key: str, account_id: str | None = None) -> StripeProcessor:
        """The processor acting with ``secret_key`` (on ``account_id``), one per pair."""
        with self._lock:
            processor = self._clients.get((secret_key, account_id))
            if processor is None:
                processor = StripeProcessor(secret_key, self.api_base, account_id)
                self._clients[(secret_key, account_id)] = processor
            return processor

    def platform(self) -> StripeProcessor:
        """The server's own Stripe account (``STRIPE_SECRET_KEY``)."""
        if not self.platform_key:  # autumn-server refuses this at start (default_problem)
            raise ValueError("AUTUMN_PAYMENT_PROCESSOR=stripe needs STRIPE_SECRET_KEY")
        return self.client(self.platform_key)

    def server_wide(self) -> StripeProcessor:
        return self.platform()

    def for_org(self, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
        """The organization's own account in ``env``; None when it saved none (or named only a
        connected account and the server has no platform key)."""
        config = stripe_config(conn, org_pk, env)
        if config is not None and config.secret_key:
            return self.client(config.secret_key)
        if config is not None and config.account_id and self.platform_key:
            return self.client(self.platform_key, config.account_id)
        return None

    def charging(
        self, conn: Connection, org_pk: int, env: str, server_default: PaymentProcessor
    ) -> StripeProcessor | None:
        """The Stripe account an organization's environment is charged through: its own (or a
        connected one), else the platform's when Stripe is the server-wide default
        (``server_default``); None when it is charged by another processor.  For what only Stripe
        has (its subscriptions, its catalogue, giving back its payments)."""
        own = self.for_org(conn, org_pk, env)
        if own is not None or server_default.name != StripeProcessor.name:
            return own
        return self.platform()


__all__ = ["API_BASE", "SECRET_KEY", "SETTINGS", "StripeAccounts", "default_problem"]
