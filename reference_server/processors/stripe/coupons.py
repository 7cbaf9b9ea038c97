"""Stripe coupons and promotion codes as the discounts of a billing change.

A billing change's ``discounts`` that name no Autumn reward may name a coupon of the organization's
Stripe account (``reward_id``: the coupon's id, ``GET /v1/coupons/{id}``) or one of its promotion codes
(``promotion_code``: ``GET /v1/promotion_codes?code=``, the active one when several share the code),
as Autumn resolves them.  The coupon becomes the terms the engine applies to an Autumn reward's
coupon (the server still writes the discount as a negative line of its own invoice; Stripe sees the
discounted items, never the coupon):

- ``percent_off`` is a percentage, ``amount_off`` a fixed amount in its ``currency``;
- ``duration`` ``once`` / ``repeating`` (``duration_in_months``) / ``forever`` is ``one_off`` / ``months``
  / ``forever``;
- ``applies_to.products`` become the plans whose Products the server created in that account
  (:mod:`.catalog`); Products it does not know leave the coupon applying to nothing they stand for, as
  Autumn applies a coupon only to the line items of its Products.

A coupon Stripe no longer calls ``valid``, past its ``redeem_by`` or at its ``max_redemptions``, and a
promotion code that is not ``active``, past its ``expires_at`` or at its ``max_redemptions``, is found
but refused (:attr:`~reference_server.processors.contract.ProcessorCoupon.problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import stripe

from reference_server.engine.billing.discounts import CouponKind
from reference_server.engine.billing.money import minor_to_major
from reference_server.processors.contract import ProcessorCoupon

_DURATIONS = {"once": "one_off", "repeating": "months", "forever": "forever"}


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


def _used_up(obj: Mapping[str, Any]) -> bool:
    limit = obj.get("max_redemptions")
    return limit is not None and int(obj.get("times_redeemed") or 0) >= int(limit)


def _coupon_problem(coupon: Mapping[str, Any], now_s: int) -> str | None:
    name = coupon["id"]
    redeem_by = coupon.get("redeem_by")
    if redeem_by is not None and int(redeem_by) <= now_s:
        return f'Coupon "{name}" expired'
    if _used_up(coupon):
        return f'Coupon "{name}" has reached its maximum number of redemptions'
    if coupon.get("valid") is False:
        return f'Coupon "{name}" is no longer valid'
    return None


def _promotion_problem(promo: Mapping[str, Any], now_s: int) -> str | None:
    code = promo.get("code")
    if promo.get("active") is False:
        return f'Promotion code not found or inactive: "{code}"'
    expires_at = promo.get("expires_at")
    if expires_at is not None and int(expires_at) <= now_s:
        return f'Promotion code "{code}" expired'
    if _used_up(promo):
        return f'Promotion code "{code}" has reached its maximum number of redemptions'
    return None


def coupon_terms(
    coupon: Mapping[str, Any],
    plan_of_product: Mapping[str, str],
    now: int,
    promotion: Mapping[str, Any] | None = None,
) -> ProcessorCoupon:
    """A Stripe coupon (and the promotion code that named it) in the engine's terms; ``plan_of_product``:
    the plan id of each Product the server created; ``now`` in epoch ms."""
    now_s = now // 1000
    if coupon.get("percent_off") is not None:
        kind, currency = CouponKind.PERCENTAGE, None
        value = Decimal(str(coupon["percent_off"]))
        if value == value.to_integral_value():  # Stripe's 25.0 is the reward's 25
            value = value.quantize(Decimal(1))
    else:
        kind, currency = CouponKind.FIXED, str(coupon.get("currency") or "usd").lower()
        value = minor_to_major(int(coupon.get("amount_off") or 0), currency)
    duration = _DURATIONS.get(str(coupon.get("duration") or "once"), "one_off")
    products = list((coupon.get("applies_to") or {}).get("products") or [])
    plan_ids = (
        tuple(sorted({plan_of_product[p] for p in products if p in plan_of_product})) if products else None
    )
    problem = _promotion_problem(promotion, now_s) if promotion is not None else None
    return ProcessorCoupon(
        id=str(coupon["id"]),
        name=str(coupon.get("name") or coupon["id"]),
        kind=kind,
        value=value,
        currency=currency,
        plan_ids=plan_ids,
        duration_type=duration,
        duration_length=int(coupon.get("duration_in_months") or 1) if duration == "months" else None,
        problem=problem or _coupon_problem(coupon, now_s),
    )


def _missing(exc: stripe.InvalidRequestError) -> bool:
    return exc.http_status == 404 or exc.code == "resource_missing"


def find_coupon(
    client: stripe.StripeClient,
    plans_by_product: Callable[[list[str]], dict[str, str]],
    ref: str,
    promotion_code: bool,
    now: int,
) -> ProcessorCoupon | None:
    """The coupon ``ref`` names in the Stripe account (its id, or with ``promotion_code`` a promotion
    code); None when it names none."""
    promotion: dict[str, Any] | None = None
    try:
        if promotion_code:
            found = [_plain(p) for p in client.v1.promotion_codes.list({"code": ref, "limit": 100}).data]
            if not found:
                return None
            promotion = next((p for p in found if p.get("active") is not False), found[0])
            source = (promotion.get("promotion") or {}).get("coupon") or promotion.get("coupon")
            if source is None:
                return None
            coupon = (
                _plain(source) if not isinstance(source, str) else _plain(client.v1.coupons.retrieve(source))
            )
        else:
            coupon = _plain(client.v1.coupons.retrieve(ref))
    except stripe.InvalidRequestError as exc:
        if _missing(exc):
            return None
        raise
    products = list((coupon.get("applies_to") or {}).get("products") or [])
    return coupon_terms(coupon, plans_by_product(products), now, promotion)
