"""The autumn-js contract, route by route, through each adapter with the real reference server behind.

Every request goes browser-shaped (camelCase JSON, the ``x-test-customer`` identity header) into the
framework's own test client, through the handler and the SDK to the reference server, and back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from autumn_sdk import AsyncAutumn, Autumn

from .apps import FRAMEWORKS, HandlerClient, HandlerOptions, handler_client
from .live import (
    FEATURE,
    FLAG,
    FREE_INCLUDED,
    FREE_PLAN,
    PAID_PLAN,
    PAID_PRICE,
    REFERRAL_BONUS,
    REFERRAL_PROGRAM,
    SEATS,
    LiveAutumn,
)

PREFIX = "/api/autumn"


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(framework: str, reference: LiveAutumn) -> Iterator[HandlerClient]:
    options = HandlerOptions(secret_key=reference.secret_key, autumn_url=reference.url)
    with handler_client(framework, options) as test_client:
        yield test_client


@pytest.fixture
def customer_id(framework: str, reference: LiveAutumn) -> str:
    return reference.new_customer_id(f"cus_{framework}")


def post(client: HandlerClient, route: str, body: Any, customer_id: str | None, **extra: str) -> Any:
    headers = {"x-test-customer": customer_id} if customer_id else {}
    headers.update({f"x-test-{key}": value for key, value in extra.items()})
    return client.request("POST", f"{PREFIX}/{route}", body, headers)


def ok(reply: Any) -> Any:
    assert reply.status == 200, (reply.status, reply.text)
    return reply.json


def attach_free(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    attached = ok(
        post(client, "attach", {"planId": FREE_PLAN, "successUrl": "http://app.local/"}, customer_id)
    )
    assert attached["customerId"] == customer_id
    assert attached["paymentUrl"] is None


# --- getOrCreateCustomer ---------------------------------------------------------------------------


def test_get_or_create_creates_the_customer_from_identify(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    customer = ok(
        post(client, "getOrCreateCustomer", {}, customer_id, name="Ada Lovelace", email="ada@example.com")
    )
    assert customer["id"] == customer_id
    assert customer["name"] == "Ada Lovelace"
    assert customer["email"] == "ada@example.com"
    for key in ("createdAt", "stripeId", "sendEmailReceipts", "billingControls", "subscriptions", "balances"):
        assert key in customer
    assert not [key for key in customer if "_" in key]
    stored = reference.autumn.customers.get(customer_id=customer_id)
    assert stored.name == "Ada Lovelace"


def test_protected_customer_fields_from_the_browser_are_ignored(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    body = {"name": "Mallory", "email": "m@evil.example", "metadata": {"role": "admin"}, "stripeId": "cus_x"}
    customer = ok(post(client, "getOrCreateCustomer", body, customer_id, name="Ada"))
    assert customer["name"] == "Ada"
    assert customer["email"] is None
    assert customer["metadata"] == {}
    assert customer["stripeId"] is None


def test_map_keys_stay_as_they_are(client: HandlerClient, customer_id: str, reference: LiveAutumn) -> None:
    attach_free(client, customer_id)
    reference.autumn.customers.update(
        customer_id=customer_id, metadata={"signup_source": "ads", "seatCount": 2}
    )
    customer = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert customer["metadata"] == {"signup_source": "ads", "seatCount": 2}
    assert list(customer["balances"]) == [FEATURE]
    balance = customer["balances"][FEATURE]
    assert balance["featureId"] == FEATURE
    assert balance["granted"] == FREE_INCLUDED
    assert balance["remaining"] == FREE_INCLUDED
    assert "overageAllowed" in balance
    assert "nextResetAt" in balance


def test_balances_feature_is_always_expanded(client: HandlerClient, customer_id: str) -> None:
    attach_free(client, customer_id)
    plain = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert plain["balances"][FEATURE]["feature"]["id"] == FEATURE
    assert plain["balances"][FEATURE]["feature"]["type"] == "metered"
    with_invoices = ok(post(client, "getOrCreateCustomer", {"expand": ["invoices"]}, customer_id))
    assert with_invoices["balances"][FEATURE]["feature"]["name"] == "API calls"
    assert isinstance(with_invoices["invoices"], list)


def test_get_or_create_without_identity(client: HandlerClient) -> None:
    assert post(client, "getOrCreateCustomer", {"errorOnNotFound": False}, None).status == 204
    reply = post(client, "getOrCreateCustomer", {}, None)
    assert reply.status == 401
    assert reply.json["code"] == "no_customer_id"


# --- billing -----------------------------------------------------------------------------------------


def test_attach_free_plan_grants_its_balance(client: HandlerClient, customer_id: str) -> None:
    attach_free(client, customer_id)
    customer = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert [sub["planId"] for sub in customer["subscriptions"]] == [FREE_PLAN]
    assert customer["subscriptions"][0]["status"] == "active"


def test_attach_paid_plan_asks_for_payment(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    attached = ok(
        post(client, "attach", {"planId": PAID_PLAN, "successUrl": "http://app.local/done"}, customer_id)
    )
    assert attached["customerId"] == customer_id
    assert isinstance(attached["paymentUrl"], str)
    assert attached["paymentUrl"].startswith("http")


def test_preview_attach(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    preview = ok(post(client, "previewAttach", {"planId": PAID_PLAN}, customer_id))
    assert preview["customerId"] == customer_id
    assert preview["total"] == PAID_PRICE
    assert isinstance(preview["lineItems"], list)
    assert "redirectToCheckout" in preview
    assert "checkoutType" in preview


def test_multi_attach_and_its_preview(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    preview = ok(post(client, "previewMultiAttach", {"plans": [{"planId": PAID_PLAN}]}, customer_id))
    assert preview["customerId"] == customer_id
    assert preview["total"] == PAID_PRICE
    attached = ok(
        post(
            client,
            "multiAttach",
            {"plans": [{"planId": FREE_PLAN}], "successUrl": "http://a.local"},
            customer_id,
        )
    )
    assert attached["customerId"] == customer_id
    assert attached["paymentUrl"] is None


def test_update_subscription_and_its_preview(client: HandlerClient, customer_id: str) -> None:
    attach_free(client, customer_id)
    body = {"planId": FREE_PLAN, "cancelAction": "cancel_immediately"}
    preview = ok(post(client, "previewUpdateSubscription", body, customer_id))
    assert preview["customerId"] == customer_id
    assert "lineItems" in preview
    updated = ok(post(client, "updateSubscription", body, customer_id))
    assert updated["customerId"] == customer_id
    assert "paymentUrl" in updated
    customer = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert FREE_PLAN not in [sub["planId"] for sub in customer["subscriptions"]]


def test_setup_payment_returns_a_url(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    setup = ok(post(client, "setupPayment", {"successUrl": "http://app.local/billing"}, customer_id))
    assert setup["customerId"] == customer_id
    assert setup["url"].startswith("http")


def test_customer_portal_returns_a_url(client: HandlerClient, customer_id: str) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    body = {"returnUrl": "http://app.local/", "openInNewTab": True}
    portal = ok(post(client, "openCustomerPortal", body, customer_id))
    assert portal["customerId"] == customer_id
    assert portal["url"].startswith("http")


def test_browser_cannot_attach_for_another_customer(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    victim = reference.new_customer_id("victim")
    reference.autumn.customers.get_or_create(customer_id=victim)
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    attached = ok(
        post(
            client, "attach", {"planId": FREE_PLAN, "customerId": victim, "customer_id": victim}, customer_id
        )
    )
    assert attached["customerId"] == customer_id
    assert reference.autumn.customers.get(customer_id=victim).subscriptions == []


def test_upstream_errors_keep_the_server_status_code_and_message(
    client: HandlerClient, customer_id: str
) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    reply = post(client, "attach", {"planId": "no_such_plan"}, customer_id)
    assert reply.status == 404
    assert set(reply.json) == {"message", "code", "statusCode"}
    assert reply.json["statusCode"] == 404
    assert reply.json["code"] != "autumn_api_error"
    assert "no_such_plan" in reply.json["message"]


def test_schema_violations_never_reach_the_server(client: HandlerClient, customer_id: str) -> None:
    reply = post(client, "attach", {"successUrl": "http://app.local"}, customer_id)
    assert reply.status == 400
    assert reply.json == {"message": "planId: is required", "code": "invalid_inputs", "statusCode": 400}


# --- plans, events, entities, referrals --------------------------------------------------------------


def test_list_plans_with_and_without_a_customer(client: HandlerClient, customer_id: str) -> None:
    anonymous = ok(post(client, "listPlans", {}, None))
    plans = {plan["id"]: plan for plan in anonymous["list"]}
    assert {FREE_PLAN, PAID_PLAN} <= set(plans)
    pro = plans[PAID_PLAN]
    assert pro["price"]["amount"] == PAID_PRICE
    for key in ("addOn", "autoEnable", "createdAt", "baseVariantId", "items"):
        assert key in pro
    assert {item["featureId"] for item in pro["items"]} == {FEATURE, SEATS, FLAG}

    attach_free(client, customer_id)
    personal = ok(post(client, "listPlans", {}, customer_id))
    eligibility = {plan["id"]: plan.get("customerEligibility") for plan in personal["list"]}
    assert eligibility[PAID_PLAN] is not None
    assert "attachAction" in eligibility[PAID_PLAN]


def test_list_events_pages_with_cursors(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    attach_free(client, customer_id)
    for value in (1, 2, 3, 4, 5):
        reference.autumn.track(customer_id=customer_id, feature_id=FEATURE, value=value)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = ok(post(client, "listEvents", {"startCursor": cursor, "limit": 2}, customer_id))
        assert len(page["list"]) <= 2
        seen.extend(event["id"] for event in page["list"])
        for event in page["list"]:
            assert event["featureId"] == FEATURE
            assert event["customerId"] == customer_id
        pages += 1
        if page["nextCursor"] is None:
            break
        cursor = page["nextCursor"]
        assert pages < 10
    assert len(seen) == len(set(seen)) == 5
    assert pages == 3


def test_aggregate_events_totals_by_feature_id(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    attach_free(client, customer_id)
    for value in (2, 3):
        reference.autumn.track(customer_id=customer_id, feature_id=FEATURE, value=value)
    aggregate = ok(
        post(client, "aggregateEvents", {"featureId": FEATURE, "range": "7d", "binSize": "day"}, customer_id)
    )
    assert aggregate["total"][FEATURE]["sum"] == 5
    assert aggregate["total"][FEATURE]["count"] == 2
    assert sum(period["values"].get(FEATURE, 0) for period in aggregate["list"]) == 5


def test_get_entity_of_the_identified_customer_only(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    ok(post(client, "getOrCreateCustomer", {}, customer_id))
    reference.autumn.entities.create(
        customer_id=customer_id, feature_id=SEATS, entity_id="seat_1", name="Seat one"
    )
    entity = ok(post(client, "getEntity", {"entityId": "seat_1"}, customer_id))
    assert entity["id"] == "seat_1"
    assert entity["name"] == "Seat one"
    assert entity["customerId"] == customer_id
    assert entity["featureId"] == SEATS

    other = reference.new_customer_id("other")
    ok(post(client, "getOrCreateCustomer", {}, other))
    foreign = post(client, "getEntity", {"entityId": "seat_1", "customerId": customer_id}, other)
    assert foreign.status == 404
    assert foreign.json["statusCode"] == 404


def test_referral_codes_are_created_and_redeemed_for_the_identified_customers(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    attach_free(client, customer_id)
    created = ok(post(client, "createReferralCode", {"programId": REFERRAL_PROGRAM}, customer_id))
    assert created["customerId"] == customer_id
    assert created["code"]
    assert "createdAt" in created
    again = ok(post(client, "createReferralCode", {"programId": REFERRAL_PROGRAM}, customer_id))
    assert again["code"] == created["code"]

    own = post(client, "redeemReferralCode", {"code": created["code"]}, customer_id)
    assert own.status == 400
    assert own.json["code"] == "customer_cannot_redeem_own_code"

    friend = reference.new_customer_id("friend")
    attach_free(client, friend)
    redeemed = ok(post(client, "redeemReferralCode", {"code": created["code"]}, friend))
    assert redeemed["customerId"] == friend
    assert redeemed["rewardId"] == "referral_bonus"
    assert redeemed["id"]
    referrer = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert referrer["balances"][FEATURE]["remaining"] == FREE_INCLUDED + REFERRAL_BONUS


def test_an_injected_client_needs_no_secret_key(
    framework: str, reference: LiveAutumn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTUMN_SECRET_KEY", raising=False)
    sdk: Autumn | AsyncAutumn
    if framework == "flask":
        sdk = Autumn(secret_key=reference.secret_key, server_url=reference.url)
    else:
        sdk = AsyncAutumn(secret_key=reference.secret_key, server_url=reference.url)
    options = HandlerOptions(secret_key=None, autumn_url=None, client=sdk)
    customer_id = reference.new_customer_id("injected")
    with handler_client(framework, options) as client:
        customer = ok(post(client, "getOrCreateCustomer", {}, customer_id))
    assert customer["id"] == customer_id
