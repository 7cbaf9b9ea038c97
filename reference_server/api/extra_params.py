"""Request models of the operations this server serves beyond the 2026-05-20 spec.

The spec's operations are validated with the generated models; these few (test clocks, the reward
and referral-program definitions, ``invoices.finalize``) had none, so a wrong type reached the
service and the database (a number as an id gave a 500).  The router validates them like the rest:
the same 400 ``invalid_inputs`` messages, the same limits from :mod:`request_guard` on the raw body.
When the current API's generated models cover ``rewards.create`` and ``referral_programs.create``,
those replace the two here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Number = int | float
"""A JSON number that stays an integer when sent as one (``10``, not ``10.0``, is echoed back)."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AdvanceClockParams(_Params):
    """``test_clocks.advance`` and ``customers.advance_test_clock``: a target moment or a step."""

    customer_id: str | None = None
    advance_to: int | None = None
    advance_by_ms: int | None = None
    days: Number | None = None
    hours: Number | None = None


class RewardGrant(_Params):
    feature_id: str
    quantity: Number


class PromoCode(_Params):
    code: str
    max_redemptions: int | None = None


class RewardParams(_Params):
    """``rewards.create``: a feature grant, free add-on or discount, with optional promo codes."""

    id: str
    type: Literal["percentage_discount", "fixed_discount", "free_product", "invoice_credits", "feature_grant"]
    name: str | None = None
    discount_value: Number | None = None
    grants: list[RewardGrant] | None = None
    free_plan_id: str | None = None
    promo_codes: list[PromoCode] | None = None


class ReferralProgramParams(_Params):
    """``referral_programs.create``: which reward a redeemed referral code gives, and to whom."""

    id: str
    reward_id: str
    trigger: Literal["customer_creation", "checkout"] | None = None
    received_by: Literal["referrer", "all"] | None = None
    max_redemptions: int | None = None
    plan_ids: list[str] | None = None


class FinalizeInvoiceParams(_Params):
    """``invoices.finalize``: an invoice-mode draft by its id."""

    invoice_id: str
