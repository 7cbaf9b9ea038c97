"""Whether an attach sends the customer to a checkout page instead of charging at once (§5.2.5)."""

from __future__ import annotations

from typing import Literal

from .attach_quotes import AttachQuote
from .model import Plan
from .transitions import ChangeKind


def needs_checkout(
    plan: Plan,
    quote: AttachQuote,
    has_payment_method: bool,
    redirect_mode: str = "if_required",
    trial_card_required: bool = True,
    starts_in_future: bool = False,
    invoice_mode: bool = False,
) -> bool:
    """``never``/invoice mode/future starts never redirect; ``always`` does; else only when a card is missing.

    Without a card: one-off purchases and paid plans redirect, except a trial that needs no card, a
    downgrade (nothing is charged now) and a change that costs nothing now.
    """
    if redirect_mode == "never" or invoice_mode or starts_in_future:
        return False
    if redirect_mode == "always":
        return True
    if plan.is_free or has_payment_method or quote.kind is ChangeKind.DOWNGRADE:
        return False
    if plan.is_one_off:
        return True
    if quote.trial_ends_at is not None:
        return trial_card_required
    return quote.due_now.total > 0 or quote.kind is ChangeKind.NEW


CheckoutType = Literal["stripe_checkout", "autumn_checkout"]
"""The checkout page a preview says the change goes through (``checkout_type``)."""


def checkout_type(quote: AttachQuote, redirect: bool, has_payment_method: bool) -> CheckoutType | None:
    """``stripe_checkout`` when a card must be collected, ``autumn_checkout`` for a confirm-only page."""
    if not redirect:
        return None
    return "autumn_checkout" if has_payment_method else "stripe_checkout"
