"""A paying customer and an admin in headless Chromium (Debian's, driven by Playwright).

Every hosted page and every dashboard area through its main paths and its errors, under the pages' real
Content-Security-Policy (a violation reported on the console fails the test); each page is checked with
axe-core (no serious or critical issue) and screenshotted into ``tests/artifacts/screenshots``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pypdf import PdfReader

from .helpers import ADMIN, RIVAL_ADMIN, Seeded, create_admin_cli, seeded_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

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
AXE = Path(__file__).parents[1] / "browser" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(__file__).parents[1] / "artifacts" / "screenshots"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: run tests/browser/setup.sh first)", pytrace=False)
    pytest.skip(f"{reason}; run tests/browser/setup.sh")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed")
    if not AXE.is_file():
        _missing(f"axe-core is not installed ({AXE})")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    with seeded_server("sqlite") as seeded, pytest.MonkeyPatch.context() as patch:
        assert create_admin_cli(seeded.server.database_url, "org_default", *ADMIN, patch) == 0
        assert create_admin_cli(seeded.server.database_url, "org_rival", *RIVAL_ADMIN, patch) == 0
        yield seeded


class Checked:
    """A page whose CSP violations are collected, with axe and screenshot checks."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.csp_violations: list[str] = []
        page.on("console", self._console)
        self.axe_source = AXE.read_text()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def check(self, name: str, width: int = 1200) -> None:
        """axe-core on the page as it is now (no serious or critical issue), then a screenshot."""
        page = self.page
        page.set_viewport_size({"width": width, "height": 900})
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(f"{self.axe_source}\n;window.axe = axe; 0")
        result = page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
            "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert serious == [], f"{name}: {serious}"
        assert self.csp_violations == [], f"{name}: {self.csp_violations}"


@pytest.fixture
def checked(chromium: Browser) -> Iterator[Checked]:
    context = chromium.new_context()
    context.set_default_timeout(20_000)
    try:
        yield Checked(context.new_page())
    finally:
        context.close()


def fill_card(
    page: Page, number: str, expiry: str = "12/34", cvc: str = "123", name: str | None = None
) -> None:
    if name is not None:
        page.fill("#cardholder-name", name)
    page.fill("#card-number", number)
    page.fill("#card-expiry", expiry)
    page.fill("#card-cvc", cvc)


def test_hosted_pages_as_a_paying_customer(seeded: Seeded, checked: Checked) -> None:
    page = checked.page
    seeded.api("customers.get_or_create", customer_id="carol", email="carol@example.com").raise_for_status()
    attach = seeded.api("billing.attach", customer_id="carol", plan_id="pro").json()
    page.goto(attach["payment_url"])
    assert page.locator("#test-mode-badge").is_visible()
    assert "Then $20.00/month" in page.locator("#checkout-recurring").inner_text()
    checked.check("checkout")

    page.click("#pay-button")  # an empty form names the card number first
    assert page.locator("#card-error").inner_text() == "Enter your card number."
    assert page.locator("#card-number").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "card-number"
    checked.check("checkout-empty-form-error", width=375)

    fill_card(page, "4000 0000 0000 0002", name="Carol Payer")
    page.click("#pay-button")
    assert "declined" in page.locator("#card-error").inner_text()
    assert page.input_value("#cardholder-name") == "Carol Payer" and page.input_value("#card-number") == ""
    assert page.input_value("#card-expiry") == "12/34"
    checked.check("checkout-declined")

    fill_card(page, "4242 4242 4242 4242")
    page.click("#pay-button")
    page.wait_for_selector("#done-amount")
    assert page.locator("#done-amount").inner_text() == "$20.00"
    checked.check("checkout-thank-you")

    page.click("#receipt-link")
    page.wait_for_selector("#invoice-lines")
    assert "Visa ending in 4242" in page.locator("#invoice-card").inner_text()
    lines = page.locator("#invoice-lines tbody tr").all_inner_texts()
    checked.check("invoice")
    with page.expect_download() as download_info:
        page.click("#invoice-pdf-link")
    pdf_path = download_info.value.path()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(pdf_path).read_bytes())).pages)
    assert lines and all(line.split("\t")[0].strip() in text for line in lines)

    portal = seeded.api(
        "billing.open_customer_portal", customer_id="carol", return_url=seeded.url + "/"
    ).json()
    page.goto(portal["url"])
    assert "$20.00/month" in page.locator("#portal-plans").inner_text()
    checked.check("portal")
    page.click("#cancel-pro")
    assert page.locator("#confirm-title").inner_text() == "Cancel Pro?"
    checked.check("portal-cancel-confirm")
    page.click("#confirm-button")
    assert "canceled" in page.locator("#portal-notice").inner_text()
    page.click("#uncancel-pro")
    assert "renew" in page.locator("#portal-notice").inner_text()
    page.click("#return-link")
    assert page.url == seeded.url + "/"


def test_portal_switch_and_setup_page(seeded: Seeded, checked: Checked) -> None:
    page = checked.page
    seeded.api(
        "plans.create", plan_id="premium", name="Premium", price={"amount": 50, "interval": "month"}
    ).raise_for_status()
    seeded.api("customers.get_or_create", customer_id="dave", email="dave@example.com").raise_for_status()
    setup = seeded.api("billing.setup_payment", customer_id="dave").json()
    page.goto(setup["url"])
    checked.check("setup")
    fill_card(page, "4242 4242 4242 4242", expiry="01/20")
    page.click("#pay-button")
    assert page.locator("#card-expiry").get_attribute("aria-invalid") == "true"
    fill_card(page, "4242 4242 4242 4242")
    page.click("#pay-button")
    page.wait_for_selector("#done-title")
    seeded.api("billing.attach", customer_id="dave", plan_id="pro").raise_for_status()
    portal = seeded.api("billing.open_customer_portal", customer_id="dave").json()
    page.goto(portal["url"])
    page.click("#switch-premium")
    assert page.locator("#confirm-title").inner_text() == "Switch to Premium?"
    assert page.locator("#switch-total").inner_text().startswith("$")
    checked.check("portal-switch-preview")
    page.click("#confirm-button")
    assert "changed" in page.locator("#portal-notice").inner_text()
    subs = {s["plan_id"] for s in seeded.api("customers.get", customer_id="dave").json()["subscriptions"]}
    assert "premium" in subs and "pro" not in subs


def sign_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/dashboard/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")


def test_dashboard_sign_in_and_refusals(seeded: Seeded, checked: Checked) -> None:
    page = checked.page
    page.goto(f"{seeded.url}/dashboard/sandbox/customers/ada")
    assert "/dashboard/login?next=" in page.url  # signing in is required
    checked.check("dashboard-sign-in")
    page.fill("#email", ADMIN[0])
    page.fill("#password", "not the password")
    page.click("#sign-in")
    assert page.locator("#error").inner_text() == "Wrong email or password."
    page.fill("#password", ADMIN[1])
    page.click("#sign-in")
    page.wait_for_selector("#customer-title")  # back where the admin was going
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["autumn_dashboard"]["httpOnly"] and cookies["autumn_dashboard"]["sameSite"] == "Strict"

    page.goto(f"{seeded.url}/dashboard/sandbox/customers/rival_customer")
    assert page.locator("#message-title").inner_text() == "Not found"  # another organization's customer

    page.goto(f"{seeded.url}/dashboard/sandbox/customers/ada")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')")
    page.fill("#balance-amount", "5")
    page.click("#adjust-balance")
    assert page.locator("#message-title").inner_text() == "Refused"
    checked.check("dashboard-csrf-refused")
    page.goto(f"{seeded.url}/dashboard/sandbox")
    page.click("#sign-out")
    page.goto(f"{seeded.url}/dashboard/sandbox")
    assert "/dashboard/login" in page.url


def test_dashboard_areas(seeded: Seeded, checked: Checked) -> None:
    from playwright.sync_api import expect

    page = checked.page
    sign_in(page, seeded.url, *ADMIN)
    page.wait_for_selector("#count-sandbox-customers")
    assert page.locator("#count-live-customers").inner_text() == "0"  # sandbox and live side by side
    checked.check("dashboard-overview")

    page.click("#nav-customers")
    page.fill("#q", "lovelace")
    expect(page.locator("#customer-rows tr")).to_have_count(1)
    assert "Ada Lovelace" in page.locator("#customer-rows").inner_text()  # htmx replaced the rows
    checked.check("dashboard-customers")
    page.click("text=Ada Lovelace")
    page.wait_for_selector("#usage-chart[data-drawn=true]")  # the uPlot chart drew
    checked.check("dashboard-customer")

    page.select_option("#attach-plan", "pro")
    page.click("#preview-attach")
    page.wait_for_selector("#preview-total")
    assert "20.00" in page.locator("#preview-total").inner_text()
    checked.check("dashboard-attach-preview")
    page.click("#confirm-attach")
    assert "/checkout/" in page.locator("#payment-url").inner_text()  # no card: a checkout link to send

    page.select_option("#balance-feature", "messages")
    page.fill("#balance-amount", "abc")
    page.click("#adjust-balance")
    assert "must be a number" in page.locator("#error").inner_text()
    page.fill("#balance-amount", "10")
    page.click("#adjust-balance")
    assert "adjusted" in page.locator("#notice").inner_text()
    page.click("#advance-clock")
    assert "clock" in page.locator("#notice").inner_text()

    page.click("#nav-catalog")
    page.click("#feature-form >> xpath=.. >> summary")
    page.fill("#feature-id", "exports")
    page.fill("#feature-name", "Exports")
    page.click("#create-feature")
    assert "created" in page.locator("#notice").inner_text()
    page.click("#plan-form >> xpath=.. >> summary")
    page.fill("#plan-id", "")
    page.click("#save-plan")
    assert page.locator("#error").is_visible()  # the API's validation, on the page
    checked.check("dashboard-catalog")
    page.click("#edit-plan-pro")
    page.fill("#edit-items", "[{")
    page.click("#save-plan-edit")
    assert "not valid JSON" in page.locator("#plan-error").inner_text()
    assert page.locator("#edit-items").input_value() == "[{"  # what was typed is kept
    checked.check("dashboard-plan-edit")

    page.click("#nav-developers")
    page.fill("#key-name", "browser")
    page.click("#create-key")
    key = page.locator("#revealed-secret").inner_text()
    assert (
        httpx.post(
            f"{seeded.url}/v1/customers.list", json={}, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    checked.check("dashboard-developers")
    key_id = re.search(r"New key (\S+):", page.locator("#revealed-key").inner_text())
    assert key_id is not None
    page.goto(f"{seeded.url}/dashboard/sandbox/developers")
    assert page.locator("#revealed-secret").count() == 0  # revealed once
    page.click(f"#revoke-{key_id.group(1)}")
    assert "revoked" in page.locator("#notice").inner_text()

    page.click("#nav-settings")
    page.fill("#brand-name", "Acme Cloud")
    page.fill("#brand-logo", "http://insecure.example/logo.png")
    page.click("#save-branding")
    assert "https" in page.locator("#error").inner_text()
    page.fill("#brand-logo", "")
    page.fill("#brand-website", "https://app.acme.test/")
    page.click("#save-branding")
    assert "Branding saved" in page.locator("#notice").inner_text()
    checked.check("dashboard-settings")
    page.click("#env-live")
    assert "/dashboard/live" in page.url
