"""``checkout_session_params``: the options of the page where a payer checks out.

Autumn passes this object into the creation of its Stripe Checkout Session (its own parameters winning:
``customer``, ``mode``, ``line_items``, ``success_url``, ``discounts``; the caller's ``metadata`` merged
under its own).  Here the payer checks out on this server's order summary (``/checkout/{id}``, or
``/setup/{id}``), and an organization charged through Stripe enters the card on a setup-mode Stripe
Checkout (:mod:`reference_server.processors.stripe.checkout`), so the keys served are those both can
honour, and those only Stripe Checkout can where the processor is Stripe:

``cancel_url``
    the summary page's "Cancel and return" link, and Stripe Checkout's back link;
``payment_method_types``
    ``["card"]``, which is what both take (any other type is refused: the server charges cards);
``billing_address_collection``
    ``auto`` (both; the server's own form collects no address, which is Stripe's ``auto`` for cards), or
    ``required`` on Stripe Checkout only;
``locale``, ``metadata``
    on Stripe Checkout only: the Stripe page's language, and metadata on the Stripe Checkout Session
    beside the server's own ``autumn_*`` keys (reserved) and over an attach's ``metadata``
    (:mod:`reference_server.billing.stripe_metadata`), all within Stripe's 50 keys.

Any other key is refused by :mod:`reference_server.api.unsupported_fields` before anything is written;
:func:`check_checkout_session_params` checks the values of these, and the ones the customer's processor
cannot honour, also before anything is written.  A value that asks for nothing (``null``, ``false``,
``[]``, ``{}``) passes, as everywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from reference_server.billing.processor_choice import processors_of
from reference_server.billing.stripe_metadata import CHECKOUT_ROOM, check_metadata
from reference_server.errors import ApiError, invalid
from reference_server.processors.stripe.metadata import RESERVED_PREFIX
from reference_server.service.context import Ctx

SERVED_KEYS = frozenset(
    {"cancel_url", "payment_method_types", "billing_address_collection", "locale", "metadata"}
)
"""The keys of ``checkout_session_params`` this server acts on (every other one is refused)."""

STRIPE_LOCALES = frozenset(
    [
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    ]
)
"""Stripe Checkout's ``locale`` values."""

_FIELD = "checkout_session_params"


def _asks(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {}


def _bad(key: str, why: str) -> ApiError:
    return invalid(f"{_FIELD}.{key}: {why}", "invalid_inputs")


def _stripe_only(key: str) -> ApiError:
    return ApiError(
        400,
        "unsupported_field",
        f"{_FIELD}.{key} is part of Autumn's API but the reference server acts on it only on Stripe "
        "Checkout (an organization charged through Stripe); this organization's payers check out on the "
        "server's own page, which cannot honour it: leave it out (see the README's list of unsupported "
        "fields)",
    )


def cancel_url_of(action: dict[str, Any]) -> str | None:
    """The ``checkout_session_params.cancel_url`` of the request a hosted session was made for."""
    params = (action.get("body") or {}).get(_FIELD)
    url = params.get("cancel_url") if isinstance(params, dict) else None
    return url if isinstance(url, str) and url else None


def _check_url(value: Any) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad("cancel_url", "must be an absolute http(s) URL")


def _check_payment_method_types(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _bad("payment_method_types", "must be a list of payment method types")
    others = sorted({t for t in value if t != "card"})
    if others:
        raise ApiError(
            400,
            "unsupported_field",
            f"{_FIELD}.payment_method_types {others} is part of Autumn's API but the reference server "
            'collects and charges cards only: send ["card"] or leave it out (see the README\'s list of '
            "unsupported fields)",
        )


def _check_metadata(value: Any) -> None:
    """Stripe's limits (:func:`~reference_server.billing.stripe_metadata.check_metadata`, beside the
    server's keys on the Checkout Session); a reserved key is refused here, not stripped."""
    for key in value if isinstance(value, dict) else ():
        if str(key).startswith(RESERVED_PREFIX):
            raise _bad("metadata", f"key {key!r}: keys starting with {RESERVED_PREFIX} are reserved")
    check_metadata(f"{_FIELD}.metadata", value, CHECKOUT_ROOM)


def check_checkout_session_params(ctx: Ctx, conn: Connection, params: Any) -> None:
    """Refuse (400) a served key's bad value, and a key the organization's processor cannot honour;
    ``params`` is the request model (its ``checkout_session_params``, if it has one)."""
    given = getattr(params, _FIELD, None)
    if not isinstance(given, dict):
        return
    asked = {key: value for key, value in given.items() if key in SERVED_KEYS and _asks(value)}
    if not asked:
        return
    stripe_checkout = (
        processors_of(ctx.state).for_org(conn, ctx.tenant.org_pk, ctx.tenant.env).has_own_card_page()
    )
    if "cancel_url" in asked:
        _check_url(asked["cancel_url"])
    if "payment_method_types" in asked:
        _check_payment_method_types(asked["payment_method_types"])
    collection = asked.get("billing_address_collection")
    if collection is not None:
        if collection not in ("auto", "required"):
            raise _bad("billing_address_collection", "must be auto or required")
        if collection == "required" and not stripe_checkout:
            raise _stripe_only("billing_address_collection")
    if "locale" in asked:
        if asked["locale"] not in STRIPE_LOCALES:
            raise _bad("locale", f"must be one of {', '.join(sorted(STRIPE_LOCALES))}")
        if not stripe_checkout:
            raise _stripe_only("locale")
    if "metadata" in asked:
        _check_metadata(asked["metadata"])
        if not stripe_checkout:
            raise _stripe_only("metadata")


__all__ = [
    "SERVED_KEYS",
    "STRIPE_LOCALES",
    "cancel_url_of",
    "check_checkout_session_params",
]
