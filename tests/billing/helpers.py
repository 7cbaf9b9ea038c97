"""Shared helpers of the billing integration tests: the dates and cards of the paid scenarios, the API
clients they drive (:class:`Api` for a server-wide processor, started by :func:`running_api`; :class:`Tenant`
for an organization with its own Stripe key), the set-up the scenarios share (a customer with a card, on Pro;
the trial and pack plans), and the database failures the compensation scenarios inject.  Fixtures live in
``conftest.py``; plan builders in :mod:`tests.engine.builders`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import stripe
from sqlalchemy import func, select, text

from reference_server.clock import ManualClock
from reference_server.processors.registry import ProcessorSettings
from reference_server.store.stripe_objects import stripe_objects
from reference_server.store.tables.billing import invoices
from reference_server.store.tables.core import customers, idempotency_keys
from reference_server.testing import (
    RunningServer,
    free_port,
    fresh_database_url,
    postgres_available,
    run_server,
)
from tests.engine.builders import ms

from .localstripe_server import pay_through_stripe_checkout

# Dates and cards of the paid scenarios
START = ms(2026, 4, 1)  # a 30-day month: halfway is exactly 15 days
MAY, JUNE = ms(2026, 5, 1), ms(2026, 6, 1)
DAY = 86_400_000
GOOD, DECLINING, AUTHENTICATE_ALWAYS = "4242424242424242", "4000000000000341", "4000002760003184"


# A server-wide processor (local, or Stripe with the server's key)
STRIPE_KEY = "sk_test_api_billing"
CREDIT_LINE = "Applied customer credit"


class Api:
    def __init__(
        self,
        server: RunningServer,
        clock: ManualClock,
        processor: str = "local",
        stripe_api: str | None = None,
    ) -> None:
        """``processor``: ``"local"``, or ``"stripe"`` with ``stripe_api`` (localstripe's URL)."""
        self.server = server
        self.clock = clock
        self.processor = processor
        self.stripe_api = stripe_api
        self.http = httpx.Client(base_url=server.url, headers=server.headers, timeout=60)
        self.stripe = (
            stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_api}) if stripe_api else None
        )

    def __call__(self, op: str, expect: int = 200, **body: Any) -> dict[str, Any]:
        response = self.http.post(f"/v1/{op}", json=body)
        assert response.status_code == expect, response.text
        return dict(response.json())

    def pay(self, url: str, number: str = "4242424242424242") -> httpx.Response:
        """A payer types a card for one of the server's pages (checkout, setup, a retry link, the portal's
        payment method): on the server's own form (local), or on Stripe Checkout, which the server's page
        sends them to (Stripe; 3-D Secure when setting the card up is completed there).  The server's
        answer: a 303 when done (to ``/authenticate`` when the charge itself needs 3-D Secure), else the
        decline (402, on Stripe's page for a Stripe server)."""
        if self.stripe is None:
            return httpx.post(url, data={"card_number": number, "expiry": "12/34", "cvc": "123"})
        # The portal's "update payment method" is its own Stripe Checkout (setup) session.
        return pay_through_stripe_checkout(url.removesuffix("/payment-method"), number)

    def on_processor(self, invoice: dict[str, Any]) -> tuple[str, int]:
        """An API invoice as the processor holds it: (status, cents asked of the card, i.e. the total less
        the credit it used), from the Stripe invoice ``stripe_id`` names for a Stripe server; the local
        processor's books are the server's own invoice row."""
        if self.stripe is None:
            with self.server.app.state.autumn.db.read() as conn:
                row = conn.execute(select(invoices).where(invoices.c.id == invoice["stripe_id"])).one()
            return str(row.status), int(row.total - row.credit_applied)
        found = self.stripe.v1.invoices.retrieve(str(invoice["stripe_id"]))
        return str(found.status), int(found.amount_due)

    def card_button(self, due: str) -> str:
        """The checkout page's button for a new card when ``due`` (e.g. ``"$0.00"``) is due today."""
        if self.stripe is not None:
            return "Continue to Stripe"  # the card is typed on Stripe's page
        return "Confirm" if due == "$0.00" else f"Pay {due}"

    def authenticate(self, url: str, step: httpx.Response, decision: str = "complete") -> httpx.Response:
        """The payer's answer on the server's 3-D Secure page ``step`` redirected to (``url``: the page)."""
        assert step.status_code == 303 and step.headers["location"].endswith("/authenticate"), step.text
        return httpx.post(urljoin(url, step.headers["location"]), data={"decision": decision})

    def customer(self, customer_id: str) -> dict[str, Any]:
        return self("customers.get", customer_id=customer_id, expand=["invoices"])

    def plans_of(self, customer_id: str) -> dict[str, str]:
        subs = self.customer(customer_id)["subscriptions"]
        return {s["plan_id"]: s["status"] for s in subs}

    def add_card(self, customer_id: str, number: str = "4242424242424242") -> None:
        url = self("billing.setup_payment", customer_id=customer_id)["url"]
        response = self.pay(url, number)
        assert response.status_code == 303, response.text
        if response.headers["location"].endswith("/authenticate"):
            assert self.authenticate(url, response).status_code == 303

    def check_stripe_books(self) -> None:
        """Stripe's books agree with the server's, to the cent: each server invoice a card was asked to pay
        is one Stripe invoice on the customer's Stripe customer, in the same state, whose lines are the
        server invoice's total plus the credit it spent (one negative line), and whose total is what the
        card paid or owes; no other Stripe invoice is left open and no invoice item is left pending."""
        assert self.stripe is not None
        with self.server.app.state.autumn.db.read() as conn:
            rows = conn.execute(select(invoices).order_by(invoices.c.pk)).all()
            stripe_customers = conn.execute(
                select(customers.c.stripe_id).where(customers.c.stripe_id.is_not(None))
            )
            customer_ids = [str(stripe_id) for (stripe_id,) in stripe_customers]
        linked = {str(r.processor_id): r for r in rows if str(r.processor_id or "").startswith("in_")}
        for stripe_id, row in linked.items():
            paid = self.stripe.v1.invoices.retrieve(stripe_id)
            assert paid.metadata["autumn_invoice_id"] == row.id
            assert paid.currency == row.currency, row.id
            lines = self.stripe.v1.invoices.line_items.list(stripe_id, {"limit": 100}).data
            credit = sum(line.amount for line in lines if line.description == CREDIT_LINE)
            charged = sum(line.amount for line in lines if line.description != CREDIT_LINE)
            if (row.status, row.amount_paid, paid.status) == ("paid", 0, "void"):
                # invoiced on Stripe, then paid from the customer's credit: Stripe collected nothing
                assert (charged, row.credit_applied, paid.amount_paid) == (row.total, row.total, 0), row.id
                continue
            assert (charged, -credit) == (row.total, row.credit_applied), row.id
            assert paid.status == row.status, (row.id, row.status, paid.status)
            assert paid.total == row.total - row.credit_applied, row.id
            if row.status == "paid":
                assert paid.amount_paid == row.amount_paid == paid.total, row.id
        for row in rows:  # every card charge went through Stripe, and Stripe knows what is owed
            if (row.status == "paid" and row.amount_paid > 0) or row.status == "open":
                assert str(row.processor_id or "") in linked, (row.id, row.status)
        for customer in customer_ids:  # (localstripe is shared by the module's tests: this server's only)
            listed = self.stripe.v1.invoices.list({"customer": customer, "limit": 100}).auto_paging_iter()
            for stripe_invoice in listed:
                if stripe_invoice.id not in linked and getattr(stripe_invoice, "subscription", None):
                    # a mirrored subscription's own (its trial's 0, or voided by the pause): nothing taken
                    assert stripe_invoice.status in ("paid", "void") and stripe_invoice.amount_paid == 0
                elif stripe_invoice.id not in linked:  # an earlier attempt, replaced: nothing owed or paid
                    assert stripe_invoice.status == "void", (stripe_invoice.id, stripe_invoice.status)
            pending = self.stripe.v1.invoice_items.list({"customer": customer, "pending": True}).data
            assert list(pending) == [], customer


@contextlib.contextmanager
def running_api(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    processor: str = "local",
    start: int = START,
) -> Iterator[Api]:
    """An :class:`Api` over a server started on a fresh ``database`` at ``start`` (a manual clock), with
    ``processor`` as the server-wide default (``"stripe"``: the server's key on the module's
    ``shared_localstripe``, whose books must agree with the server's when the scenario ends); the catalogue
    is the caller's. Skips when PostgreSQL is asked for and not available."""
    if database == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    clock = ManualClock(start)
    with contextlib.ExitStack() as stack:
        stripe_api: str | None = None
        if processor == "stripe":
            stripe_api = str(request.getfixturevalue("shared_localstripe"))
            monkeypatch.setenv("AUTUMN_PAYMENT_PROCESSOR", "stripe")
            monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
            monkeypatch.setenv("STRIPE_API_BASE", stripe_api)
        else:
            monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
        url = stack.enter_context(fresh_database_url(database))
        server = stack.enter_context(run_server(url, clock=clock))
        client = Api(server, clock, processor, stripe_api)
        yield client
        if client.stripe is not None:
            client.check_stripe_books()
        client.http.close()


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
"""A fixture's databases (for :func:`running_api`, or a server of its own): SQLite and PostgreSQL."""

PROCESSORS = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("local", "postgres"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(("stripe", "sqlite"), id="stripe-sqlite"),
    pytest.param(("stripe", "postgres"), id="stripe-postgres", marks=pytest.mark.postgres),
]


def create_prepaid_team_plan(api: Api, group: str | None = None, **item_extra: Any) -> None:
    """Plan ``team``: $20/month plus prepaid messages at $10 per pack of 100 (in ``group`` when given)."""
    item: dict[str, Any] = {
        "feature_id": "messages",
        "included": 0,
        "reset": {"interval": "month"},
        "price": {"amount": 10, "interval": "month", "billing_method": "prepaid", "billing_units": 100},
        **item_extra,
    }
    grouped: dict[str, Any] = {"group": group} if group is not None else {}
    price = {"amount": 20, "interval": "month"}
    api("plans.create", plan_id="team", name="Team", **grouped, price=price, items=[item])


# Set-up the paid scenarios share, on the ``api`` fixture's catalogue (conftest.py: Free, Pro, Premium, ...)
TWO_WEEKS = {"duration_length": 14, "duration_type": "day", "card_required": True}
"""A free trial of two weeks that needs a card (a plan's, or a request's ``free_trial``)."""


def with_card(api: Api, customer_id: str = "u1") -> None:
    """The customer (made if new) with a card saved through ``billing.setup_payment``."""
    api("customers.get_or_create", customer_id=customer_id)
    api.add_card(customer_id)


def on_pro(api: Api, customer_id: str = "u1") -> None:
    """The customer, with a card, pays for Pro ($20/month) from now."""
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id="pro")
    assert api.plans_of(customer_id) == {"pro": "active"}


def invoices_of(api: Api, customer_id: str = "u1") -> list[dict[str, Any]]:
    """The customer's invoices, newest first."""
    return list(api.customer(customer_id)["invoices"])


def applied_like_preview(api: Api, update: dict[str, Any], customer_id: str = "u1") -> dict[str, Any]:
    """The preview of ``update`` for the customer, then the update: its invoice bills what the preview
    said, paid (and on Stripe, Stripe's books agree)."""
    preview = api("billing.preview_update", customer_id=customer_id, **update)
    before = len(invoices_of(api, customer_id))
    api("billing.update", customer_id=customer_id, **update)
    invoices = invoices_of(api, customer_id)
    assert len(invoices) == before + 1
    assert invoices[0]["total"] == preview["total"]
    assert invoices[0]["status"] == "paid"
    if api.stripe is not None:
        api.check_stripe_books()
    return preview


def subscription_of(api: Api, plan_id: str, customer_id: str = "u1") -> dict[str, Any]:
    """The customer's subscription to ``plan_id``."""
    subs = api.customer(customer_id)["subscriptions"]
    return dict(next(s for s in subs if s["plan_id"] == plan_id))


def subscriptions_by_plan(api: Api, customer_id: str = "u1") -> dict[str, dict[str, Any]]:
    return {s["plan_id"]: s for s in api.customer(customer_id)["subscriptions"]}


def create_trial_pro(api: Api, days: int, amount: int = 20, group: str | None = None) -> None:
    """Plan ``trial_pro``: $``amount``/month with 1000 messages a month, and a ``days``-day free trial that
    needs a card (in its own ``group``, beside Pro, when given)."""
    month = {"interval": "month"}
    grouped: dict[str, Any] = {"group": group} if group is not None else {}
    api(
        "plans.create",
        plan_id="trial_pro",
        name="Trial Pro",
        **grouped,
        price={"amount": amount, **month},
        items=[{"feature_id": "messages", "included": 1000, "reset": month}],
        free_trial={"duration_length": days, "duration_type": "day", "card_required": True},
    )


def create_pack(api: Api, amount: int = 10, included: int = 50) -> None:
    """Add-on ``pack``: a one-off purchase of ``included`` messages for $``amount``."""
    api(
        "plans.create",
        plan_id="pack",
        name="Pack",
        add_on=True,
        price={"amount": amount, "interval": "one_off"},
        items=[{"feature_id": "messages", "included": included}],
    )


def create_addon(
    api: Api,
    plan_id: str = "addon",
    amount: int = 10,
    items: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> None:
    """Add-on ``plan_id`` (named after it): $``amount``/month with ``items`` (none when not given)
    (``extra``: more of ``plans.create``'s fields, e.g. a ``free_trial``)."""
    price = {"amount": amount, "interval": "month"}
    name = plan_id.capitalize()
    api("plans.create", plan_id=plan_id, name=name, add_on=True, price=price, items=items or [], **extra)


def create_extra(api: Api, amount: int = 15, included: int = 200, **plan_extra: Any) -> None:
    """Add-on ``extra``: $``amount``/month with ``included`` messages a month (``plan_extra``: more of
    ``plans.create``'s fields, e.g. a ``free_trial``)."""
    monthly = {"feature_id": "messages", "included": included, "reset": {"interval": "month"}}
    create_addon(api, "extra", amount, [monthly], **plan_extra)


def create_seat_license(api: Api) -> dict[str, Any]:
    """Features ``summaries`` (consumable) and ``users`` (not), and license plan ``seat`` (group
    ``licenses``): $30/month with 50 summaries a month. The monthly summaries item, for other plans."""
    api("features.create", feature_id="summaries", name="Summaries", type="metered", consumable=True)
    api("features.create", feature_id="users", name="Users", type="metered", consumable=False)
    summaries = {"feature_id": "summaries", "included": 50, "reset": {"interval": "month"}}
    api(
        "plans.create",
        plan_id="seat",
        name="Seat",
        group="licenses",
        price={"amount": 30, "interval": "month"},
        items=[summaries],
    )
    return summaries


def change(
    plan_id: str,
    quantities: list[dict[str, Any]],
    effective_at: int | None = None,
    canceled_at: int | None = None,
    expires_at: int | None = None,
) -> dict[str, Any]:
    """One of a preview's ``incoming`` or ``outgoing`` plans."""
    return {
        "plan_id": plan_id,
        "feature_quantities": quantities,
        "effective_at": effective_at,
        "canceled_at": canceled_at,
        "expires_at": expires_at,
    }


@contextlib.contextmanager
def stripe_down_server(database: str) -> Iterator[RunningServer]:
    """A server on a fresh ``database`` charging through Stripe whose Stripe API address is a closed
    loopback port (Stripe unreachable). Skips when PostgreSQL is asked for and not available."""
    if database == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    closed = f"http://127.0.0.1:{free_port()}"
    settings = ProcessorSettings(
        default="stripe", values={"STRIPE_SECRET_KEY": "sk_test_down", "STRIPE_API_BASE": closed}
    )
    with (
        fresh_database_url(database) as url,
        run_server(url, clock=ManualClock(START), processors=settings) as server,
    ):
        yield server


def stored_keys(server: RunningServer, key: str) -> int:
    """How many ``Idempotency-Key`` rows the server keeps for ``key``."""
    with server.app.state.autumn.db.read() as conn:
        count = conn.execute(
            select(func.count()).select_from(idempotency_keys).where(idempotency_keys.c.key == key)
        ).scalar_one()
    return int(count)


def call(server: RunningServer, op: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/{op}", json=body, headers=server.headers, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


# An organization with its own Stripe key
SECRET = "whsec_invoices_tenant"


def seconds(at_ms: int) -> int:
    return at_ms // 1000


class Tenant:
    """An organization with its own Stripe key on localstripe, a Stripe webhook secret and a catalogue."""

    def __init__(self, server: RunningServer, clock: ManualClock, api_base: str) -> None:
        self.server, self.clock, self.api_base = server, clock, api_base
        slug = "t-" + secrets.token_hex(4)
        self.stripe_key = f"sk_test_{slug.replace('-', '_')}"
        created = self.platform("organizations", user_email="o@example.com", name=slug, slug=slug, env="test")
        self.key = str(created["test_secret_key"])
        saved = self.platform(
            "organizations/stripe",
            organization_slug=slug,
            test_secret_key=self.stripe_key,
            test_webhook_secret=SECRET,
        )
        self.org_id, self.slug = str(saved["organization"]["id"]), slug
        self.stripe = stripe.StripeClient(self.stripe_key, base_addresses={"api": api_base})
        month = {"interval": "month"}
        self("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        self("features.create", feature_id="seats", name="Seats", type="metered", consumable=False)
        messages = {"feature_id": "messages", "included": 1000, "reset": month}
        self("plans.create", plan_id="pro", name="Pro", price={"amount": 20, **month}, items=[messages])
        self(
            "plans.create", plan_id="premium", name="Premium", price={"amount": 50, **month}, items=[messages]
        )
        self(
            "plans.create",
            plan_id="boost",
            name="Boost",
            add_on=True,
            price={"amount": 15, "interval": "one_off"},
            items=[{"feature_id": "messages", "included": 500}],
        )
        self(
            "plans.create",
            plan_id="team",
            name="Team",
            group="team",
            price={"amount": 10, **month},
            items=[
                {
                    "feature_id": "messages",
                    "included": 0,
                    "price": {"amount": 5, "billing_units": 100, "billing_method": "prepaid", **month},
                },
                {
                    "feature_id": "seats",
                    "included": 1,
                    "price": {"amount": 10, "billing_method": "usage_based", **month},
                },
            ],
        )

    def platform(self, path: str, **body: Any) -> dict[str, Any]:
        url = f"{self.server.url}/v1/platform/{path}"
        response = httpx.post(url, json=body, headers=self.server.headers, timeout=30)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def __call__(self, op: str, expect: int = 200, **body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = httpx.post(f"{self.server.url}/v1/{op}", json=body, headers=headers, timeout=30)
        assert response.status_code == expect, response.text
        return dict(response.json())

    def customer(self, customer_id: str = "u1") -> dict[str, Any]:
        return self("customers.get", customer_id=customer_id, expand=["invoices"])

    def subscribe(self, customer_id: str, plan_id: str, card: str = GOOD, **extra: Any) -> dict[str, Any]:
        """A new customer attaches a paid plan and pays on Stripe Checkout; the customer afterwards."""
        self("customers.get_or_create", customer_id=customer_id, email=f"{customer_id}@example.com")
        url = self("billing.attach", customer_id=customer_id, plan_id=plan_id, **extra)["payment_url"]
        assert pay_through_stripe_checkout(url, card).status_code == 303
        return self.customer(customer_id)

    def save_card(self, customer_id: str, card: str) -> None:
        """The customer sets a new default card up on Stripe Checkout (``billing.setup_payment``)."""
        url = self("billing.setup_payment", customer_id=customer_id)["url"]
        assert pay_through_stripe_checkout(url, card).status_code == 303

    def stripe_customer(self, customer_id: str = "u1") -> str:
        return str(self.customer(customer_id)["processors"]["stripe"]["id"])

    def invoice(self, stripe_id: str) -> Any:
        return self.stripe.v1.invoices.retrieve(stripe_id, {"expand": ["payments"]})

    def lines(self, stripe_id: str) -> list[Any]:
        return list(self.stripe.v1.invoices.line_items.list(stripe_id, {"limit": 100}).data)

    def pending_items(self, customer_id: str = "u1") -> list[Any]:
        listed = self.stripe.v1.invoice_items.list(
            {"customer": self.stripe_customer(customer_id), "pending": True}
        )
        return list(listed.data)

    def rows(self, stripe_id: str) -> Any:
        """The server's own invoice row (amount paid by card, credit applied) for a Stripe invoice."""
        with self.server.app.state.autumn.db.read() as conn:
            return conn.execute(select(invoices).where(invoices.c.processor_id == stripe_id)).one()

    def catalog_rows(self) -> list[tuple[str, int, str, str]]:
        with self.server.app.state.autumn.db.read() as conn:
            rows = conn.execute(select(stripe_objects).order_by(stripe_objects.c.pk)).all()
        return [(r.plan_id, r.plan_version, r.price_key, r.stripe_id) for r in rows]

    def listen(self, *events: str) -> None:
        hook = {
            "url": f"{self.server.url}/webhooks/stripe/{self.org_id}/sandbox",
            "secret": SECRET,
            "events": list(events),
        }
        assert httpx.post(f"{self.api_base}/_config/webhooks/{self.org_id}", json=hook).status_code == 200

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Post an event signed the way Stripe signs: HMAC-SHA256 of ``{t}.{payload}``."""
        payload = json.dumps(event)
        stamp = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
        response = httpx.post(
            f"{self.server.url}/webhooks/stripe/{self.org_id}/sandbox",
            content=payload,
            headers={"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def events(self) -> list[str]:
        with self.server.app.state.autumn.db.read() as conn:
            rows = conn.exec_driver_sql("SELECT event_type FROM stripe_events ORDER BY pk").all()
        return [str(kind) for (kind,) in rows]

    def wait_for_events(self, count: int) -> list[str]:
        """localstripe posts its events about a second after the change."""
        pause = threading.Event()
        for _ in range(600):
            if len(self.events()) >= count:
                return self.events()
            pause.wait(0.05)
        raise AssertionError(f"only {self.events()} delivered")


def platform(server: RunningServer, path: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/platform/{path}", json=body, headers=server.headers, timeout=30)


def new_org(server: RunningServer) -> tuple[str, str]:
    """A new tenant organization: its slug and its sandbox secret key."""
    slug = "t-" + secrets.token_hex(4)
    created = platform(server, "organizations", user_email="o@example.com", name=slug, slug=slug, env="test")
    assert created.status_code == 201, created.text
    return slug, str(created.json()["test_secret_key"])


def org_call(server: RunningServer, key: str, op: str, **body: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.post(f"{server.url}/v1/{op}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def attach_paid_plan(server: RunningServer, key: str, on_stripe: bool = False) -> dict[str, Any]:
    """Create a $20 plan, attach it, pay (on Stripe Checkout for a Stripe organization, else with a test
    card on the server's page); the customer with its invoices."""
    org_call(
        server, key, "plans.create", plan_id="pro", name="Pro", price={"amount": 20, "interval": "month"}
    )
    org_call(server, key, "customers.get_or_create", customer_id="u1", email="ada@example.com")
    url = org_call(server, key, "billing.attach", customer_id="u1", plan_id="pro")["payment_url"]
    if on_stripe:
        paid = pay_through_stripe_checkout(url)
    else:
        paid = httpx.post(url, data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    assert paid.status_code == 303, paid.text
    return org_call(server, key, "customers.get", customer_id="u1", expand=["invoices"])


# Failures injected into the server's database, and waiting on the background worker
SQLITE_REPAIR = ["DROP TRIGGER autumn_test_fail"]
PG_FUNCTION = (
    "CREATE FUNCTION autumn_test_fail() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
)
PG_REPAIR = ["DROP TRIGGER autumn_test_fail ON invoices"]
OPENED = "NEW.reason = 'invoice' AND OLD.processor_id IS NULL AND NEW.processor_id IS NOT NULL"
SQLITE_OPEN_FAILURES = {
    "write": [
        f"CREATE TRIGGER autumn_test_fail BEFORE UPDATE OF processor_id ON invoices WHEN {OPENED} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ],
    "commit": [
        "CREATE TABLE autumn_test_guard (org_pk INTEGER REFERENCES organizations(pk) "
        "DEFERRABLE INITIALLY DEFERRED)",
        f"CREATE TRIGGER autumn_test_fail AFTER UPDATE OF processor_id ON invoices WHEN {OPENED} "
        "BEGIN INSERT INTO autumn_test_guard VALUES (-1); END",
    ],
}
PG_OPEN_FAILURES = {
    "write": [
        PG_FUNCTION,
        f"CREATE TRIGGER autumn_test_fail BEFORE UPDATE ON invoices FOR EACH ROW WHEN ({OPENED}) "
        "EXECUTE FUNCTION autumn_test_fail()",
    ],
    "commit": [
        PG_FUNCTION,
        "CREATE CONSTRAINT TRIGGER autumn_test_fail AFTER UPDATE ON invoices "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({OPENED}) EXECUTE FUNCTION autumn_test_fail()",
    ],
}


def run_sql(tenant: Tenant, statements: list[str]) -> None:
    with tenant.server.app.state.autumn.db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def repair(tenant: Tenant) -> None:
    postgres = tenant.server.database_url.startswith("postgres")
    run_sql(tenant, PG_REPAIR if postgres else SQLITE_REPAIR)


def dialect(tenant: Tenant) -> str:
    return "postgres" if tenant.server.database_url.startswith("postgres") else "sqlite"


def fail_when_opened(tenant: Tenant, when: str) -> None:
    run_sql(tenant, (PG_OPEN_FAILURES if dialect(tenant) == "postgres" else SQLITE_OPEN_FAILURES)[when])


def stripe_invoices_of(tenant: Tenant, customer_id: str) -> list[Any]:
    """Every Stripe invoice made for ``customer_id`` (its Stripe customer, made in the same rolled-back
    transaction, is unknown to the server): localstripe is this test's own."""
    listed = tenant.stripe.v1.invoices.list({"limit": 100}).data
    return [i for i in listed if i.metadata.to_dict().get("autumn_customer_id") == customer_id]


def wait_until(tenant: Tenant, condition: Callable[[], bool], what: str) -> None:
    """The background worker's rounds run on their own thread: wait (without timing anything) until
    ``condition`` holds, nudging the worker meanwhile."""
    worker = tenant.server.app.state.billing.worker
    pause = threading.Event()
    for _ in range(600):
        if condition():
            return
        worker.wake()
        pause.wait(0.05)
    raise AssertionError(f"never happened: {what}")
