"""The card a payer types on the server's pages, its checks, and the test card numbers.

The hosted pages read a card into :class:`CardInput` and check it here; the local processor stores
it, and the Stripe processor's test-only ``add_card`` posts it to Stripe's test mode. The test numbers
are Stripe's own, and both processors honour them:

``4242 4242 4242 4242`` succeeds, ``4000 0000 0000 0002`` is declined, ``4000 0025 0000 3155`` needs
authentication when it is first used (then off-session charges succeed), ``4000 0027 6000 3184`` needs
authentication on every charge, ``4000 0000 0000 0341`` is saved but every charge on it is declined.
Any other Luhn-valid number succeeds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum


class CardBehavior(str, Enum):
    SUCCEED = "succeed"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    AUTHENTICATE_ONCE = "authenticate_once"
    AUTHENTICATE_ALWAYS = "authenticate_always"
    DECLINE_ON_CHARGE = "decline_on_charge"


SPECIAL_CARDS: dict[str, CardBehavior] = {
    "4000000000000002": CardBehavior.DECLINE,
    "4000000000009995": CardBehavior.INSUFFICIENT_FUNDS,
    "4000002500003155": CardBehavior.AUTHENTICATE_ONCE,
    "4000002760003184": CardBehavior.AUTHENTICATE_ALWAYS,
    "4000000000000341": CardBehavior.DECLINE_ON_CHARGE,
}

TEST_CARD_HINTS: tuple[tuple[str, str], ...] = (
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0002", "is declined"),
    ("4000 0025 0000 3155", "asks for authentication"),
)


class CardError(Exception):
    """A card the form or the issuer refuses; ``code`` follows Stripe's decline codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CardInput:
    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True)
class CheckedCard:
    number: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    behavior: CardBehavior


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


def parse_expiry(text: str) -> tuple[int, int]:
    """``MM/YY`` or ``MM/YYYY`` as (month, four-digit year)."""
    cleaned = text.replace(" ", "")
    if "/" not in cleaned:
        raise CardError("invalid_expiry", "Enter the expiry date as MM/YY.")
    month_text, year_text = cleaned.split("/", 1)
    if not (month_text.isdigit() and year_text.isdigit()):
        raise CardError("invalid_expiry", "Enter the expiry date as MM/YY.")
    month, year = int(month_text), int(year_text)
    if len(year_text) == 2:
        year += 2000
    return month, year


def check_card(card: CardInput, today: dt.date) -> CheckedCard:
    """Validate the form fields and say how the card behaves; raises :class:`CardError`."""
    number = "".join(ch for ch in card.number if ch.isdigit())
    if len(number) < 12 or len(number) > 19 or not luhn_valid(number):
        raise CardError("incorrect_number", "Your card number is incorrect.")
    if not 1 <= card.exp_month <= 12:
        raise CardError("invalid_expiry_month", "Your card's expiration month is invalid.")
    if (card.exp_year, card.exp_month) < (today.year, today.month):
        raise CardError("expired_card", "Your card has expired.")
    if not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
        raise CardError("incorrect_cvc", "Your card's security code is incorrect.")
    return CheckedCard(
        number=number,
        brand=brand_of(number),
        last4=number[-4:],
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        behavior=SPECIAL_CARDS.get(number, CardBehavior.SUCCEED),
    )


DECLINE_MESSAGES = {
    CardBehavior.DECLINE: ("card_declined", "Your card was declined."),
    CardBehavior.DECLINE_ON_CHARGE: ("card_declined", "Your card was declined."),
    CardBehavior.INSUFFICIENT_FUNDS: ("insufficient_funds", "Your card has insufficient funds."),
}
