"""The hosted pages driven over real HTTP with the local processor."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import Connection, select
from starlette.applications import Starlette

from reference_server.billing.sessions import (
    create_checkout_session,
    create_portal_session,
    create_setup_session,
)
from reference_server.clock import ManualClock
from reference_server.engine.billing import quote_attach
from reference_server.pages import PageActions, PagesContext, PortalSubscription, billing_page_routes
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registry import Processors
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.db import Database
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.payment_methods import PaymentMethodInfo, default_payment_method
from reference_server.store.tables.billing import charges, invoices
from reference_server.store.tables.core import customers, plans
from reference_server.store.tables.dashboard import set_branding
from tests.engine.builders import PRO, ms

from .fixtures_db import add_customer, add_org, migrated_database
from .serve import serve

NOW = ms(2026, 4, 1)


@dataclass
class Recorder:
    """Hooks that record what the pages asked the core to do."""

    completed: list[tuple[str, str | None]] = field(default_factory=list)
    setups: list[tuple[str, str]] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)

    def complete_checkout(
        self, conn: Connection, session: SessionRecord, invoice: InvoiceRecord | None, now: int
    ) -> None:
        self.completed.append((session.action["plan_id"], invoice.status if invoice else None))

    def complete_setup(
        self, conn: Connection, session: SessionRecord, pm: PaymentMethodInfo, now: int
    ) -> None:
        self.setups.append((session.action.get("plan_id", ""), pm.last4))

    def cancel(self, conn: Connection, customer_pk: int, plan_id: str, now: int) -> None:
        self.canceled.append(plan_id)

    def subscriptions(self, conn: Connection, customer_pk: int, now: int) -> list[PortalSubscription]:
        canceled = "pro" in self.canceled
        return [
            PortalSubscription(
                "pro", "Pro", "canceling" if canceled else "active", "2026-05-01", not canceled
            )
        ]


@dataclass
class Harness:
    db: Database
    customer: CustomerRef
    base_url: str
    client: httpx.Client
    recorder: Recorder
    org_pk: int

    def checkout(self, success_url: str | None = "https://example.com/welcome") -> str:
        with self.db.write() as conn:
            _, url = create_checkout_session(
                conn,
                self.customer.pk,
                quote_attach(None, PRO, NOW).due_now,
                {"plan_id": "pro", "reason": "attach"},
                NOW,
                self.base_url,
                success_url=success_url,
            )
        return url


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    db = migrated_database(tmp_path)
    org = add_org(db)
    customer = CustomerRef(add_customer(db, org, "cus_1", "ada@example.com"), "cus_1", "ada@example.com")
    recorder = Recorder()
    hooks = PageActions(
        complete_checkout=recorder.complete_checkout,
        complete_setup=recorder.complete_setup,
        cancel_subscription=recorder.cancel,
        subscriptions=recorder.subscriptions,
    )
    ctx = PagesContext(db, ManualClock(NOW), Processors(default=LocalProcessor()), hooks)
    app = Starlette(routes=billing_page_routes(ctx))
    with serve(app) as base_url, httpx.Client(base_url=base_url) as client:
        yield Harness(db, customer, base_url, client, recorder, org)
    db.dispose()


def pay(
    client: httpx.Client, url: str, number: str, expiry: str = "12/34", cvc: str = "123"
) -> httpx.Response:
    return client.post(url, data={"card_number": number, "expiry": expiry, "cvc": cvc, "name": "Ada"})


def test_checkout_page_shows_the_quote_and_test_card_hints(harness: Harness) -> None:
    page = harness.client.get(harness.checkout())
    assert page.status_code == 200
    assert 'id="card-number"' in page.text and 'id="pay-button"' in page.text
    assert 'id="checkout-total">$20.00<' in page.text
    assert "4242 4242 4242 4242" in page.text
    assert "ada@example.com" in page.text


def test_successful_payment_activates_then_redirects_to_success_url(harness: Harness) -> None:
    url = harness.checkout()
    response = pay(harness.client, url, "4242 4242 4242 4242")
    assert response.status_code == 303
    assert response.headers["location"] == "https://example.com/welcome"
    assert harness.recorder.completed == [("pro", "paid")]
    with harness.db.read() as conn:
        (invoice,) = conn.execute(select(invoices)).all()
        assert (invoice.total, invoice.status) == (2000, "paid")
        assert default_payment_method(conn, harness.customer.pk) is not None
    # Paying again does nothing: the session is complete.
    again = pay(harness.client, url, "4242 4242 4242 4242")
    assert again.status_code == 303
    assert harness.recorder.completed == [("pro", "paid")]


def test_declined_card_shows_an_error_and_can_retry(harness: Harness) -> None:
    url = harness.checkout()
    declined = pay(harness.client, url, "4000 0000 0000 0002")
    assert declined.status_code == 402
    assert 'id="card-error"' in declined.text and "Your card was declined." in declined.text
    assert harness.recorder.completed == []
    wrong = pay(harness.client, url, "1234 5678 9012 3456")
    assert wrong.status_code == 400 and "Your card number is incorrect." in wrong.text
    bad_expiry = pay(harness.client, url, "4242424242424242", expiry="1234")
    assert bad_expiry.status_code == 400 and "MM/YY" in bad_expiry.text
    ok = pay(harness.client, url, "4242424242424242")
    assert ok.status_code == 303
    assert harness.recorder.completed == [("pro", "paid")]


def test_authentication_step_then_success(harness: Harness) -> None:
    url = harness.checkout(success_url=None)
    response = pay(harness.client, url, "4000 0025 0000 3155")
    assert response.status_code == 303
    assert response.headers["location"].endswith("/authenticate")
    page = harness.client.get(response.headers["location"])
    assert 'id="authenticate-button"' in page.text and "3155" in page.text
    # Reloading the checkout while authentication is pending goes back to the authentication step.
    assert harness.client.get(url).headers["location"].endswith("/authenticate")
    failed = harness.client.post(response.headers["location"], data={"decision": "fail"})
    assert failed.status_code == 402 and "Authentication failed" in failed.text
    assert harness.recorder.completed == []
    retry = pay(harness.client, url, "4000 0025 0000 3155")
    done = harness.client.post(retry.headers["location"], data={"decision": "complete"})
    assert done.status_code == 303
    assert done.headers["location"].endswith("/complete")
    final = harness.client.get(done.headers["location"])
    assert "Payment received" in final.text
    assert harness.recorder.completed == [("pro", "paid")]
    with harness.db.read() as conn:
        statuses = [row.status for row in conn.execute(select(charges).order_by(charges.c.pk))]
    assert statuses == ["succeeded"]


def test_unknown_and_expired_sessions(harness: Harness) -> None:
    assert harness.client.get("/checkout/cs_missing").status_code == 404
    url = harness.checkout()
    with harness.db.write() as conn:
        from reference_server.store.tables.billing import billing_sessions

        conn.execute(billing_sessions.update().values(expires_at=NOW - 1))
    assert harness.client.get(url).status_code == 410


def test_setup_page_saves_a_card_and_completes(harness: Harness) -> None:
    with harness.db.write() as conn:
        _, url = create_setup_session(
            conn, harness.customer.pk, {"plan_id": "pro"}, NOW, harness.base_url, "https://example.com/saved"
        )
    page = harness.client.get(url)
    assert page.status_code == 200 and 'id="setup-plan">pro<' in page.text
    response = pay(harness.client, url, "4242424242424242")
    assert (response.status_code, response.headers["location"]) == (303, "https://example.com/saved")
    assert harness.recorder.setups == [("pro", "4242")]


def test_setup_with_authentication(harness: Harness) -> None:
    with harness.db.write() as conn:
        _, url = create_setup_session(conn, harness.customer.pk, {}, NOW, harness.base_url)
    response = pay(harness.client, url, "4000002500003155")
    done = harness.client.post(response.headers["location"], data={"decision": "complete"})
    assert done.status_code == 303
    assert harness.recorder.setups == [("", "3155")]
    with harness.db.read() as conn:
        pm = default_payment_method(conn, harness.customer.pk)
    assert pm is not None and pm.behavior == "succeed"


def test_portal_shows_plans_card_invoices_and_cancels(harness: Harness) -> None:
    pay(harness.client, harness.checkout(), "4242424242424242")
    with harness.db.write() as conn:
        _, url = create_portal_session(
            conn, harness.customer.pk, NOW, harness.base_url, "https://example.com/app"
        )
    page = harness.client.get(url)
    assert page.status_code == 200
    assert 'id="cancel-pro"' in page.text
    assert "Visa ending in 4242" in page.text
    assert "$20.00" in page.text and "paid" in page.text
    assert 'href="https://example.com/app"' in page.text
    canceled = harness.client.post(f"{url}/cancel", data={"plan_id": "pro"})
    assert canceled.status_code == 303
    after = harness.client.get(canceled.headers["location"])
    assert 'id="portal-notice"' in after.text and "canceling" in after.text
    assert 'id="cancel-pro"' not in after.text
    assert harness.recorder.canceled == ["pro"]
    updated = pay(harness.client, f"{url}/payment-method", "5555 5555 5555 4444")
    assert updated.status_code == 303
    assert "Mastercard ending in 4444" in harness.client.get(updated.headers["location"]).text
    declined = pay(harness.client, f"{url}/payment-method", "4000000000000002")
    assert declined.status_code == 402 and "declined" in declined.text


def test_invoice_page(harness: Harness) -> None:
    pay(harness.client, harness.checkout(), "4242424242424242")
    with harness.db.read() as conn:
        (invoice,) = conn.execute(select(invoices)).all()
    page = harness.client.get(invoice.hosted_url.replace(harness.base_url, ""))
    assert page.status_code == 200
    assert ">paid</strong>" in page.text and 'id="invoice-total">$20.00<' in page.text
    assert 'id="invoice-seller">Test org' in page.text
    assert "ada@example.com" in page.text and "Visa ending in 4242" in page.text
    assert harness.client.get("/invoices/in_missing").status_code == 404
    pdf = harness.client.get(f"/invoices/{invoice.id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert f'filename="invoice-{invoice.id}.pdf"' in pdf.headers["content-disposition"]
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert invoice.id in text and "Test org" in text and "Visa ending in 4242" in text
    for line in page_lines(page.text):
        assert line[0] in text and line[1] in text
    assert harness.client.get("/invoices/in_missing/pdf").status_code == 404


def page_lines(html: str) -> list[tuple[str, str]]:
    """The (description, amount) rows of the lines table of an invoice page."""
    body = html.split('id="invoice-lines"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"amount\">(.*?)</td></tr>", body)
    assert rows
    return [(unescape(d), unescape(a)) for d, a in rows]


def test_every_page_sends_the_security_headers(harness: Harness) -> None:
    url = harness.checkout()
    responses = [
        harness.client.get(url),
        pay(harness.client, url, ""),
        harness.client.get("/checkout/cs_missing"),
        pay(harness.client, url, "4242424242424242"),
    ]
    for response in responses:
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    css = harness.client.get("/static/billing/billing.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"


def test_checkout_shows_the_business_test_mode_what_recurs_and_a_way_back(harness: Harness) -> None:
    with harness.db.write() as conn:
        conn.execute(
            plans.insert().values(
                org_pk=harness.org_pk,
                env="sandbox",
                id="pro",
                version=1,
                name="Pro",
                group="",
                add_on=False,
                auto_enable=False,
                price={"amount": 20, "interval": "month"},
                items=[],
                config={},
                archived=False,
                is_latest=True,
                created_at=NOW,
            )
        )
        set_branding(conn, harness.org_pk, "Acme Cloud", "https://cdn.example.com/acme.png", None, NOW)
    page = harness.client.get(harness.checkout()).text
    assert 'id="brand-name">Acme Cloud<' in page and 'src="https://cdn.example.com/acme.png"' in page
    assert 'id="test-mode-badge"' in page
    assert "Subscribe to Pro" in page
    assert 'id="checkout-recurring">Then $20.00/month until you cancel.<' in page
    assert 'href="https://example.com/"' in page  # the success URL's origin: back to the app
    with harness.db.write() as conn:
        conn.execute(customers.update().values(env="live"))
    assert 'id="test-mode-badge"' not in harness.client.get(harness.checkout()).text


def test_errors_name_the_first_empty_field_and_keep_what_was_typed(harness: Harness) -> None:
    url = harness.checkout()
    empty = harness.client.post(url, data={"name": "", "card_number": "", "expiry": "", "cvc": ""})
    assert empty.status_code == 400 and "Enter your card number." in empty.text
    assert _invalid_field(empty.text) == "card-number"
    no_expiry = harness.client.post(
        url, data={"name": "Ada Lovelace", "card_number": "4242424242424242", "expiry": "", "cvc": ""}
    )
    assert (
        "Enter your card&#39;s expiry date" in no_expiry.text
        and _invalid_field(no_expiry.text) == "card-expiry"
    )
    assert 'value="Ada Lovelace"' in no_expiry.text
    no_cvc = harness.client.post(
        url, data={"name": "Ada Lovelace", "card_number": "4242424242424242", "expiry": "12/34", "cvc": ""}
    )
    assert _invalid_field(no_cvc.text) == "card-cvc" and 'value="12/34"' in no_cvc.text
    declined = pay(harness.client, url, "4000 0000 0000 0002")
    assert declined.status_code == 402 and _invalid_field(declined.text) == "card-number"
    assert 'value="Ada"' in declined.text
    assert (
        "4000 0000 0000 0002" not in declined.text.split('id="card-hints"')[0]
    )  # the number is never echoed
    expired = pay(harness.client, url, "4242424242424242", expiry="01/20")
    assert _invalid_field(expired.text) == "card-expiry"


def _invalid_field(html: str) -> str:
    (field_id,) = re.findall(r'<input id="([a-z-]+)"[^>]*aria-invalid="true"', html)
    return str(field_id)


def test_thank_you_page_without_success_url_shows_amount_receipt_and_way_back(harness: Harness) -> None:
    with harness.db.write() as conn:
        set_branding(conn, harness.org_pk, None, None, "https://app.example.com/", NOW)
    url = harness.checkout(success_url=None)
    paid = pay(harness.client, url, "4242424242424242")
    assert paid.headers["location"].endswith("/complete")
    done = harness.client.get(paid.headers["location"]).text
    assert 'id="done-amount">$20.00<' in done
    receipt = re.search(r'href="(/invoices/[^"]+)" id="receipt-link"', done)
    assert receipt is not None and harness.client.get(receipt.group(1)).status_code == 200
    assert 'href="https://app.example.com/" id="continue-link">Return to Test org<' in done


def test_portal_cancel_asks_for_confirmation_and_shows_dates_and_prices(harness: Harness) -> None:
    pay(harness.client, harness.checkout(), "4242424242424242")
    with harness.db.write() as conn:
        _, url = create_portal_session(
            conn, harness.customer.pk, NOW, harness.base_url, "https://example.com/app"
        )
    page = harness.client.get(url).text
    assert "Renews 2026-05-01" in page
    confirm = harness.client.get(f"{url}/cancel", params={"plan_id": "pro"})
    assert confirm.status_code == 200 and "Cancel Pro?" in confirm.text
    assert "stays active until 2026-05-01" in confirm.text and 'id="confirm-button"' in confirm.text
    assert harness.recorder.canceled == []  # looking at the question changes nothing
    assert harness.client.get(f"{url}/cancel", params={"plan_id": "nope"}).status_code == 404
