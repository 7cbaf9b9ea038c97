"""The card form the checkout, setup and portal pages share: its fields, its errors, what is shown again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reference_server.processors.cards import CardError, CardInput, parse_expiry

STRIPE_CARD_ENTRY = "Card details are entered on Stripe's page: use the Continue to Stripe button."
CARD_FIELDS = ("card_number", "expiry", "cvc")
EMPTY_FIELD = {
    "card_number": CardError("incomplete_number", "Enter your card number."),
    "expiry": CardError("incomplete_expiry", "Enter your card's expiry date (MM/YY)."),
    "cvc": CardError("incomplete_cvc", "Enter your card's security code."),
}
ERROR_FIELDS = {
    "incomplete_number": "card_number",
    "incorrect_number": "card_number",
    "card_declined": "card_number",
    "insufficient_funds": "card_number",
    "incomplete_expiry": "expiry",
    "invalid_expiry": "expiry",
    "invalid_expiry_month": "expiry",
    "invalid_expiry_year": "expiry",
    "expired_card": "expiry",
    "incomplete_cvc": "cvc",
    "incorrect_cvc": "cvc",
}


def typed_back(form: Mapping[str, Any] | None) -> dict[str, str]:
    """What the payer typed that the form shows again after an error: never the card number or code."""
    if not form:
        return {}
    return {key: str(form.get(key, ""))[:100] for key in ("name", "expiry")}


def card_from_form(form: Mapping[str, Any]) -> CardInput:
    """The typed card; :class:`CardError` for the first empty field, in the form's order."""
    for key in CARD_FIELDS:
        if not str(form.get(key, "")).strip():
            raise EMPTY_FIELD[key]
    month, year = parse_expiry(str(form.get("expiry", "")))
    return CardInput(str(form.get("card_number", "")), month, year, str(form.get("cvc", "")).strip())
