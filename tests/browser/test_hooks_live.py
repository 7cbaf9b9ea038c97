"""The real autumn-js hooks in Chromium, through each adapter, with the reference server behind.

Each test runs once per pinned autumn-js, 1.2.28 and the newest 1.x (conftest's ``web_dist``), and
once per adapter (Flask, Starlette, Litestar).

Each test serves the built test page and the handler routes from one app (same origin, as the hooks
expect by default) under a real server, opens it with the test customer in the query string (the
page turns it into the header the test apps' ``identify`` reads) and checks what the hooks render.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from handlers.apps import FRAMEWORKS, HandlerOptions, make_app
from handlers.live import FEATURE, FREE_INCLUDED, FREE_PLAN, PAID_PLAN, REFERRAL_PROGRAM, SEATS, LiveAutumn
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .servers import serve

pytestmark = pytest.mark.browser


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app_url(framework: str, reference: LiveAutumn, web_dist: Path) -> Iterator[str]:
    """The framework's app (test page + handler) on a real loopback port."""
    options = HandlerOptions(secret_key=reference.secret_key, autumn_url=reference.url)
    with serve(framework, make_app(framework, options, web_dist)) as url:
        yield url


@pytest.fixture
def customer_id(framework: str, reference: LiveAutumn) -> str:
    return reference.new_customer_id(f"cus_browser_{framework}")


def shown_json(page: Page, test_id: str) -> Any:
    """The JSON a panel renders, once it has rendered something."""
    locator = page.get_by_test_id(test_id)
    expect(locator).not_to_have_text("")
    return json.loads(locator.inner_text())


def follow_redirect(page: Page, to_origin: str) -> None:
    """Wait until a hook action redirected the page to ``to_origin``; fail with what the page shows."""
    try:
        page.wait_for_url(lambda url: url.startswith(to_origin))
    except PlaywrightTimeout:
        shown = page.get_by_test_id("action-error").inner_text()
        pytest.fail(f"the page was not redirected to {to_origin}; it shows the error {shown!r}")


def with_free_plan(reference: LiveAutumn, customer_id: str) -> None:
    reference.autumn.customers.get_or_create(customer_id=customer_id)
    reference.autumn.billing.attach(customer_id=customer_id, plan_id=FREE_PLAN)


def test_use_customer_check_and_attach_of_a_free_plan(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    page.goto(f"{app_url}/?view=customer&customer={customer_id}&feature={FEATURE}&plan={FREE_PLAN}")
    expect(page.get_by_test_id("customer-id")).to_have_text(customer_id)
    assert shown_json(page, "customer-balances") == {}
    assert shown_json(page, "check-result")["allowed"] is False

    page.get_by_test_id("attach-button").click()
    # attach answered paymentUrl null, so the hook invalidated and refetched the customer.
    expect(page.get_by_test_id("customer-subscriptions")).to_have_text(json.dumps([FREE_PLAN]))
    balances = shown_json(page, "customer-balances")
    assert list(balances) == [FEATURE]
    assert balances[FEATURE]["remaining"] == FREE_INCLUDED
    assert balances[FEATURE]["feature"]["id"] == FEATURE
    check = shown_json(page, "check-result")
    assert check["allowed"] is True
    assert check["customerId"] == customer_id
    attach_result = shown_json(page, "action-result")
    assert attach_result["customerId"] == customer_id
    assert attach_result["paymentUrl"] is None

    # Use the whole allowance server-side: after a reload the local check refuses.
    reference.autumn.track(customer_id=customer_id, feature_id=FEATURE, value=FREE_INCLUDED)
    page.reload()
    expect(page.get_by_test_id("customer-id")).to_have_text(customer_id)
    expect(page.get_by_test_id("check-result")).to_contain_text('"allowed":false')


def test_use_list_plans(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/?view=plans")
    plan_ids = shown_json(page, "plans-ids")
    assert {FREE_PLAN, PAID_PLAN} <= set(plan_ids)
    pro = next(plan for plan in shown_json(page, "plans-json") if plan["id"] == PAID_PLAN)
    assert pro["addOn"] is False
    assert pro["price"]["amount"] > 0


def test_use_list_events_pages_through_tracked_events(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    with_free_plan(reference, customer_id)
    for value in (1, 2, 3, 4, 5):
        reference.autumn.track(customer_id=customer_id, feature_id=FEATURE, value=value)
    page.goto(f"{app_url}/?view=events&customer={customer_id}&limit=2")

    seen: list[str] = []
    for page_number, size, more in ((0, 2, "true"), (1, 2, "true"), (2, 1, "false")):
        expect(page.get_by_test_id("events-page")).to_have_text(str(page_number))
        events = shown_json(page, "events-list")
        assert len(events) == size
        assert all(event["featureId"] == FEATURE for event in events)
        expect(page.get_by_test_id("events-has-more")).to_have_text(more)
        seen.extend(event["id"] for event in events)
        if more == "true":
            page.get_by_test_id("events-next").click()
    assert len(set(seen)) == 5

    page.get_by_test_id("events-prev").click()
    expect(page.get_by_test_id("events-page")).to_have_text("1")


def test_use_aggregate_events(page: Page, app_url: str, customer_id: str, reference: LiveAutumn) -> None:
    with_free_plan(reference, customer_id)
    for value in (4, 6):
        reference.autumn.track(customer_id=customer_id, feature_id=FEATURE, value=value)
    page.goto(f"{app_url}/?view=aggregate&customer={customer_id}&feature={FEATURE}")
    total = shown_json(page, "aggregate-total")
    assert total == {FEATURE: {"count": 2, "sum": 10}}
    assert shown_json(page, "aggregate-sum") == 10


def test_use_entity(page: Page, app_url: str, customer_id: str, reference: LiveAutumn) -> None:
    reference.autumn.customers.get_or_create(customer_id=customer_id)
    reference.autumn.entities.create(
        customer_id=customer_id, feature_id=SEATS, entity_id="seat_7", name="Seat 7"
    )
    page.goto(f"{app_url}/?view=entity&customer={customer_id}&entity=seat_7")
    expect(page.get_by_test_id("entity-id")).to_have_text("seat_7")
    expect(page.get_by_test_id("entity-customer-id")).to_have_text(customer_id)
    expect(page.get_by_test_id("entity-feature-id")).to_have_text(SEATS)
    expect(page.get_by_test_id("entity-error")).to_have_text("")


def test_use_referrals_create_and_redeem(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    with_free_plan(reference, customer_id)
    page.goto(f"{app_url}/?view=referrals&customer={customer_id}&program={REFERRAL_PROGRAM}")
    expect(page.get_by_test_id("referral-code")).to_have_text("")  # the query starts disabled
    page.get_by_test_id("referral-create").click()
    code_locator = page.get_by_test_id("referral-code")
    expect(code_locator).to_have_text(re.compile(r"\w+"))
    expect(page.get_by_test_id("referral-owner")).to_have_text(customer_id)
    code = code_locator.inner_text()

    friend = reference.new_customer_id("friend")
    with_free_plan(reference, friend)
    page.goto(f"{app_url}/?view=referrals&customer={friend}&program={REFERRAL_PROGRAM}")
    page.get_by_test_id("redeem-input").fill(code)
    page.get_by_test_id("redeem-button").click()
    redeemed = shown_json(page, "redeem-result")
    assert redeemed["customerId"] == friend
    assert redeemed["rewardId"]


def test_open_customer_portal_redirects(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    reference.autumn.customers.get_or_create(customer_id=customer_id)
    page.goto(f"{app_url}/?view=customer&customer={customer_id}")
    expect(page.get_by_test_id("customer-id")).to_have_text(customer_id)
    page.get_by_test_id("portal-button").click()
    follow_redirect(page, reference.url)


def test_attach_of_a_paid_plan_goes_through_checkout(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    reference.autumn.customers.get_or_create(customer_id=customer_id)
    page.goto(f"{app_url}/?view=customer&customer={customer_id}&feature={FEATURE}&plan={PAID_PLAN}")
    expect(page.get_by_test_id("customer-id")).to_have_text(customer_id)
    page.get_by_test_id("attach-button").click()

    # The hook followed paymentUrl to the reference server's checkout page.
    follow_redirect(page, reference.url)
    page.locator("#card-number").fill("4242 4242 4242 4242")
    page.locator("#card-expiry").fill("12/34")
    page.locator("#card-cvc").fill("123")
    page.locator("#pay-button").click()

    # Paid: back on the app (attach's successUrl defaults to the page), now subscribed to the plan.
    page.wait_for_url(lambda url: url.startswith(app_url), timeout=30_000)
    expect(page.get_by_test_id("customer-subscriptions")).to_contain_text(PAID_PLAN)
    expect(page.get_by_test_id("check-result")).to_contain_text('"allowed":true')


def test_upstream_errors_reach_the_hook_as_autumn_client_errors(
    page: Page, app_url: str, customer_id: str, reference: LiveAutumn
) -> None:
    reference.autumn.customers.get_or_create(customer_id=customer_id)
    page.goto(f"{app_url}/?view=customer&customer={customer_id}&plan=no_such_plan")
    expect(page.get_by_test_id("customer-id")).to_have_text(customer_id)
    page.get_by_test_id("attach-button").click()
    # The client used the handler's {message, code, statusCode} as-is.
    expect(page.get_by_test_id("action-error")).to_have_text(re.compile(r"^\w+:404:.*no_such_plan"))
