"""``discounts`` naming a Stripe coupon id or a Stripe promotion code (no Autumn reward): read from the
organization's Stripe account and applied as an Autumn reward's coupon is (a negative line of the
server's invoice), through the real server over HTTP on SQLite and PostgreSQL with localstripe (its
promotion codes and coupon fields come from ``localstripe_ext/coupons.py``); an organization charged
locally has no Stripe coupons, so the same ids are Autumn's 400 there.  The mapping of Stripe's fields
(validity, redemption limits, expiry, ``applies_to``) is also checked on the processor's pure function."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from reference_server.engine.billing.discounts import CouponKind
from reference_server.processors.stripe.coupons import coupon_terms
from reference_server.store.stripe_objects import stripe_objects

from .helpers import DAY, JUNE, MAY, START, Api


def _invoices(api: Api, customer_id: str) -> list[dict[str, Any]]:
    return list(api.customer(customer_id)["invoices"])


def _discounts(api: Api, customer_id: str) -> list[dict[str, Any]]:
    customer = api("customers.get", customer_id=customer_id, expand=["rewards"])
    return list(customer["rewards"]["discounts"])


def _customer(api: Api, customer_id: str) -> None:
    api("customers.get_or_create", customer_id=customer_id)
    api.add_card(customer_id)


def _unique(prefix: str) -> str:
    """Ids unique in the module's shared localstripe."""
    return f"{prefix}_{secrets.token_hex(4)}"


def _stripe_coupon(api: Api, **params: Any) -> str:
    assert api.stripe is not None
    coupon_id = _unique("co")
    api.stripe.v1.coupons.create({"id": coupon_id, **params})
    return coupon_id


def _refused(api: Api, discount: dict[str, Any], expected: str) -> None:
    for op in ("billing.preview_attach", "billing.attach"):
        error = api(op, expect=400, customer_id="u1", plan_id="pro", discounts=[discount])
        assert error["code"] == "invalid_request", error
        assert expected in error["message"], error


def test_a_stripe_coupon_id_discounts_an_attach_and_its_renewals(api: Api) -> None:
    _customer(api, "u1")
    if api.processor == "local":  # no Stripe account: the id names nothing
        _refused(api, {"reward_id": "co_stripe"}, "No coupon reward with id co_stripe")
        assert api.plans_of("u1") == {"free": "active"} and _invoices(api, "u1") == []
        return
    coupon_id = _stripe_coupon(
        api, percent_off=25, duration="repeating", duration_in_months=2, name="Stripe quarter"
    )
    discounts = [{"reward_id": coupon_id}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert (preview["subtotal"], preview["total"]) == (20, 15), preview
    [line] = preview["line_items"]
    assert line["discounts"] == [
        {"amount_off": 5, "percent_off": 25, "reward_id": coupon_id, "reward_name": "Stripe quarter"}
    ]
    assert preview["next_cycle"]["total"] == 15

    api("billing.attach", customer_id="u1", plan_id="pro", discounts=discounts)
    first = _invoices(api, "u1")[0]
    assert (first["total"], first["status"]) == (15, "paid"), first
    assert api.on_processor(first) == ("paid", 1500)
    [kept] = _discounts(api, "u1")
    assert (kept["id"], kept["name"], kept["type"], kept["discount_value"]) == (
        coupon_id,
        "Stripe quarter",
        "percentage_discount",
        25,
    )
    assert (kept["duration_type"], kept["duration_value"], kept["total_discount_amount"]) == ("months", 2, 5)

    api.clock.set(MAY)  # the second month of the coupon
    renewal = _invoices(api, "u1")[0]
    assert (renewal["total"], api.on_processor(renewal)) == (15, ("paid", 1500))
    api.clock.set(JUNE)
    assert _invoices(api, "u1")[0]["total"] == 20


def test_a_stripe_promotion_code_discounts_an_attach_once(api: Api) -> None:
    _customer(api, "u1")
    code = _unique("SPRING").upper()
    if api.processor == "local":
        _refused(api, {"promotion_code": code}, f"No reward has the promotion code {code}")
        assert api.plans_of("u1") == {"free": "active"} and _invoices(api, "u1") == []
        return
    assert api.stripe is not None
    coupon_id = _stripe_coupon(api, amount_off=500, currency="usd", duration="once")
    api.stripe.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": coupon_id}, "code": code})
    discounts = [{"promotion_code": code.lower()}, {"reward_id": coupon_id}]  # the same coupon: once
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert (preview["subtotal"], preview["total"]) == (20, 15), preview
    [line] = preview["line_items"]
    [shown] = line["discounts"]
    assert (shown["reward_id"], shown["amount_off"], shown.get("percent_off")) == (coupon_id, 5, None)
    assert preview["next_cycle"]["total"] == 20  # once
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=discounts)
    first = _invoices(api, "u1")[0]
    assert (first["total"], api.on_processor(first)) == (15, ("paid", 1500))
    assert _discounts(api, "u1") == []  # once: used up by the attach
    api.clock.set(MAY)
    assert _invoices(api, "u1")[0]["total"] == 20


def test_a_stripe_coupon_for_another_plans_product_takes_nothing_off_this_one(api: Api) -> None:
    if api.processor == "local":
        _customer(api, "u1")
        _refused(api, {"reward_id": "co_products"}, "No coupon reward with id co_products")
        return
    assert api.stripe is not None
    _customer(api, "u0")
    api("billing.attach", customer_id="u0", plan_id="premium")  # the server makes Premium's Product
    premium = _product_of(api, "premium")
    assert api.stripe.v1.products.retrieve(premium).metadata["autumn_plan_id"] == "premium"
    coupon_id = _stripe_coupon(
        api, percent_off=50, duration="forever", applies_to={"products": [premium, "prod_not_ours"]}
    )
    _customer(api, "u1")
    discounts = [{"reward_id": coupon_id}]
    pro = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert pro["total"] == 20, pro
    discounted = api("billing.preview_attach", customer_id="u1", plan_id="premium", discounts=discounts)
    assert discounted["total"] == 25, discounted


def _product_of(api: Api, plan_id: str) -> str:
    """The Stripe Product this test's server created for a plan."""
    with api.server.app.state.autumn.db.read() as conn:
        found = conn.execute(
            select(stripe_objects.c.stripe_id).where(
                stripe_objects.c.plan_id == plan_id, stripe_objects.c.price_key == ""
            )
        ).scalar_one()
    return str(found)


def test_an_expired_inactive_or_unknown_stripe_coupon_is_refused_and_writes_nothing(api: Api) -> None:
    _customer(api, "u1")
    if api.processor == "local":
        _refused(api, {"reward_id": "co_unknown"}, "No coupon reward with id co_unknown")
        _refused(api, {"promotion_code": "UNKNOWN"}, "No reward has the promotion code UNKNOWN")
        assert api.plans_of("u1") == {"free": "active"} and _invoices(api, "u1") == []
        return
    assert api.stripe is not None
    soon = START // 1000 + 86_400
    expiring = _stripe_coupon(api, percent_off=10, duration="once", redeem_by=soon)
    ok = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": expiring}])
    assert ok["total"] == 18  # valid until its redeem_by
    promo_expiring = _unique("SOON").upper()
    api.stripe.v1.promotion_codes.create(
        {
            "promotion": {"type": "coupon", "coupon": expiring},
            "code": promo_expiring,
            "expires_at": soon - 3600,
        }
    )
    inactive_code = _unique("OFF").upper()
    other = _stripe_coupon(api, percent_off=10, duration="once")
    created = api.stripe.v1.promotion_codes.create(
        {"promotion": {"type": "coupon", "coupon": other}, "code": inactive_code}
    )
    api.stripe.v1.promotion_codes.update(created.id, {"active": False})
    euros = _stripe_coupon(api, amount_off=500, currency="eur", duration="once")

    api.clock.advance(2 * DAY)
    _refused(api, {"reward_id": expiring}, f'Coupon "{expiring}" expired')
    _refused(api, {"promotion_code": promo_expiring}, f'Promotion code "{promo_expiring}" expired')
    _refused(api, {"promotion_code": inactive_code}, "Promotion code not found or inactive")
    _refused(api, {"reward_id": euros}, "cannot discount an invoice in USD")
    _refused(api, {"reward_id": "co_unknown"}, "No coupon reward with id co_unknown")
    _refused(api, {"promotion_code": "UNKNOWN"}, "No reward has the promotion code UNKNOWN")
    assert api.plans_of("u1") == {"free": "active"}
    assert _invoices(api, "u1") == []
    assert _discounts(api, "u1") == []


def test_a_stripe_coupon_on_a_multi_attach_and_an_update(api: Api) -> None:
    extra = {"amount": 10, "interval": "month"}
    api("plans.create", plan_id="extra", name="Extra", add_on=True, price=extra, items=[])
    _customer(api, "u1")
    plans = [{"plan_id": "pro"}, {"plan_id": "extra"}]
    if api.processor == "local":
        for op in ("billing.preview_multi_attach", "billing.multi_attach"):
            error = api(op, expect=400, customer_id="u1", plans=plans, discounts=[{"reward_id": "co_x"}])
            assert error["code"] == "invalid_request", error
        assert _invoices(api, "u1") == []
        return
    half = _stripe_coupon(api, percent_off=50, duration="once")
    code = _unique("FIVE").upper()
    five = _stripe_coupon(api, amount_off=500, currency="usd", duration="once")
    assert api.stripe is not None
    api.stripe.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": five}, "code": code})
    discounts = [{"reward_id": half}, {"promotion_code": code}]
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=plans, discounts=discounts)
    assert (preview["subtotal"], preview["total"]) == (30, 10), preview  # $10 + $5, less $5 once
    api("billing.multi_attach", customer_id="u1", plans=plans, discounts=discounts)
    first = _invoices(api, "u1")[0]
    assert (first["total"], api.on_processor(first)) == (10, ("paid", 1000))

    api.clock.advance(15 * DAY)
    tenth = _stripe_coupon(api, percent_off=10, duration="once")
    custom = {"price": {"amount": 30, "interval": "month"}, "items": []}
    result = api(
        "billing.update", customer_id="u1", plan_id="pro", customize=custom, discounts=[{"reward_id": tenth}]
    )
    assert result["invoice"]["total"] == 3.5  # -$10 unused Pro, +$15 for half a month less 10%


# the processor's mapping of Stripe's objects ------------------------------------------------------------

NOW = START


def _coupon(**fields: Any) -> dict[str, Any]:
    return {"id": "co_x", "percent_off": 20.0, "duration": "forever", "valid": True, **fields}


def test_stripe_fields_map_onto_the_engines_terms() -> None:
    terms = coupon_terms(
        _coupon(percent_off=12.5, duration="repeating", duration_in_months=3, name="Spring"), {}, NOW
    )
    assert (terms.id, terms.name, terms.kind, terms.value) == (
        "co_x",
        "Spring",
        CouponKind.PERCENTAGE,
        Decimal("12.5"),
    )
    assert (terms.duration_type, terms.duration_length, terms.plan_ids, terms.problem) == (
        "months",
        3,
        None,
        None,
    )
    fixed = coupon_terms(_coupon(percent_off=None, amount_off=1050, currency="USD", duration="once"), {}, NOW)
    assert (fixed.kind, fixed.value, fixed.currency, fixed.duration_type) == (
        CouponKind.FIXED,
        Decimal("10.50"),
        "usd",
        "one_off",
    )
    scoped = coupon_terms(
        _coupon(applies_to={"products": ["prod_b", "prod_a", "prod_z"]}),
        {"prod_a": "pro", "prod_b": "team"},
        NOW,
    )
    assert scoped.plan_ids == ("pro", "team")
    foreign = coupon_terms(_coupon(applies_to={"products": ["prod_z"]}), {"prod_a": "pro"}, NOW)
    assert foreign.plan_ids == ()  # only Products this server does not bill: applies to none of its plans


def test_what_stripe_says_cannot_be_redeemed_is_a_problem() -> None:
    now_s = NOW // 1000
    cases = [
        (_coupon(valid=False), None, 'Coupon "co_x" is no longer valid'),
        (_coupon(redeem_by=now_s), None, 'Coupon "co_x" expired'),
        (_coupon(max_redemptions=2, times_redeemed=2), None, 'Coupon "co_x" has reached its maximum'),
        (_coupon(), {"code": "A", "active": False}, 'Promotion code not found or inactive: "A"'),
        (_coupon(), {"code": "B", "active": True, "expires_at": now_s - 1}, 'Promotion code "B" expired'),
        (
            _coupon(),
            {"code": "C", "max_redemptions": 1, "times_redeemed": 1},
            'Promotion code "C" has reached',
        ),
    ]
    for coupon, promotion, expected in cases:
        problem = coupon_terms(coupon, {}, NOW, promotion).problem
        assert problem is not None and problem.startswith(expected), (coupon, promotion, problem)
    fine = coupon_terms(
        _coupon(redeem_by=now_s + 1, max_redemptions=2, times_redeemed=1), {}, NOW, {"code": "D"}
    )
    assert fine.problem is None
