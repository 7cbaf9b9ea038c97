"""``billing.import`` through the real server over HTTP, on SQLite and PostgreSQL.

A customer's plans are imaged from another billing system: created with the given usage, skipped
when already there, expired when absent, refused as a whole on bad input, and never billed here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, select

from reference_server.clock import ManualClock
from reference_server.store.db import Database
from reference_server.store.tables.billing import invoices, subscription_billing
from reference_server.store.tables.core import customer_plans, metadata
from reference_server.store.tables.imports import IMPORT_TABLES, customer_processor_ids, imported_plans
from reference_server.testing import fresh_database_url, postgres_available, run_server

from .helpers import STRIPE_KEY, Api, ms, running_api
from .localstripe_server import localstripe

START = ms(2026, 4, 10)
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(request, monkeypatch, request.param, start=START) as client:
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        client("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
        month = {"interval": "month"}
        client(
            "plans.create",
            plan_id="free",
            name="Free",
            auto_enable=True,
            items=[{"feature_id": "messages", "included": 10, "reset": month}],
        )
        client(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 100, "reset": month}],
        )
        client(
            "plans.create",
            plan_id="lifetime",
            name="Lifetime",
            add_on=True,
            items=[
                {"feature_id": "credits", "included": 15, "reset": month},
                {"feature_id": "credits", "included": 100},
            ],
        )
        yield client


def _count(api: Api, table: Any) -> int:
    with api.server.app.state.autumn.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _stripe_pro(**plan: Any) -> dict[str, Any]:
    return {
        "processor": "stripe",
        "link": {"subscription_id": "sub_123"},
        "plan": {"plan_id": "pro", "status": "active", **plan},
    }


def test_import_creates_the_customer_with_its_usage(api: Api) -> None:
    anchor = ms(2026, 3, 25)
    out = api(
        "billing.import",
        customer_id="u1",
        customer_data={"name": "Jane", "email": "jane@example.com"},
        processors=[{"type": "stripe", "id": "cus_stripe_1"}],
        billables=[
            {
                **_stripe_pro(balances=[{"feature_id": "messages", "usage": 40}]),
                "billing_cycle_anchor": anchor,
            },
            {
                "processor": "revenuecat",
                "plan": {
                    "plan_id": "lifetime",
                    "started_at": ms(2026, 1, 1),
                    "balances": [
                        {"feature_id": "credits", "filter": {"interval": "month"}, "usage": 5},
                        {"feature_id": "credits", "filter": {"interval": None}, "usage": 10},
                    ],
                },
            },
        ],
    )
    assert out["customer_id"] == "u1"
    flashed = {f["plan_id"]: f for f in out["flashed"]}
    assert flashed["pro"]["processor"] == "stripe" and flashed["pro"]["skipped"] is False
    assert flashed["pro"]["status"] == "active" and not flashed["pro"].get("mismatch")
    assert flashed["lifetime"]["processor"] == "revenuecat"
    customer = out["customer"]
    assert (customer["name"], customer["email"], customer["stripe_id"]) == (
        "Jane",
        "jane@example.com",
        "cus_stripe_1",
    )
    subs = {s["plan_id"]: s for s in customer["subscriptions"]}
    assert set(subs) == {"pro", "lifetime"}  # an import brings its own plans, not the defaults
    assert subs["pro"]["started_at"] == START and subs["pro"]["status"] == "active"
    messages = customer["balances"]["messages"]
    assert (messages["granted"], messages["remaining"], messages["usage"]) == (100, 60, 40)
    assert messages["next_reset_at"] == ms(2026, 4, 25)
    credits = customer["balances"]["credits"]
    assert (credits["granted"], credits["remaining"]) == (115, 100)
    assert api.customer("u1")["balances"]["messages"]["remaining"] == 60

    # Nothing was billed, and this server will never bill the imported plans.
    assert _count(api, invoices) == 0 and _count(api, subscription_billing) == 0
    assert _count(api, imported_plans) == 2 and _count(api, customer_processor_ids) == 0


def test_reimport_skips_existing_and_expires_absent(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")  # gets the free default plan
    first = api("billing.import", customer_id="u1", billables=[_stripe_pro(started_at=START)])
    expired = [f for f in first["flashed"] if f.get("expired")]
    assert [(f["plan_id"], f["reason"]) for f in expired] == [("free", "expired_not_in_desired_state")]
    again = api("billing.import", customer_id="u1", billables=[_stripe_pro(started_at=START)])
    assert [(f["plan_id"], f["skipped"]) for f in again["flashed"]] == [("pro", True)]
    with api.server.app.state.autumn.db.read() as conn:
        active = (
            conn.execute(select(customer_plans.c.plan_id).where(customer_plans.c.status == "active"))
            .scalars()
            .all()
        )
    assert list(active) == ["pro"]


def test_expired_plan_gives_no_access_and_mismatch_is_flagged(api: Api) -> None:
    out = api(
        "billing.import",
        customer_id="u2",
        processors=[{"type": "revenuecat", "id": "rc_user_2"}],
        billables=[
            {"processor": "stripe", "plan": {"plan_id": "pro"}},  # no subscription, no anchor
            {"processor": "revenuecat", "plan": {"plan_id": "lifetime", "status": "expired"}},
        ],
    )
    flashed = {f["plan_id"]: f for f in out["flashed"]}
    assert flashed["pro"]["mismatch"] is True and flashed["pro"]["reason"]
    assert flashed["lifetime"]["status"] == "expired"
    assert (
        "credits" not in out["customer"]["balances"]
        or out["customer"]["balances"]["credits"]["remaining"] == 0
    )
    check = api("balances.check", customer_id="u2", feature_id="credits")
    assert check["allowed"] is False
    assert _count(api, customer_processor_ids) == 1


def test_dry_run_and_refusals_persist_nothing(api: Api) -> None:
    dry = api("billing.import", customer_id="u3", dry_run=True, billables=[_stripe_pro(started_at=START)])
    assert dry["customer"] is None and [f["plan_id"] for f in dry["flashed"]] == ["pro"]
    assert api("customers.get", expect=404, customer_id="u3")["code"] == "customer_not_found"

    api("customers.get_or_create", customer_id="u4")
    before = api.customer("u4")
    refusals = [
        (404, "product_not_found", [_stripe_pro(), {"plan": {"plan_id": "nope"}}]),
        (
            400,
            "flash_balance_no_match",
            [_stripe_pro(balances=[{"feature_id": "credits", "usage": 1}])],
        ),
        (
            400,
            "flash_balance_ambiguous",
            [{"plan": {"plan_id": "lifetime", "balances": [{"feature_id": "credits", "usage": 1}]}}],
        ),
        (
            400,
            "cross_processor_conflict",
            [_stripe_pro(), {"processor": "revenuecat", "plan": {"plan_id": "pro"}}],
        ),
        (400, "invalid_inputs", [{"processor": "stripe"}]),
    ]
    for status, code, billables in refusals:
        refused = api("billing.import", expect=status, customer_id="u4", billables=billables)
        assert refused["code"] == code, refused
    assert api.customer("u4") == before
    assert _count(api, imported_plans) == 0
    bad_email = api(
        "billing.import", expect=400, customer_id="u5", customer_data={"email": "nope"}, billables=[]
    )
    assert bad_email["code"]
    assert api("customers.get", expect=404, customer_id="u5")["code"] == "customer_not_found"


@pytest.fixture
def stripe_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, stripe.StripeClient]]:
    """A server charging through Stripe (localstripe), on real time: Stripe's subscriptions run on it."""
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(localstripe())
        monkeypatch.setenv("AUTUMN_PAYMENT_PROCESSOR", "stripe")
        monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", base)
        url = stack.enter_context(fresh_database_url("sqlite"))
        clock = ManualClock(int(time.time() * 1000))
        server = stack.enter_context(run_server(url, clock=clock))
        client = Api(server, clock, "stripe", base)
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        client(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 100, "reset": {"interval": "month"}}],
        )
        yield client, stripe.StripeClient(STRIPE_KEY, base_addresses={"api": base})
        client.http.close()


def test_a_linked_stripe_subscription_fills_what_the_payload_leaves_out(
    stripe_api: tuple[Api, stripe.StripeClient],
) -> None:
    api, stripe_client = stripe_api
    cus = stripe_client.v1.customers.create({"email": "old@example.com"})
    product = stripe_client.v1.products.create({"name": "Pro elsewhere"})
    price = stripe_client.v1.prices.create(
        {"product": product.id, "unit_amount": 2000, "currency": "usd", "recurring": {"interval": "month"}}
    )
    period_end = int(time.time()) + 5 * 86_400
    sub = stripe_client.v1.subscriptions.create(
        {
            "customer": cus.id,
            "items": [{"price": price.id}],
            "billing_cycle_anchor": period_end,
            "proration_behavior": "none",
            "cancel_at_period_end": True,
        }
    )
    stripe_sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    stripe_invoices = len(stripe_client.v1.invoices.list({"customer": cus.id}).data)
    out = api(
        "billing.import",
        customer_id="u1",
        processors=[{"type": "stripe", "id": cus.id}],
        billables=[
            {
                "processor": "stripe",
                "link": {"subscription_id": sub.id},
                "plan": {"plan_id": "pro", "balances": [{"feature_id": "messages", "usage": 30}]},
            },
        ],
    )
    pro = out["flashed"][0]
    assert (pro["status"], pro["skipped"], pro.get("mismatch")) == ("active", False, None)
    subscription = out["customer"]["subscriptions"][0]
    assert subscription["started_at"] == int(stripe_sub.start_date) * 1000
    assert subscription["canceled_at"] is not None and subscription["expires_at"] == period_end * 1000
    messages = out["customer"]["balances"]["messages"]
    assert messages["remaining"] == 70 and messages["next_reset_at"] == period_end * 1000
    # Read-only against Stripe: nothing was created or changed there.
    assert len(stripe_client.v1.subscriptions.list({"customer": cus.id}).data) == 1
    assert len(stripe_client.v1.invoices.list({"customer": cus.id}).data) == stripe_invoices
    assert stripe_client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    assert _count(api, subscription_billing) == 0

    # A subscription Stripe cannot find: imaged from the payload alone.
    unknown = api(
        "billing.import",
        customer_id="u2",
        billables=[
            {
                "processor": "stripe",
                "link": {"subscription_id": "sub_unknown"},
                "plan": {"plan_id": "pro", "started_at": api.clock.now_ms()},
            }
        ],
    )
    assert unknown["flashed"][0]["status"] == "active"
    assert unknown["customer"]["subscriptions"][0]["expires_at"] is None


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_builds_the_import_tables(kind: str) -> None:
    """Revision 0015_billing_import builds exactly the tables of store.import_tables."""
    if kind == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        ours = MetaData(naming_convention=metadata.naming_convention)
        for table in metadata.sorted_tables:  # the referenced tables too, so foreign keys resolve
            table.to_metadata(ours)
        names = {t.name for t in IMPORT_TABLES}

        def include(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
            table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
            return table in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include})
            diffs = compare_metadata(context, ours)
        db.dispose()
    assert diffs == []
