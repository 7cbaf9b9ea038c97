"""A person paying on the hosted checkout page in headless Chromium, then cancelling in the portal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer, run_server
from tests.catalogue import seed_free_and_pro

from .helpers import ms

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with run_server(clock=ManualClock(ms(2026, 4, 1))) as running:
        with running.client() as client:
            seed_free_and_pro(client)
            client.post(
                "/v1/customers.get_or_create", json={"customer_id": "u1", "email": "ada@example.com"}
            ).raise_for_status()
        yield running


def call(server: RunningServer, op: str, **body: object) -> dict[str, object]:
    response = httpx.post(f"{server.url}/v1/{op}", json=body, headers=server.headers, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def test_checkout_decline_then_authentication_then_portal_cancel(
    chromium: Browser, server: RunningServer
) -> None:
    success_url = f"{server.url}/"
    attach = call(server, "billing.attach", customer_id="u1", plan_id="pro", success_url=success_url)
    page = chromium.new_page()
    try:
        page.goto(str(attach["payment_url"]))
        assert page.locator("#checkout-total").inner_text() == "$20.00"
        assert page.get_by_label("Card number").get_attribute("id") == "card-number"

        page.fill("#card-number", "4000 0000 0000 0002")
        page.fill("#card-expiry", "12/34")
        page.fill("#card-cvc", "123")
        page.click("#pay-button")
        assert "Your card was declined." in page.locator("#card-error").inner_text()

        page.fill("#card-number", "4000 0025 0000 3155")
        page.fill("#card-expiry", "12/34")
        page.fill("#card-cvc", "123")
        page.click("#pay-button")
        page.wait_for_selector("#authenticate-button")
        page.click("#authenticate-button")
        page.wait_for_url(success_url)

        customer = call(server, "customers.get", customer_id="u1", expand=["invoices"])
        assert [s["plan_id"] for s in customer["subscriptions"]] == ["pro"]  # type: ignore[attr-defined]
        assert [i["total"] for i in customer["invoices"]] == [20]  # type: ignore[attr-defined]

        portal = call(server, "billing.open_customer_portal", customer_id="u1")
        page.goto(str(portal["url"]))
        assert "Visa ending in 3155" in page.locator("#payment-method").inner_text()
        assert "$20.00" in page.locator("#portal-invoices").inner_text()
        page.click("#cancel-pro")
        assert "Cancel Pro?" in page.locator("#confirm-title").inner_text()
        page.click("#confirm-button")
        assert "canceled" in page.locator("#portal-notice").inner_text()
        assert page.locator("#cancel-pro").count() == 0
    finally:
        page.close()
    subs = {s["plan_id"]: s for s in call(server, "customers.get", customer_id="u1")["subscriptions"]}  # type: ignore[attr-defined]
    assert subs["pro"]["canceled_at"] is not None and subs["free"]["status"] == "scheduled"
