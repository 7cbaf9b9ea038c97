"""Stripe's coupon fields and promotion codes (``/v1/promotion_codes``) for localstripe.

localstripe 1.15 has coupons but refuses their ``name``, ``max_redemptions``, ``redeem_by`` and
``applies_to`` parameters, and has no promotion codes.  This module lets a coupon be created with those
fields (https://docs.stripe.com/api/coupons/create; they are shown back as given) and adds the
PromotionCode resource (https://docs.stripe.com/api/promotion_codes) as Stripe's current API shapes it:
create (``promotion[type]=coupon`` with ``promotion[coupon]``, ``code``, ``active``, ``expires_at``,
``max_redemptions``, ``metadata``), retrieve, update (``active``, ``metadata``) and list (filters
``code``, case-insensitive, ``coupon`` and ``active``), with Stripe's error bodies for unknown ids and
parameters.  localstripe never redeems coupons: ``times_redeemed`` stays 0 and a coupon stays ``valid``.
"""

from __future__ import annotations

import secrets
from typing import Any

from localstripe.resources import Coupon, List, StripeObject, extra_apis, store, try_convert_to_bool

from .prices import missing, stripe_error, unknown_parameters

_coupon_init = Coupon.__init__


def _coupon_with_fields(
    self: Any,
    name: Any = None,
    max_redemptions: Any = None,
    redeem_by: Any = None,
    applies_to: Any = None,
    **kwargs: Any,
) -> None:
    _coupon_init(self, **kwargs)
    self.name = name
    self.max_redemptions = None if max_redemptions is None else int(max_redemptions)
    self.redeem_by = None if redeem_by is None else int(redeem_by)
    products = (applies_to or {}).get("products") if isinstance(applies_to, dict) else None
    if isinstance(products, dict):  # form-encoded lists arrive as {"0": ..., "1": ...}
        products = [products[k] for k in sorted(products, key=int)]
    self.applies_to = {"products": list(products)} if products else None


Coupon.__init__ = _coupon_with_fields


def _coupon(promotion: Any) -> str:
    if not isinstance(promotion, dict) or not promotion.get("coupon"):
        raise missing("promotion[coupon]")
    if promotion.get("type", "coupon") != "coupon":
        raise stripe_error(400, "Invalid promotion[type]", "parameter_invalid_string", "promotion[type]")
    coupon = str(promotion["coupon"])
    if store.get("coupon:" + coupon) is None:
        raise stripe_error(400, f"No such coupon: '{coupon}'", "resource_missing", "promotion[coupon]")
    return coupon


def _active(value: Any) -> bool:
    active = try_convert_to_bool(value)
    if type(active) is not bool:
        raise stripe_error(400, f"Invalid boolean: {value}", "parameter_invalid_boolean", "active")
    return active


class PromotionCode(StripeObject):  # type: ignore[misc]
    """A customer-facing code for a coupon."""

    object = "promotion_code"
    _id_prefix = "promo_"

    def __init__(
        self,
        promotion: Any = None,
        code: Any = None,
        active: Any = True,
        expires_at: Any = None,
        max_redemptions: Any = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown_parameters(kwargs)
        coupon = _coupon(promotion)
        if code is not None and not isinstance(code, str):
            raise stripe_error(400, "Invalid code", "parameter_invalid_string", "code")
        code = code or secrets.token_hex(4).upper()
        taken = [p for p in _codes() if p.code.lower() == code.lower() and p.active]
        if taken:
            raise stripe_error(
                400, "An active promotion code with `code` already exists.", "resource_already_exists"
            )
        active_flag = _active(active)
        super().__init__()
        self.code = code
        self.promotion = {"type": "coupon", "coupon": coupon}
        self.active = active_flag
        self.expires_at = None if expires_at is None else int(expires_at)
        self.max_redemptions = None if max_redemptions is None else int(max_redemptions)
        self.times_redeemed = 0
        self.customer = None
        self.restrictions = {"first_time_transaction": False, "minimum_amount": None}
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}

    @classmethod
    def _api_create(cls, **data: Any) -> PromotionCode:
        return cls(**data)

    @classmethod
    def _api_retrieve(cls, id: str) -> PromotionCode:
        found = store.get("promotion_code:" + id)
        if found is None:
            raise stripe_error(404, f"No such promotion code: '{id}'", "resource_missing", "id")
        return found  # type: ignore[no-any-return]

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> PromotionCode:
        obj = cls._api_retrieve(id)
        unknown_parameters({k: v for k, v in data.items() if k not in ("active", "metadata")})
        if "active" in data:
            obj.active = _active(data["active"])
        if "metadata" in data:
            obj.metadata = {**obj.metadata, **{str(k): str(v) for k, v in (data["metadata"] or {}).items()}}
        return obj


def _codes() -> list[PromotionCode]:
    return [v for k, v in store.items() if k.startswith("promotion_code:")]


def _route_list(
    code: Any = None,
    coupon: Any = None,
    active: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    unknown_parameters(kwargs)
    found = _codes()
    if code is not None:
        found = [p for p in found if p.code.lower() == str(code).lower()]
    if coupon is not None:
        found = [p for p in found if p.promotion["coupon"] == coupon]
    if active is not None:
        wanted = _active(active)
        found = [p for p in found if p.active == wanted]
    li = List("/v1/promotion_codes", limit=limit, starting_after=starting_after)
    li._list = sorted(found, key=lambda p: p.created, reverse=True)
    return li


def _route_retrieve(id: str, **data: Any) -> PromotionCode:
    unknown_parameters(data)
    return PromotionCode._api_retrieve(id)


def _route_update(id: str, **data: Any) -> PromotionCode:
    return PromotionCode._api_update(id, **data)


extra_apis.extend(
    (
        ("POST", "/v1/promotion_codes", PromotionCode._api_create),
        ("GET", "/v1/promotion_codes", _route_list),
        ("GET", "/v1/promotion_codes/{id}", _route_retrieve),
        ("POST", "/v1/promotion_codes/{id}", _route_update),
    )
)
