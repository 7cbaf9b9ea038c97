"""``billing.multi_update`` and ``billing.preview_multi_update`` through the real server over HTTP, on
SQLite and PostgreSQL with the local processor, and on Stripe (localstripe) with SQLite.

Several cancels of one customer apply together (one invoice for the credits), the preview shows one
entry per paid plan and changes nothing, and a refused update leaves every plan as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from reference_server.store.billing_lock import billing_lock
from reference_server.store.tables.billing import invoices
from reference_server.store.tables.core import customers

from .helpers import START, Api, create_addon, running_api, subscriptions_by_plan, with_card

DAY = 86_400_000
PROCESSORS = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("local", "postgres"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(("stripe", "sqlite"), id="stripe-sqlite"),
]


@pytest.fixture(params=PROCESSORS)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    processor, database = request.param
    with running_api(request, monkeypatch, database, processor) as client:
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        month = {"interval": "month"}
        client(
            "plans.create",
            plan_id="free",
            name="Free",
            auto_enable=True,
            items=[{"feature_id": "messages", "included": 100, "reset": month}],
        )
        client(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 1000, "reset": month}],
        )
        create_addon(client)
        client("plans.create", plan_id="perk", name="Perk", add_on=True, items=[])
        yield client


def _subscribed(api: Api, customer_id: str) -> None:
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id="pro")
    api("billing.attach", customer_id=customer_id, plan_id="addon")
    api("billing.attach", customer_id=customer_id, plan_id="perk")


def _invoice_count(api: Api) -> int:
    with api.server.app.state.autumn.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(invoices)).scalar_one())


def test_cancel_end_of_cycle_of_several_plans_together(api: Api) -> None:
    _subscribed(api, "u1")
    api.clock.advance(15 * DAY)
    invoices_before = _invoice_count(api)
    out = api(
        "billing.multi_update",
        customer_id="u1",
        updates=[
            {"plan_id": "pro", "cancel_action": "cancel_end_of_cycle"},
            {"plan_id": "addon", "cancel_action": "cancel_end_of_cycle"},
            {"plan_id": "perk", "cancel_action": "cancel_immediately"},
        ],
    )
    assert out["customer_id"] == "u1" and out["payment_url"] is None
    assert "invoice" not in out  # nothing is due: the paid plans end at their period end
    assert _invoice_count(api) == invoices_before
    subs = subscriptions_by_plan(api, "u1")
    assert subs["pro"]["canceled_at"] is not None and subs["pro"]["expires_at"] == START + 30 * DAY
    assert subs["addon"]["canceled_at"] is not None and subs["addon"]["expires_at"] == START + 30 * DAY
    assert "perk" not in subs or subs["perk"]["status"] == "expired"

    # Uncancel both in one go.
    api(
        "billing.multi_update",
        customer_id="u1",
        updates=[
            {"plan_id": "pro", "cancel_action": "uncancel"},
            {"plan_id": "addon", "cancel_action": "uncancel"},
        ],
    )
    subs = subscriptions_by_plan(api, "u1")
    assert subs["pro"]["canceled_at"] is None and subs["pro"]["expires_at"] is None
    assert subs["addon"]["canceled_at"] is None and subs["addon"]["expires_at"] is None


def test_cancel_immediately_credits_on_one_invoice_and_preview_matches(api: Api) -> None:
    _subscribed(api, "u1")
    api.clock.advance(15 * DAY)
    updates = [
        {"plan_id": "pro", "cancel_action": "cancel_immediately"},
        {"plan_id": "addon", "cancel_action": "cancel_immediately"},
        {"plan_id": "perk", "cancel_action": "cancel_immediately"},
    ]
    before = subscriptions_by_plan(api, "u1")
    invoices_before = _invoice_count(api)
    preview = api("billing.preview_multi_update", customer_id="u1", updates=updates)
    # nothing changed
    assert subscriptions_by_plan(api, "u1") == before and _invoice_count(api) == invoices_before
    assert preview["customer_id"] == "u1" and preview["currency"] == "usd"
    by_plan = {tuple(s["plan_ids"]): s for s in preview["subscriptions"]}
    assert set(by_plan) == {("pro",), ("addon",)}  # the free add-on has no entry
    assert by_plan[("pro",)]["total"] == -10 and by_plan[("addon",)]["total"] == -5
    assert preview["total"] == -15

    out = api("billing.multi_update", customer_id="u1", updates=updates)
    assert out["invoice"]["total"] == preview["total"]
    assert _invoice_count(api) == invoices_before + 1  # one invoice for both credits
    subs = subscriptions_by_plan(api, "u1")
    assert set(subs) == {"free"}  # the group's default plan took over


def test_a_refused_update_changes_nothing(api: Api) -> None:
    _subscribed(api, "u1")
    before = subscriptions_by_plan(api, "u1")
    invoices_before = _invoice_count(api)
    refused = api(
        "billing.multi_update",
        expect=404,
        customer_id="u1",
        updates=[
            {"plan_id": "pro", "cancel_action": "cancel_immediately"},
            {"plan_id": "premium", "cancel_action": "cancel_immediately"},
        ],
    )
    assert refused["code"] == "cus_product_not_found"
    twice = api(
        "billing.multi_update",
        expect=400,
        customer_id="u1",
        updates=[
            {"plan_id": "addon", "cancel_action": "cancel_immediately"},
            {"plan_id": "addon", "cancel_action": "cancel_end_of_cycle"},
        ],
    )
    assert twice["code"] == "invalid_request" and "same plan" in twice["message"]
    assert subscriptions_by_plan(api, "u1") == before and _invoice_count(api) == invoices_before

    assert api("billing.multi_update", expect=400, customer_id="u1", updates=[])["code"]
    missing_action = api("billing.multi_update", expect=400, customer_id="u1", updates=[{"plan_id": "pro"}])
    assert missing_action["code"]
    no_target = api(
        "billing.multi_update", expect=400, customer_id="u1", updates=[{"cancel_action": "uncancel"}]
    )
    assert no_target["code"] == "invalid_inputs"
    ghost = api(
        "billing.preview_multi_update",
        expect=404,
        customer_id="ghost",
        updates=[{"plan_id": "pro", "cancel_action": "cancel_immediately"}],
    )
    assert ghost["code"] == "customer_not_found"
    assert subscriptions_by_plan(api, "u1") == before and _invoice_count(api) == invoices_before


def test_it_takes_the_customer_billing_lock_and_replays_by_idempotency_key(api: Api) -> None:
    _subscribed(api, "u1")
    db = api.server.app.state.autumn.db
    with db.read() as conn:
        org_pk, env = conn.execute(
            select(customers.c.org_pk, customers.c.env).where(customers.c.id == "u1")
        ).one()
    updates = [{"plan_id": "addon", "cancel_action": "cancel_end_of_cycle"}]
    with billing_lock(db, int(org_pk), str(env), "u1", api.clock.now_ms()):  # another change in flight
        busy = api("billing.multi_update", expect=429, customer_id="u1", updates=updates)
        assert busy["code"] == "lock_already_exists"
        busy = api("billing.import", expect=429, customer_id="u1", billables=[])
        assert busy["code"] == "lock_already_exists"
    assert subscriptions_by_plan(api, "u1")["addon"]["canceled_at"] is None

    headers = {"Idempotency-Key": "multi-update-1"}
    first = api.http.post(
        "/v1/billing.multi_update", json={"customer_id": "u1", "updates": updates}, headers=headers
    )
    assert first.status_code == 200, first.text
    canceled_at = subscriptions_by_plan(api, "u1")["addon"]["canceled_at"]
    assert canceled_at is not None
    api.clock.advance(DAY)
    replay = api.http.post(
        "/v1/billing.multi_update", json={"customer_id": "u1", "updates": updates}, headers=headers
    )
    assert (replay.status_code, replay.json()) == (200, first.json())
    assert subscriptions_by_plan(api, "u1")["addon"]["canceled_at"] == canceled_at  # applied once
