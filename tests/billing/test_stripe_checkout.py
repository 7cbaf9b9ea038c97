"""Stripe organizations take cards through Stripe Checkout (``mode=setup``), over real HTTP with localstripe.

The server's order summary shows what is due today and sends the payer on to Stripe's page; Stripe
sends them back to the server's return route, and ``checkout.session.completed`` reaches the org's
webhook endpoint: whichever comes first saves the card and continues the checkout, exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, fresh_database_url, postgres_available, run_server

from .helpers import ms
from .localstripe_server import (
    localstripe,
    pay_through_stripe_checkout,
    stripe_checkout_url,
    submit_stripe_card,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

START = ms(2026, 4, 1)
WEBHOOK_SECRET = "whsec_checkout_tenant"
SUCCESS_URL = "https://app.example.com/billing/done"


class Tenant:
    """An organization with its own Stripe key (on localstripe) and Stripe webhook secret."""

    def __init__(self, server: RunningServer, api_base: str) -> None:
        self.server, self.api_base = server, api_base
        slug = "t-" + secrets.token_hex(4)
        self.stripe_key = f"sk_test_{slug.replace('-', '_')}"
        created = self.platform("organizations", user_email="o@example.com", name=slug, slug=slug, env="test")
        self.key = str(created["test_secret_key"])
        saved = self.platform(
            "organizations/stripe",
            organization_slug=slug,
            test_secret_key=self.stripe_key,
            test_webhook_secret=WEBHOOK_SECRET,
        )
        self.org_id = str(saved["organization"]["id"])
        self.stripe = stripe.StripeClient(self.stripe_key, base_addresses={"api": api_base})
        self("plans.create", plan_id="pro", name="Pro", price={"amount": 20, "interval": "month"})

    def platform(self, path: str, **body: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.server.url}/v1/platform/{path}", json=body, headers=self.server.headers, timeout=30
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def __call__(self, op: str, **body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = httpx.post(f"{self.server.url}/v1/{op}", json=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def customer(self, customer_id: str = "u1") -> dict[str, Any]:
        return self("customers.get", customer_id=customer_id, expand=["invoices", "payment_method"])

    def plans(self, customer_id: str = "u1") -> list[tuple[str, str]]:
        return [(s["plan_id"], s["status"]) for s in self.customer(customer_id)["subscriptions"]]

    def invoices(self, customer_id: str = "u1") -> list[tuple[float, str]]:
        return [(i["total"], i["status"]) for i in self.customer(customer_id)["invoices"]]

    def attach(self, customer_id: str = "u1", **extra: Any) -> str:
        self("customers.get_or_create", customer_id=customer_id, email=f"{customer_id}@example.com")
        attached = self(
            "billing.attach", customer_id=customer_id, plan_id="pro", success_url=SUCCESS_URL, **extra
        )
        return str(attached["payment_url"])

    def listen(self) -> None:
        """localstripe delivers ``checkout.session.completed`` (signed) to this org's endpoint."""
        hook = {
            "url": f"{self.server.url}/webhooks/stripe/{self.org_id}/sandbox",
            "secret": WEBHOOK_SECRET,
            "events": ["checkout.session.completed"],
        }
        assert httpx.post(f"{self.api_base}/_config/webhooks/{self.org_id}", json=hook).status_code == 200

    def events(self) -> list[str]:
        state = self.server.app.state.autumn
        with state.db.read() as conn:
            rows = conn.exec_driver_sql("SELECT event_type FROM stripe_events ORDER BY pk").all()
        return [str(kind) for (kind,) in rows]

    def wait_for_events(self, count: int) -> list[str]:
        """Wait until localstripe's webhook deliveries were recorded (it posts about a second later)."""
        pause = threading.Event()
        for _ in range(600):
            seen = self.events()
            if len(seen) >= count:
                return seen
            pause.wait(0.05)
        raise AssertionError(f"only {self.events()} delivered")

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Post an event signed the way Stripe signs: HMAC-SHA256 of ``{t}.{payload}``."""
        payload = json.dumps(event)
        stamp = int(time.time())
        mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
        response = httpx.post(
            f"{self.server.url}/webhooks/stripe/{self.org_id}/sandbox",
            content=payload,
            headers={"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stripe_default_card(self) -> str | None:
        stripe_id = self.customer()["processors"]["stripe"]["id"]
        return self.stripe.v1.customers.retrieve(stripe_id).invoice_settings.default_payment_method


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tenant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    with localstripe() as api_base, fresh_database_url(request.param) as url:
        monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
        monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        with run_server(url, clock=ManualClock(START)) as running:
            yield Tenant(running, api_base)


def checkout_id_of(response: httpx.Response) -> str:
    """The Checkout Session id Stripe put into the server's return URL."""
    return parse_qs(urlsplit(str(response.headers["location"])).query)["checkout_session"][0]


def test_attach_without_a_card_pays_on_stripe_checkout_after_the_order_summary(tenant: Tenant) -> None:
    url = tenant.attach()
    summary = httpx.get(url)
    assert summary.status_code == 200
    assert 'id="checkout-total">$20.00<' in summary.text  # what is due today, before paying
    assert 'id="stripe-button"' in summary.text and 'name="card_number"' not in summary.text
    # Raw card numbers are refused by a Stripe organization's page: nothing reaches Stripe or the records.
    typed = httpx.post(url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert typed.status_code == 400 and "Stripe" in typed.text
    assert tenant.customer()["payment_method"] is None

    stripe_url = stripe_checkout_url(url)
    assert stripe_url.startswith(f"{tenant.api_base}/c/pay/cs_test_")
    assert stripe_checkout_url(url) == stripe_url  # going back and forth reuses the open session
    done = submit_stripe_card(stripe_url, "4242424242424242")
    assert done.status_code == 303
    checkout_id = checkout_id_of(done)
    back = httpx.get(str(done.headers["location"]))
    assert back.status_code == 303 and back.headers["location"] == SUCCESS_URL

    assert tenant.plans() == [("pro", "active")]
    assert tenant.invoices() == [(20, "paid")]
    session = tenant.stripe.v1.checkout.sessions.retrieve(checkout_id, {"expand": ["setup_intent"]})
    assert (session.mode, session.status, session.setup_intent.status) == ("setup", "complete", "succeeded")
    card = tenant.customer()["payment_method"]
    assert card["card"]["last4"] == "4242"
    assert tenant.stripe_default_card() == session.setup_intent.payment_method
    # Back on the summary page afterwards: it is paid, the payer goes on to success_url.
    again = httpx.get(url)
    assert again.status_code == 303 and again.headers["location"] == SUCCESS_URL


def test_a_declined_card_then_a_charge_decline_then_success(tenant: Tenant) -> None:
    url = tenant.attach()
    stripe_url = stripe_checkout_url(url)
    declined = submit_stripe_card(stripe_url, "4000000000000002")
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    assert tenant.plans() == [] and tenant.invoices() == []

    # Saved fine on Stripe's page, but the charge is declined: the summary shows why, nothing starts.
    saved_then_declined = pay_through_stripe_checkout(stripe_url, "4000000000000341")
    assert saved_then_declined.status_code == 402
    assert "Your card was declined." in saved_then_declined.text
    assert 'id="stripe-button"' in saved_then_declined.text
    assert tenant.plans() == [] and tenant.invoices() == [(20, "open")]

    paid = pay_through_stripe_checkout(url, "4242424242424242")  # a new Checkout Session
    assert paid.status_code == 303 and paid.headers["location"] == SUCCESS_URL
    assert tenant.plans() == [("pro", "active")]
    assert tenant.invoices() == [(20, "paid")]  # the same invoice, paid once
    assert tenant.customer()["payment_method"]["card"]["last4"] == "4242"


def test_three_d_secure_on_stripe_and_at_the_charge(tenant: Tenant) -> None:
    # 3155: authenticated once on Stripe's page, then the off-session charge needs nothing more.
    url = tenant.attach()
    stripe_url = stripe_checkout_url(url)
    failed = submit_stripe_card(stripe_url, "4000002500003155", authenticate=False)
    assert failed.status_code == 402 and "unable to authenticate" in failed.text
    paid = pay_through_stripe_checkout(stripe_url, "4000002500003155")
    assert paid.status_code == 303 and paid.headers["location"] == SUCCESS_URL
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]

    # 3184 asks again for the charge: the server's authentication step, as after its own card form.
    url = tenant.attach("u2")
    back = pay_through_stripe_checkout(url, "4000002760003184")
    assert back.status_code == 303 and back.headers["location"].endswith("/authenticate")
    assert tenant.plans("u2") == []
    step = httpx.post(f"{url}/authenticate", data={"decision": "complete"})
    assert step.status_code == 303 and step.headers["location"] == SUCCESS_URL
    assert tenant.plans("u2") == [("pro", "active")] and tenant.invoices("u2") == [(20, "paid")]


def test_setup_payment_and_the_portal_go_to_stripe_checkout(tenant: Tenant) -> None:
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    setup = tenant("billing.setup_payment", customer_id="u1", plan_id="pro", success_url=SUCCESS_URL)
    assert setup["url"].startswith(f"{tenant.api_base}/c/pay/cs_test_")  # nothing due: straight to Stripe
    done = pay_through_stripe_checkout(setup["url"], "4242424242424242")
    assert done.status_code == 303 and done.headers["location"] == SUCCESS_URL
    assert tenant.customer()["payment_method"]["card"]["last4"] == "4242"
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]

    portal = tenant("billing.open_customer_portal", customer_id="u1")["url"]
    page = httpx.get(portal)
    assert 'id="stripe-button"' in page.text and 'name="card_number"' not in page.text
    updated = pay_through_stripe_checkout(portal, "5555555555554444")
    assert updated.status_code == 303 and updated.headers["location"].endswith("notice=card_saved")
    assert tenant.customer()["payment_method"]["card"]["last4"] == "4444"
    assert "ending in 4444" in httpx.get(portal).text


@pytest.mark.parametrize("first", ["webhook", "return"])
def test_webhook_and_return_complete_the_checkout_exactly_once(tenant: Tenant, first: str) -> None:
    tenant.listen()
    url = tenant.attach()
    done = submit_stripe_card(stripe_checkout_url(url), "4242424242424242")
    assert done.status_code == 303
    if first == "webhook":
        assert tenant.wait_for_events(1) == ["checkout.session.completed"]
        assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]
        back = httpx.get(str(done.headers["location"]))
    else:
        back = httpx.get(str(done.headers["location"]))
        assert tenant.plans() == [("pro", "active")]
        assert tenant.wait_for_events(1) == ["checkout.session.completed"]
    assert back.status_code == 303 and back.headers["location"] == SUCCESS_URL
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]
    stripe_customer = tenant.customer()["processors"]["stripe"]["id"]
    assert len(tenant.stripe.v1.payment_methods.list({"customer": stripe_customer, "type": "card"}).data) == 1

    # Another delivery of the same session (a new event id) and a repeated return change nothing.
    checkout = tenant.stripe.v1.checkout.sessions.retrieve(checkout_id_of(done)).to_dict()
    redelivered = {
        "id": "evt_" + secrets.token_hex(8),
        "object": "event",
        "type": "checkout.session.completed",
    }
    result = tenant.send({**redelivered, "data": {"object": checkout}})
    assert result == {"received": True, "result": "already_applied"}
    assert tenant.send({**redelivered, "data": {"object": checkout}}) == {"received": True, "duplicate": True}
    assert httpx.get(str(done.headers["location"])).headers["location"] == SUCCESS_URL
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]


def test_cancel_on_stripe_leaves_nothing_attached(tenant: Tenant) -> None:
    url = tenant.attach()
    stripe_url = stripe_checkout_url(url)
    page = httpx.get(stripe_url)
    assert f"href='{url}'" in page.text  # Stripe's back link: the order summary
    back = httpx.get(url)
    assert back.status_code == 200 and 'id="stripe-button"' in back.text
    assert tenant.plans() == [] and tenant.invoices() == []
    assert tenant.customer()["payment_method"] is None
    checkout_id = stripe_url.rsplit("/", 1)[1]
    assert tenant.stripe.v1.checkout.sessions.retrieve(checkout_id).status == "open"
    # A return for a Checkout that was never completed does nothing either.
    bogus = httpx.get(f"{url}/stripe-return?checkout_session={checkout_id}")
    assert bogus.status_code == 303 and urlsplit(bogus.headers["location"]).path == urlsplit(url).path
    assert tenant.plans() == [] and tenant.invoices() == []

    # The caller's own cancel URL, when given, is where Stripe's back link goes.
    cancel = "https://app.example.com/pricing"
    other = tenant.attach("u2", checkout_session_params={"cancel_url": cancel})
    checkout_id = stripe_checkout_url(other).rsplit("/", 1)[1]
    assert tenant.stripe.v1.checkout.sessions.retrieve(checkout_id).cancel_url == cancel


def test_paying_with_the_saved_card_expires_the_open_stripe_checkout(tenant: Tenant) -> None:
    """``redirect_mode: always`` with a card on file: the summary offers it; an abandoned Stripe
    Checkout of the same summary can no longer complete afterwards."""
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    setup = tenant("billing.setup_payment", customer_id="u1")
    assert pay_through_stripe_checkout(setup["url"]).status_code == 303
    url = tenant.attach(redirect_mode="always")
    assert "Pay with Visa ending in 4242" in httpx.get(url).text
    stripe_url = stripe_checkout_url(url)
    paid = httpx.post(url, data={"use_saved": "1"})
    assert paid.status_code == 303 and paid.headers["location"] == SUCCESS_URL
    checkout_id = stripe_url.rsplit("/", 1)[1]
    assert tenant.stripe.v1.checkout.sessions.retrieve(checkout_id).status == "expired"
    assert httpx.get(stripe_url).status_code == 410
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_a_person_pays_through_stripe_checkout_in_chromium(chromium: Browser, tenant: Tenant) -> None:
    """The summary, Continue to Stripe, a declined card on Stripe's page, then a 3-D Secure card, and
    back to the app's success_url with the plan active."""
    success_url = f"{tenant.server.url}/?paid=1"
    tenant("customers.get_or_create", customer_id="u1", email="ada@example.com")
    url = tenant("billing.attach", customer_id="u1", plan_id="pro", success_url=success_url)["payment_url"]
    page = chromium.new_page()
    try:
        page.goto(url)
        assert page.locator("#checkout-total").inner_text() == "$20.00"
        assert page.locator("#card-number").count() == 0
        page.click("#stripe-button")
        page.wait_for_url(f"{tenant.api_base}/c/pay/**")

        page.get_by_label("Card number").fill("4000 0000 0000 0002")
        page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.click("#submitButton")
        assert "Your card was declined." in page.locator("#card-errors").inner_text()
        assert tenant.plans() == []

        page.get_by_label("Card number").fill("4000 0025 0000 3155")
        page.get_by_label("Expiration (MM / YY)").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.click("#submitButton")
        page.click("#test-source-authorize-3ds")
        page.wait_for_url(success_url)
    finally:
        page.close()
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]
    assert tenant.customer()["payment_method"]["card"]["last4"] == "3155"


def test_a_declined_saved_card_retries_with_a_new_card_on_stripe(tenant: Tenant) -> None:
    """attach charges the saved card off-session; it is declined, so the retry link's summary sends the
    payer to Stripe Checkout for another card, which pays the same open invoice."""
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    setup = tenant("billing.setup_payment", customer_id="u1")
    assert pay_through_stripe_checkout(setup["url"], "4000000000000341").status_code == 303
    attached = tenant("billing.attach", customer_id="u1", plan_id="pro", success_url=SUCCESS_URL)
    assert attached["required_action"]["code"] == "payment_failed"
    assert attached["invoice"]["status"] == "open" and attached["invoice"]["total"] == 20
    summary = httpx.get(attached["payment_url"])
    assert 'id="checkout-total">$20.00<' in summary.text and 'id="stripe-button"' in summary.text
    paid = pay_through_stripe_checkout(attached["payment_url"], "4242424242424242")
    assert paid.status_code == 303 and paid.headers["location"] == SUCCESS_URL
    assert tenant.plans() == [("pro", "active")] and tenant.invoices() == [(20, "paid")]
    assert tenant.customer()["payment_method"]["card"]["last4"] == "4242"
