"""Metadata on the Stripe objects the server makes: Stripe's limits, the server's own keys, and the
caller's keys merged under them.

The server names what each object is for with keys starting ``autumn_`` (:data:`RESERVED_PREFIX`): a
Subscription its plan instance, an Invoice the server invoice, a Checkout Session the server session it
completes.  A caller's keys (``billing.attach``'s ``metadata``, ``checkout_session_params.metadata``) go
beside them, and the server's win: a caller's ``autumn_*`` key is never written
(:func:`caller_metadata` drops it, as Autumn strips them).  Stripe takes at most
:data:`STRIPE_MAX_KEYS` keys on an object, so what a caller may add is what the server's own keys leave
(:func:`room_for`); the request is checked against it before anything is written
(:mod:`reference_server.billing.stripe_metadata`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STRIPE_MAX_KEYS, STRIPE_MAX_KEY_LENGTH, STRIPE_MAX_VALUE_LENGTH = 50, 40, 500
"""Stripe's limits on an object's metadata (docs.stripe.com/api/metadata): keys, a key's characters, a
value's characters."""

RESERVED_PREFIX = "autumn_"
"""The server's own keys start with this; a caller's never do."""

SERVER_KEYS: dict[str, tuple[str, ...]] = {
    # the mirrored Subscription (subscription_state.desired_mirror)
    "subscription": (
        "autumn_customer_id",
        "autumn_plan_id",
        "autumn_plan_version",
        "autumn_instance_id",
        "autumn_env",
        "autumn_entity_id",
    ),
    # an Invoice (invoices.StripeInvoices.create; refunds marks a reversal)
    "invoice": ("autumn_invoice_id", "autumn_customer_id", "autumn_reversal"),
    # a setup-mode Checkout Session (checkout.create_setup_checkout)
    "checkout_session": ("autumn_session_id", "autumn_session_kind", "autumn_customer_id"),
}
"""Every key the server may set on each kind of Stripe object."""


def room_for(*kinds: str) -> int:
    """How many keys of a caller's fit on every object of ``kinds`` beside the server's own."""
    return STRIPE_MAX_KEYS - max(len(SERVER_KEYS[kind]) for kind in kinds)


def metadata_value(value: Any) -> str:
    """A metadata value as Stripe stores it: a string (``true``/``false`` for a boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def caller_metadata(given: Any) -> dict[str, str]:
    """A caller's metadata as the server writes it: string values, without the server's reserved keys
    (nothing for anything but an object)."""
    if not isinstance(given, Mapping):
        return {}
    return {
        str(key): metadata_value(value)
        for key, value in given.items()
        if not str(key).startswith(RESERVED_PREFIX) and value is not None
    }


def with_server_keys(caller: Mapping[str, str] | None, server: Mapping[str, str]) -> dict[str, str]:
    """An object's metadata: the caller's keys (already :func:`caller_metadata`), the server's winning."""
    return {**(caller or {}), **server}


__all__ = [
    "RESERVED_PREFIX",
    "SERVER_KEYS",
    "STRIPE_MAX_KEYS",
    "STRIPE_MAX_KEY_LENGTH",
    "STRIPE_MAX_VALUE_LENGTH",
    "caller_metadata",
    "metadata_value",
    "room_for",
    "with_server_keys",
]
