"""``invoices.list`` and ``invoices.insert`` through the real server over HTTP, on SQLite and PostgreSQL.

The list shows the invoices the server made (a paid attach) next to imported ones, newest first, with
Autumn's filters and cursor pages; the insert records historical invoices as given, upserting on
``stripe_id``, and refuses a bad batch as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from reference_server.store.tables.billing import invoices
from reference_server.store.tables.imports import imported_invoices

from .helpers import Api, ms, running_api

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(request, monkeypatch, request.param) as client:
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        month = {"interval": "month"}
        client(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 1000, "reset": month}],
        )
        client("plans.create", plan_id="legacy", name="Legacy", items=[])
        yield client


def _legacy(customer_id: str, stripe_id: str, created_at: int, **extra: object) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "plan_ids": ["legacy"],
        "stripe_id": stripe_id,
        "status": "paid",
        "total": 29.99,
        "amount_paid": 29.99,
        "currency": "usd",
        "created_at": created_at,
        "hosted_invoice_url": f"https://billing.example.com/{stripe_id}",
        **extra,
    }


def _count(api: Api) -> tuple[int, int]:
    with api.server.app.state.autumn.db.read() as conn:
        n_invoices = conn.execute(select(func.count()).select_from(invoices)).scalar_one()
        n_imported = conn.execute(select(func.count()).select_from(imported_invoices)).scalar_one()
    return int(n_invoices), int(n_imported)


def test_insert_then_list_with_filters_and_pages(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api("customers.get_or_create", customer_id="u2")
    api.add_card("u1")
    attached = api("billing.attach", customer_id="u1", plan_id="pro")
    native_id = attached["invoice"]["stripe_id"]

    inserted = api(
        "invoices.insert",
        invoices=[
            _legacy("u1", "in_legacy_1", ms(2025, 1, 1)),
            _legacy("u1", "in_legacy_2", ms(2025, 2, 1), status="open", amount_paid=None),
            _legacy("u2", "rc_legacy_3", ms(2025, 3, 1), processor_type="revenuecat", refunded_amount=5),
        ],
    )["invoices"]
    assert [i["stripe_id"] for i in inserted] == ["in_legacy_1", "in_legacy_2", "rc_legacy_3"]
    first = inserted[0]
    assert first["id"].startswith("inv_")
    assert (first["customer_id"], first["plan_ids"], first["total"], first["amount_paid"]) == (
        "u1",
        ["legacy"],
        29.99,
        29.99,
    )
    assert (first["processor_type"], first["refunded_amount"], first["currency"]) == ("stripe", 0, "usd")
    assert inserted[1]["amount_paid"] is None
    assert (inserted[2]["processor_type"], inserted[2]["refunded_amount"]) == ("revenuecat", 5)

    everything = api("invoices.list")
    assert [i["stripe_id"] for i in everything["list"]] == [
        native_id,
        "rc_legacy_3",
        "in_legacy_2",
        "in_legacy_1",
    ]
    assert everything["next_cursor"] is None
    native = everything["list"][0]
    assert (native["customer_id"], native["processor_type"], native["status"], native["total"]) == (
        "u1",
        "stripe",
        "paid",
        20,
    )
    assert native["amount_paid"] == 20 and native["refunded_amount"] == 0

    u1 = api("invoices.list", customer_id="u1")["list"]
    assert [i["stripe_id"] for i in u1] == [native_id, "in_legacy_2", "in_legacy_1"]
    open_only = api("invoices.list", status=["open"])["list"]
    assert [i["stripe_id"] for i in open_only] == ["in_legacy_2"]
    rc = api("invoices.list", processor_types=["revenuecat"])["list"]
    assert [i["stripe_id"] for i in rc] == ["rc_legacy_3"]

    # Pages of 2 walk the same order without overlap.
    page1 = api("invoices.list", limit=2)
    page2 = api("invoices.list", limit=2, start_cursor=page1["next_cursor"])
    assert [i["stripe_id"] for i in page1["list"] + page2["list"]] == [
        i["stripe_id"] for i in everything["list"]
    ]
    assert page2["next_cursor"] is None

    # The customer's own invoice list (expand) shows the imported ones too.
    expanded = api.customer("u2")["invoices"]
    assert [i["stripe_id"] for i in expanded] == ["rc_legacy_3"]


def test_insert_upserts_on_stripe_id(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api("customers.get_or_create", customer_id="u2")
    first = api("invoices.insert", invoices=[_legacy("u1", "in_legacy_1", ms(2025, 1, 1))])["invoices"][0]
    again = api(
        "invoices.insert",
        invoices=[_legacy("u2", "in_legacy_1", ms(2025, 1, 2), status="void", total=10, plan_ids=[])],
    )["invoices"][0]
    assert again["id"] == first["id"]
    assert (again["customer_id"], again["status"], again["total"], again["plan_ids"]) == (
        "u2",
        "void",
        10,
        [],
    )
    assert _count(api) == (1, 1)
    assert api("invoices.list", customer_id="u1")["list"] == []
    listed = api("invoices.list", customer_id="u2")["list"]
    assert [(i["id"], i["status"], i["created_at"]) for i in listed] == [
        (first["id"], "void", ms(2025, 1, 2))
    ]


def test_a_bad_batch_records_nothing(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    good = _legacy("u1", "in_ok", ms(2025, 1, 1))
    cases = [
        ([good, _legacy("ghost", "in_ghost", ms(2025, 1, 1))], "Customers not found: ghost"),
        ([good, _legacy("u1", "in_bad_plan", ms(2025, 1, 1), plan_ids=["nope"])], "Plans not found: nope"),
        ([good, _legacy("u1", "in_ok", ms(2025, 1, 2))], "Duplicate stripe_id"),
    ]
    for batch, message in cases:
        refused = api("invoices.insert", expect=400, invoices=batch)
        assert refused["code"] == "invalid_request" and message in refused["message"], refused
    assert _count(api) == (0, 0)
    bad_status = api("invoices.insert", expect=400, invoices=[{**good, "status": "settled"}])
    assert "code" in bad_status and "message" in bad_status
    too_many = [_legacy("u1", f"in_{n}", ms(2025, 1, 1)) for n in range(501)]
    assert api("invoices.insert", expect=400, invoices=too_many)["code"]
    assert _count(api) == (0, 0)


def test_list_refuses_bad_filters(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    assert api("invoices.list", expect=400, entity_id="e1")["code"] == "invalid_inputs"
    assert api("invoices.list", expect=400, start_cursor="not-a-cursor")["code"] == "invalid_inputs"
    assert api("invoices.list", expect=404, customer_id="ghost")["code"] == "customer_not_found"
    assert api("invoices.list", expect=404, customer_id="u1", entity_id="e1")["code"] == "entity_not_found"
    assert api("invoices.list", expect=400, limit=0)["code"]
    assert api("invoices.list", expect=400, status=["settled"])["code"]
