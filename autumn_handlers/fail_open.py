"""The empty objects the hooks receive when Autumn is down on a fail-open route.

autumn-js answers ``getOrCreateCustomer`` and ``getEntity`` with a 200 and these objects when the
upstream status is 5xx or the network failed, so a pricing page keeps rendering (``id`` is null, so
the app can still tell that nothing real came back). They are written in the API's snake_case and go
through the response model like any real answer.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["empty_customer", "empty_entity", "fail_open_enabled"]

_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def fail_open_enabled(explicit: bool | None) -> bool:
    """The handler's setting, else env ``AUTUMN_FAIL_OPEN`` (default on, as in autumn-js)."""
    if explicit is not None:
        return explicit
    return os.environ.get("AUTUMN_FAIL_OPEN", "true").strip().lower() not in _FALSE_WORDS


def empty_customer() -> dict[str, Any]:
    return {
        "id": None,
        "name": None,
        "email": None,
        "created_at": 0,
        "fingerprint": None,
        "stripe_id": None,
        "env": "live",
        "metadata": {},
        "send_email_receipts": False,
        "billing_controls": {},
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
    }


def empty_entity() -> dict[str, Any]:
    return {
        "id": None,
        "name": None,
        "customer_id": None,
        "feature_id": None,
        "created_at": 0,
        "env": "live",
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
    }
