"""Who is calling: the result of the app's ``identify`` function, normalised.

autumn-js lets ``identify`` return ``{customerId, customerData}`` or ``null``; Python apps may
return an :class:`Identity`, a mapping in either casing, or ``None``. Everything funnels through
:func:`normalize_identity` so the pipeline sees one shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["CUSTOMER_DATA_FIELDS", "Identify", "IdentifyResult", "Identity", "normalize_identity"]


CUSTOMER_DATA_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "email",
        "fingerprint",
        "metadata",
        "stripe_id",
        "create_in_stripe",
        "auto_enable_plan_id",
        "send_email_receipts",
        "billing_controls",
        "config",
    }
)
"""``customers.get_or_create`` fields an app may fill from its own user record (snake_case)."""


@dataclass(frozen=True)
class Identity:
    """The customer behind a request, as the app's ``identify`` function decided.

    ``customer_data`` is only used when the customer is created (``getOrCreateCustomer``); its keys
    may be snake_case (``stripe_id``) or camelCase (``stripeId``), like any SDK argument.
    """

    customer_id: str | None
    customer_data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_known(self) -> bool:
        """autumn-js treats an empty id like a missing one."""
        return bool(self.customer_id)


IdentifyResult = Identity | Mapping[str, Any] | None
"""What ``identify`` may return."""

RequestT = TypeVar("RequestT", contravariant=True)

Identify = Callable[[RequestT], IdentifyResult | Awaitable[IdentifyResult]]
"""``identify(request)``: sync or async, receiving the framework's own request object."""


def _pick(mapping: Mapping[str, Any], snake: str, camel: str) -> Any:
    if snake in mapping:
        return mapping[snake]
    return mapping.get(camel)


def normalize_identity(result: object) -> Identity:
    """Turn whatever ``identify`` returned into an :class:`Identity` (a ``None`` id when unknown).

    Raises ``TypeError`` for anything else, which the pipeline reports as an ``internal_error``,
    as autumn-js does when ``identify`` throws.
    """
    if result is None:
        return Identity(customer_id=None)
    if isinstance(result, Identity):
        return result
    if isinstance(result, Mapping):
        customer_id = _pick(result, "customer_id", "customerId")
        if customer_id is not None and not isinstance(customer_id, str):
            raise TypeError(f"identify returned a non-string customer id: {customer_id!r}")
        data = _pick(result, "customer_data", "customerData") or {}
        if not isinstance(data, Mapping):
            raise TypeError(f"identify returned customer data that is not a mapping: {data!r}")
        return Identity(customer_id=customer_id, customer_data=data)
    raise TypeError(f"identify must return an Identity, a mapping or None, not {type(result).__name__}")
