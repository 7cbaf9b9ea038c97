"""``discounts`` on ``billing.attach`` and its preview: a coupon reward (by id or by promo code, any case)
takes its share off the change's invoice and off the subscription's renewals while it lasts, through the
real server over HTTP on SQLite and PostgreSQL, and on Stripe with localstripe (whose books the fixture
checks against the server's at the end of every scenario)."""

from __future__ import annotations

from typing import Any

from .helpers import DAY, JUNE, MAY, Api, invoices_of, with_card


def _coupon(api: Api, rid: str, **coupon: Any) -> None:
    body: dict[str, Any] = {
        "id": rid,
        "name": rid.replace("_", " ").title(),
        "plan_ids": None,
        "promo_codes": [],
    }
    api("rewards.create", coupon=body | coupon)


def _discounts(api: Api, customer_id: str) -> list[dict[str, Any]]:
    customer = api("customers.get", customer_id=customer_id, expand=["rewards"])
    return list(customer["rewards"]["discounts"])


def test_a_percentage_coupon_for_two_periods(api: Api) -> None:
    _coupon(
        api,
        "launch",
        type="percentage_discount",
        value=25,
        duration={"type": "months", "length": 2},
        plan_ids=["pro"],
        promo_codes=[{"code": "LAUNCH25"}],
    )
    with_card(api, "u1")
    discounts = [{"reward_id": "launch"}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert (preview["subtotal"], preview["total"]) == (20, 15), preview
    [line] = preview["line_items"]  # the discount is shown on the line it discounts, as Autumn does
    assert (line["display_name"], line["subtotal"], line["total"]) == ("Pro", 20, 15)
    assert line["discounts"] == [
        {"amount_off": 5, "percent_off": 25, "reward_id": "launch", "reward_name": "Launch"}
    ]
    assert preview["next_cycle"]["total"] == 15  # the second period is discounted too

    api("billing.attach", customer_id="u1", plan_id="pro", discounts=discounts)
    first = invoices_of(api, "u1")[0]
    assert (first["total"], first["status"]) == (15, "paid"), first
    assert api.on_processor(first) == ("paid", 1500)

    [kept] = _discounts(api, "u1")
    subscription_id = kept.pop("subscription_id")
    if api.processor == "stripe":  # the Stripe subscription it is on
        assert str(subscription_id).startswith("sub_"), subscription_id
    else:
        assert subscription_id is None
    assert kept == {
        "id": "launch",
        "name": "Launch",
        "type": "percentage_discount",
        "discount_value": 25,
        "duration_type": "months",
        "duration_value": 2,
        "currency": None,
        "start": first["created_at"],
        "end": None,
        "total_discount_amount": 5,
    }

    api.clock.set(MAY)  # the second period: still 25% off
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (15, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 1500)
    assert _discounts(api, "u1") == []  # both periods used: no longer in force
    api.clock.set(JUNE)  # used up: full price
    assert invoices_of(api, "u1")[0]["total"] == 20


def test_a_promo_code_in_any_case_once_and_capped(api: Api) -> None:
    _coupon(
        api,
        "welcome",
        type="fixed_discount",
        value=30,
        duration={"type": "one_off", "length": None},
        promo_codes=[{"code": "Welcome30"}],
    )
    with_card(api, "u1")
    discounts = [{"promotion_code": "welcome30"}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert (preview["subtotal"], preview["total"]) == (20, 0), preview  # $30 off a $20 invoice: free
    assert preview["next_cycle"]["total"] == 20  # once: the renewal is full price
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=discounts)
    assert api.plans_of("u1") == {"pro": "active"}
    api.clock.set(MAY)
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (20, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 2000)


def test_a_forever_coupon_on_an_upgrade_discounts_only_its_charges(api: Api) -> None:
    _coupon(api, "loyal", type="percentage_discount", value=10, duration={"type": "forever", "length": None})
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.advance(15 * DAY)
    discounts = [{"reward_id": "loyal"}]
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", discounts=discounts)
    # -$10 unused Pro (a credit: never discounted), +$25 Premium less 10%.
    assert (preview["subtotal"], preview["total"]) == (15, 12.5), preview
    api("billing.attach", customer_id="u1", plan_id="premium", discounts=discounts)
    switch = invoices_of(api, "u1")[0]
    assert (switch["total"], switch["status"]) == (12.5, "paid"), switch
    assert api.on_processor(switch) == ("paid", 1250)
    api.clock.set(MAY)
    api.clock.set(JUNE)
    totals = [invoice["total"] for invoice in invoices_of(api, "u1")[:2]]
    assert totals == [45, 45]


def test_a_coupon_for_other_plans_takes_nothing(api: Api) -> None:
    _coupon(
        api,
        "premium_only",
        type="percentage_discount",
        value=50,
        plan_ids=["premium"],
        duration={"type": "forever", "length": None},
    )
    with_card(api, "u1")
    preview = api(
        "billing.preview_attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "premium_only"}]
    )
    assert (preview["subtotal"], preview["total"]) == (20, 20)
    assert [line["total"] for line in preview["line_items"]] == [20]


def test_what_is_not_a_coupon_is_refused_and_writes_nothing(api: Api) -> None:
    api(
        "rewards.create",
        feature_grant={
            "id": "bonus",
            "name": "Bonus",
            "grants": [{"feature_id": "messages", "included": 10, "expiry": None}],
            "promo_codes": [{"code": "BONUS", "max_uses": None}],
        },
    )
    with_card(api, "u1")
    for discount in ({"reward_id": "nope"}, {"promotion_code": "NOPE"}, {"reward_id": "bonus"}, {}):
        for op in ("billing.preview_attach", "billing.attach"):
            error = api(op, expect=400, customer_id="u1", plan_id="pro", discounts=[discount])
            assert error["code"] == "invalid_request", error
    error = api(
        "billing.attach", expect=400, customer_id="u1", plan_id="pro", discounts=[{"reward_id": "bonus"}]
    )
    assert "feature grant" in error["message"], error
    assert api.plans_of("u1") == {"free": "active"}
    assert invoices_of(api, "u1") == []


def test_a_promo_codes_redemption_limit(api: Api) -> None:
    _coupon(
        api,
        "few",
        type="percentage_discount",
        value=50,
        duration={"type": "one_off", "length": None},
        promo_codes=[{"code": "FEW", "global_max_redemption": 1}],
    )
    for customer_id in ("u1", "u2"):
        with_card(api, customer_id)
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"promotion_code": "few"}])
    assert invoices_of(api, "u1")[0]["total"] == 10
    error = api(
        "billing.attach", expect=400, customer_id="u2", plan_id="pro", discounts=[{"promotion_code": "FEW"}]
    )
    assert "maximum" in error["message"], error
    assert api.plans_of("u2") == {"free": "active"}
    assert invoices_of(api, "u2") == []


def test_a_free_plan_checks_its_discounts(api: Api) -> None:
    _coupon(api, "spare", type="percentage_discount", value=10, duration={"type": "forever", "length": None})
    api("customers.get_or_create", customer_id="u1")
    api("plans.create", plan_id="basic", name="Basic", add_on=True, items=[])
    error = api(
        "billing.attach", expect=400, customer_id="u1", plan_id="basic", discounts=[{"reward_id": "no"}]
    )
    assert error["code"] == "invalid_request", error
    api("billing.attach", customer_id="u1", plan_id="basic", discounts=[{"reward_id": "spare"}])
    assert api.plans_of("u1") == {"free": "active", "basic": "active"}
    assert invoices_of(api, "u1") == []


def test_a_coupon_stays_on_the_subscription_through_an_upgrade(api: Api) -> None:
    _coupon(
        api,
        "partner",
        type="percentage_discount",
        value=20,
        duration={"type": "forever", "length": None},
        plan_ids=None,
    )
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "partner"}])
    assert invoices_of(api, "u1")[0]["total"] == 16
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium")
    # The unused half of Pro was paid at 20% off: $8 back, not $10; half of Premium less 20%: $20.
    assert (preview["subtotal"], preview["total"]) == (15, 12), preview
    shown = [
        (line["subtotal"], line["total"], line["discounts"][0]["amount_off"])
        for line in preview["line_items"]
    ]
    assert sorted(shown) == [(-10, -8, 2), (25, 20, 5)]
    assert preview["next_cycle"]["total"] == 40
    api("billing.attach", customer_id="u1", plan_id="premium")
    switch = invoices_of(api, "u1")[0]
    assert (switch["total"], switch["status"]) == (12, "paid"), switch
    assert api.on_processor(switch) == ("paid", 1200)
    api.clock.set(MAY)
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (40, "paid"), renewal
    [kept] = _discounts(api, "u1")
    assert (kept["id"], kept["total_discount_amount"]) == ("partner", 4 + 3 + 10)


CUSTOM = {
    "price": {"amount": 30, "interval": "month"},
    "items": [{"feature_id": "messages", "included": 2000, "reset": {"interval": "month"}}],
}
"""Pro at $30: halfway through April, -$10 unused Pro and +$15 for the rest of the month."""


def test_billing_update_applies_its_discounts_once(api: Api) -> None:
    _coupon(api, "sorry", type="percentage_discount", value=10, duration={"type": "one_off", "length": None})
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.advance(15 * DAY)
    discounts = [{"reward_id": "sorry"}]
    preview = api(
        "billing.preview_update", customer_id="u1", plan_id="pro", customize=CUSTOM, discounts=discounts
    )
    assert (preview["subtotal"], preview["total"]) == (5, 3.5), preview  # 10% of the $15 charge
    assert preview["next_cycle"]["total"] == 30  # once: used up by this invoice
    result = api("billing.update", customer_id="u1", plan_id="pro", customize=CUSTOM, discounts=discounts)
    assert result["invoice"]["total"] == 3.5
    assert api.on_processor(invoices_of(api, "u1")[0]) == ("paid", 350)
    api.clock.set(MAY)
    assert [invoice["total"] for invoice in invoices_of(api, "u1")] == [30, 3.5, 20]
    error = api("billing.update", expect=400, customer_id="u1", plan_id="pro", discounts=[{"reward_id": "x"}])
    assert error["code"] == "invalid_request", error


def test_a_coupon_stays_on_the_subscription_through_an_update(api: Api) -> None:
    _coupon(api, "partner", type="percentage_discount", value=20, duration={"type": "months", "length": 2})
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "partner"}])
    api.clock.advance(15 * DAY)
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", customize=CUSTOM)
    # $8 back for the unused half paid at 20% off; $15 less 20%: no billing period of the coupon used.
    assert (preview["subtotal"], preview["total"]) == (5, 4), preview
    assert preview["next_cycle"]["total"] == 24
    api("billing.update", customer_id="u1", plan_id="pro", customize=CUSTOM)
    api.clock.set(MAY)  # its second period: 20% off the custom price
    api.clock.set(JUNE)  # used up
    assert [invoice["total"] for invoice in invoices_of(api, "u1")] == [30, 24, 4, 16]
    assert _discounts(api, "u1") == []


def _extra(api: Api) -> None:
    month = {"interval": "month"}
    api("plans.create", plan_id="extra", name="Extra", add_on=True, price={"amount": 10, **month}, items=[])


def test_multi_attach_takes_a_percentage_on_each_plan_and_an_amount_once(api: Api) -> None:
    _extra(api)
    _coupon(api, "half", type="percentage_discount", value=50, duration={"type": "months", "length": 2})
    _coupon(api, "five", type="fixed_discount", value=5, duration={"type": "one_off", "length": None})
    api("plans.create", plan_id="bonus", name="Bonus", add_on=True, items=[])  # no price: no amount on it
    with_card(api, "u1")
    plans = [{"plan_id": "bonus"}, {"plan_id": "pro"}, {"plan_id": "extra"}]
    discounts = [{"reward_id": "half"}, {"reward_id": "five"}]
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=plans, discounts=discounts)
    # Pro $20 - 50% - $5, Extra $10 - 50%.
    assert (preview["subtotal"], preview["total"]) == (30, 10), preview
    api("billing.multi_attach", customer_id="u1", plans=plans, discounts=discounts)
    first = invoices_of(api, "u1")[0]
    assert (first["total"], first["status"]) == (10, "paid"), first
    assert api.on_processor(first) == ("paid", 1000)
    kept = sorted((d["id"], d["total_discount_amount"]) for d in _discounts(api, "u1"))
    assert kept == [("half", 5), ("half", 10)]  # on Pro and on Extra; the $5 once is used up
    error = api(
        "billing.multi_attach", expect=400, customer_id="u1", plans=plans, discounts=[{"reward_id": "x"}]
    )
    assert error["code"] == "invalid_request", error


def test_a_schedule_discounts_its_immediate_phase(api: Api) -> None:
    _coupon(api, "intro", type="fixed_discount", value=4, duration={"type": "months", "length": 2})
    with_card(api, "u1")
    start = api.clock.now_ms()
    phases = [
        {"starts_at": start, "plans": [{"plan_id": "pro"}]},
        {"starts_at": JUNE, "plans": [{"plan_id": "premium"}]},
    ]
    unknown = [{"reward_id": "x"}]
    error = api("billing.create_schedule", expect=400, customer_id="u1", phases=phases, discounts=unknown)
    assert error["code"] == "invalid_request", error
    assert api.plans_of("u1") == {"free": "active"}
    api("billing.create_schedule", customer_id="u1", phases=phases, discounts=[{"reward_id": "intro"}])
    assert invoices_of(api, "u1")[0]["total"] == 16
    api.clock.set(MAY)
    assert invoices_of(api, "u1")[0]["total"] == 16
    api.clock.set(JUNE)  # Premium, a new plan of the schedule: no coupon on it
    assert invoices_of(api, "u1")[0]["total"] == 50


def test_redeeming_a_coupons_promo_code_discounts_the_paid_subscription(api: Api) -> None:
    _coupon(
        api,
        "loyal",
        type="percentage_discount",
        value=50,
        duration={"type": "forever", "length": None},
        promo_codes=[{"code": "LOYAL50"}],
    )
    with_card(api, "u1")
    error = api("rewards.redeem", expect=400, code="loyal50", customer_id="u1")  # only the free plan
    assert error["code"] == "invalid_reward", error
    api("billing.attach", customer_id="u1", plan_id="pro")
    redeemed = api("rewards.redeem", code="loyal50", customer_id="u1")
    assert redeemed == {"reward_id": "loyal", "entitlements_granted": []}
    assert [(d["id"], d["total_discount_amount"]) for d in _discounts(api, "u1")] == [("loyal", 0)]
    error = api("rewards.redeem", expect=400, code="LOYAL50", customer_id="u1")
    assert error["code"] == "customer_already_redeemed_referral_code", error
    api.clock.set(MAY)  # from its next invoice on
    renewal = invoices_of(api, "u1")[0]
    assert (renewal["total"], renewal["status"]) == (10, "paid"), renewal
    assert api.on_processor(renewal) == ("paid", 1000)
    assert [d["total_discount_amount"] for d in _discounts(api, "u1")] == [10]


def test_a_checkout_charges_the_discounted_invoice_and_keeps_the_coupon(api: Api) -> None:
    _coupon(api, "quarter", type="percentage_discount", value=25, duration={"type": "months", "length": 2})
    api("customers.get_or_create", customer_id="u1")  # no card: the attach goes through checkout
    result = api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "quarter"}])
    assert result["payment_url"] is not None
    assert api.pay(result["payment_url"]).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    first = invoices_of(api, "u1")[0]
    assert (first["total"], first["status"]) == (15, "paid"), first
    assert [(d["id"], d["total_discount_amount"]) for d in _discounts(api, "u1")] == [("quarter", 5)]
    api.clock.set(MAY)
    assert invoices_of(api, "u1")[0]["total"] == 15


def test_a_downgrade_at_the_period_end_keeps_the_coupon(api: Api) -> None:
    _coupon(api, "vip", type="percentage_discount", value=20, duration={"type": "forever", "length": None})
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium", discounts=[{"reward_id": "vip"}])
    assert invoices_of(api, "u1")[0]["total"] == 40
    api.clock.advance(10 * DAY)
    preview = api("billing.preview_attach", customer_id="u1", plan_id="pro")
    assert (preview["total"], preview["next_cycle"]["total"]) == (0, 16), preview  # Pro in May, 20% off
    api("billing.attach", customer_id="u1", plan_id="pro")  # waits for May
    assert api.plans_of("u1") == {"premium": "active", "pro": "scheduled"}
    api.clock.set(MAY)
    assert api.plans_of("u1") == {"pro": "active"}
    first = invoices_of(api, "u1")[0]
    assert (first["total"], first["status"]) == (16, "paid"), first
    assert api.on_processor(first) == ("paid", 1600)
    [kept] = _discounts(api, "u1")
    assert (kept["id"], kept["total_discount_amount"]) == ("vip", 14)


def test_a_multi_update_credits_what_the_coupon_left_paid(api: Api) -> None:
    _coupon(
        api, "partner", type="percentage_discount", value=20, duration={"type": "forever", "length": None}
    )
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "partner"}])
    api.clock.advance(15 * DAY)
    cancel = [{"plan_id": "pro", "cancel_action": "cancel_immediately"}]
    preview = api("billing.preview_multi_update", customer_id="u1", updates=cancel)
    assert preview["total"] == -8, preview  # half of the $16 paid, not half of $20
    api("billing.multi_update", customer_id="u1", updates=cancel)
    assert api.plans_of("u1") == {"free": "active"}
    assert invoices_of(api, "u1")[0]["total"] == -8


def test_setup_payment_passes_its_discounts_to_its_attach(api: Api) -> None:
    _coupon(
        api, "welcome", type="percentage_discount", value=50, duration={"type": "one_off", "length": None}
    )
    api("customers.get_or_create", customer_id="u1")
    unknown = [{"reward_id": "x"}]
    error = api("billing.setup_payment", expect=400, customer_id="u1", plan_id="pro", discounts=unknown)
    assert error["code"] == "invalid_request", error
    error = api("billing.setup_payment", expect=400, customer_id="u1", discounts=[{"reward_id": "welcome"}])
    assert "plan_id" in error["message"], error
    discounts = [{"reward_id": "welcome"}]
    url = api("billing.setup_payment", customer_id="u1", plan_id="pro", discounts=discounts)["url"]
    assert api.pay(url).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    first = invoices_of(api, "u1")[0]
    assert (first["total"], first["status"]) == (10, "paid"), first
    assert api.on_processor(first) == ("paid", 1000)


def test_remove_discounts_ends_a_coupon_on_the_subscription(api: Api) -> None:
    _coupon(
        api, "partner", type="percentage_discount", value=20, duration={"type": "forever", "length": None}
    )
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro", discounts=[{"reward_id": "partner"}])
    both = {"discounts": [{"reward_id": "partner"}], "remove_discounts": [{"reward_id": "partner"}]}
    error = api("billing.update", expect=400, customer_id="u1", plan_id="pro", **both)
    assert error["code"] == "invalid_request", error
    api.clock.advance(15 * DAY)
    removal = [{"reward_id": "partner"}, {"reward_id": "not_on_it"}]  # one not on it changes nothing
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", remove_discounts=removal)
    assert (preview["total"], preview["next_cycle"]["total"]) == (15, 50), preview  # no coupon on it
    update = api(
        "billing.preview_update", customer_id="u1", plan_id="pro", customize=CUSTOM, remove_discounts=removal
    )
    assert update["total"] == 5, update  # the customization's invoice without it
    api("billing.update", customer_id="u1", plan_id="pro", customize=CUSTOM, remove_discounts=removal)
    assert invoices_of(api, "u1")[0]["total"] == 5
    assert _discounts(api, "u1") == []
    api.clock.set(MAY)
    assert invoices_of(api, "u1")[0]["total"] == 30


def test_remove_discounts_on_a_downgrade_ends_the_coupon_now(api: Api) -> None:
    _coupon(api, "vip", type="percentage_discount", value=20, duration={"type": "forever", "length": None})
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="premium", discounts=[{"reward_id": "vip"}])
    api("billing.attach", customer_id="u1", plan_id="pro", remove_discounts=[{"reward_id": "vip"}])
    assert _discounts(api, "u1") == []
    api.clock.set(MAY)
    assert api.plans_of("u1") == {"pro": "active"}
    assert invoices_of(api, "u1")[0]["total"] == 20
