"""Stripe clients per organization: its own secret key, or the platform key on a connected account.

An organization that saved a Stripe secret key for an environment (platform API
``POST /platform/organizations/stripe``) is charged with that key; one that named only a connected
account is charged with the server's platform key on that account.  Clients hold connection pools, so
one is kept per (key, account) and reused.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.store.org_stripe import stripe_config


class StripeAccounts:
    """The Stripe processors of the organizations' own accounts, and the platform's."""

    def __init__(self, api_base: str | None = None, platform_key: str | None = None) -> None:
        self.api_base = api_base
        self.platform_key = platform_key
        self._clients: dict[tuple[str, str | None], StripeProcessor] = {}
        self._lock = threading.Lock()

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
        if not self.platform_key:  # autumn-server refuses this at start (reference_server.settings)
            raise ValueError("AUTUMN_PAYMENT_PROCESSOR=stripe needs STRIPE_SECRET_KEY")
        return self.client(self.platform_key)

    def for_org(self, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
        """The organization's own account in ``env``; None when it saved none (or named only a
        connected account and the server has no platform key)."""
        config = stripe_config(conn, org_pk, env)
        if config is not None and config.secret_key:
            return self.client(config.secret_key)
        if config is not None and config.account_id and self.platform_key:
            return self.client(self.platform_key, config.account_id)
        return None
