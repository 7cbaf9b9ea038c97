"""Billing fields of Autumn's current API (2026-08-22) through the real server over HTTP, on SQLite and
PostgreSQL with the local processor, and on Stripe (localstripe) with SQLite.

Overage billing switched off per customer (``config.disable_overage_billing``) or per feature
(``spend_limits[].skip_overage_billing``): the renewal invoice leaves those overage lines out, usage
and resets behave as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from reference_server.clock import ManualClock
from reference_server.testing import fresh_database_url, postgres_available, run_server

from .helpers import STRIPE_KEY, Api, ms
from .localstripe_server import localstripe

START = ms(2026, 4, 1)  # a 30-day month
RENEWAL = ms(2026, 5, 1) + 1
PROCESSORS = [
    pytest.param(("local", "sqlite"), id="local-sqlite"),
    pytest.param(("local", "postgres"), id="local-postgres", marks=pytest.mark.postgres),
    pytest.param(("stripe", "sqlite"), id="stripe-sqlite"),
]
MONTH = {"interval": "month"}


@pytest.fixture(scope="module")
def shared_localstripe() -> Iterator[str]:
    with localstripe() as api_base:
        yield api_base


@pytest.fixture(params=PROCESSORS)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    processor, database = request.param
    if database == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    clock = ManualClock(START)
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
        for fid in ("messages", "calls"):
            client("features.create", feature_id=fid, name=fid.title(), type="metered", consumable=True)
        client(
            "plans.create",
            plan_id="payg",
            name="Pay as you go",
            price={"amount": 10, "interval": "month"},
            items=[
                {
                    "feature_id": fid,
                    "included": 100,
                    "reset": MONTH,
                    "price": {"amount": 0.5, "interval": "month", "billing_method": "usage_based"},
                }
                for fid in ("messages", "calls")
            ],
        )
        yield client
        if client.stripe is not None:
            client.check_stripe_books()
        client.http.close()


def _renewal_after_overage(api: Api, **customer: Any) -> dict[str, Any]:
    """u1 on payg uses 200 of each feature (100 over each), then the period renews."""
    api("customers.get_or_create", customer_id="u1", **customer)
    api.add_card("u1")
    api("billing.attach", customer_id="u1", plan_id="payg")
    for fid in ("messages", "calls"):
        api("balances.track", customer_id="u1", feature_id=fid, value=200)
    api.clock.set(RENEWAL)
    return api.customer("u1")


def test_overage_is_billed_by_default(api: Api) -> None:
    customer = _renewal_after_overage(api)
    assert [i["total"] for i in customer["invoices"]] == [110, 10]  # 10 base + 2 x 100 over x 0.5


def test_skip_overage_billing_leaves_that_feature_out(api: Api) -> None:
    controls = {"spend_limits": [{"feature_id": "messages", "skip_overage_billing": True}]}
    customer = _renewal_after_overage(api, billing_controls=controls)
    assert [i["total"] for i in customer["invoices"]] == [60, 10]  # only the calls overage
    assert customer["billing_controls"]["spend_limits"] == [
        {"feature_id": "messages", "skip_overage_billing": True, "source": "customer"}
    ]
    # usage went past the grant and the renewal still reset it
    assert customer["balances"]["messages"]["usage"] == 0
    assert customer["balances"]["calls"]["usage"] == 0


def test_disable_overage_billing_leaves_every_overage_out(api: Api) -> None:
    customer = _renewal_after_overage(api, config={"disable_overage_billing": True})
    assert [i["total"] for i in customer["invoices"]] == [10, 10]
    assert customer["config"]["disable_overage_billing"] is True
    assert customer["balances"]["messages"]["usage"] == 0


def test_disable_overage_billing_can_be_switched_off_again(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1", config={"disable_overage_billing": True})
    api("customers.update", customer_id="u1", config={"disable_overage_billing": False})
    customer = _renewal_after_overage(api)
    assert customer["config"]["disable_overage_billing"] is False
    assert [i["total"] for i in customer["invoices"]] == [110, 10]


def _plans_of(api: Api, customer_id: str) -> dict[str, str]:
    return {s["plan_id"]: s["status"] for s in api.customer(customer_id)["subscriptions"]}


def _removal_catalog(api: Api) -> None:
    for plan_id, add_on in (("perk", True), ("extra", True), ("team", False)):
        api("plans.create", plan_id=plan_id, name=plan_id.title(), add_on=add_on, group="other", items=[])
    api("customers.get_or_create", customer_id="u1")
    for plan_id in ("perk", "extra"):
        api("billing.attach", customer_id="u1", plan_id=plan_id)


def test_remove_plan_ids_expires_free_plans_with_the_attach(api: Api) -> None:
    _removal_catalog(api)
    # a free attach: the free add-on goes in the same request
    api("billing.attach", customer_id="u1", plan_id="team", remove_plan_ids=["perk"])
    assert _plans_of(api, "u1") == {"extra": "active", "team": "active"}
    # a paid attach (payment on file): the named plan ends with it, the preview changed nothing
    api.add_card("u1")
    preview = api("billing.preview_attach", customer_id="u1", plan_id="payg", remove_plan_ids=["extra"])
    assert preview["total"] == 10
    assert _plans_of(api, "u1") == {"extra": "active", "team": "active"}
    api("billing.attach", customer_id="u1", plan_id="payg", remove_plan_ids=["extra"])
    assert _plans_of(api, "u1") == {"payg": "active", "team": "active"}


def test_remove_plan_ids_refusals_change_nothing(api: Api) -> None:
    _removal_catalog(api)
    api.add_card("u1")
    for op in ("billing.attach", "billing.preview_attach"):
        error = api(op, 400, customer_id="u1", plan_id="team", remove_plan_ids=["team"])
        assert error["code"] == "invalid_request"
        assert error["message"] == "Cannot remove plan 'team' in the same attach that adds it"
        error = api(op, 404, customer_id="u1", plan_id="payg", remove_plan_ids=["perk", "nope"])
        assert error["code"] == "product_not_found"
        assert error["message"] == "No active plan 'nope' found on the customer to remove"
    error = api(
        "billing.attach",
        400,
        customer_id="u1",
        plan_id="team",
        remove_plan_ids=["perk", "extra"],
        carry_over_usages={"enabled": True},
    )
    assert error["code"] == "invalid_request"
    api("billing.attach", customer_id="u1", plan_id="payg")
    error = api("billing.attach", 400, customer_id="u1", plan_id="team", remove_plan_ids=["payg"])
    assert error["code"] == "unsupported_field"  # a paid plan: not removed by this server
    assert _plans_of(api, "u1") == {"perk": "active", "extra": "active", "payg": "active"}


def test_setup_payment_removes_the_plans_once_the_plan_is_attached(api: Api) -> None:
    _removal_catalog(api)
    error = api("billing.setup_payment", 404, customer_id="u1", plan_id="payg", remove_plan_ids=["nope"])
    assert error["code"] == "product_not_found"
    error = api("billing.setup_payment", 400, customer_id="u1", remove_plan_ids=["perk"])
    assert error["code"] == "invalid_request"
    url = api("billing.setup_payment", customer_id="u1", plan_id="payg", remove_plan_ids=["perk"])["url"]
    assert _plans_of(api, "u1") == {"perk": "active", "extra": "active"}  # nothing until the card is set up
    assert api.pay(url).status_code == 303
    assert _plans_of(api, "u1") == {"extra": "active", "payg": "active"}


def _credits(api: Api) -> float:
    return float(api.customer("u1")["balances"]["credits"]["remaining"])


def test_purchase_limit_count_sets_the_top_ups_already_bought(api: Api) -> None:
    api("features.create", feature_id="credits", name="Credits", type="metered", consumable=True)
    pack = {"amount": 5, "interval": "one_off", "billing_method": "prepaid", "billing_units": 100}
    api(
        "plans.create",
        plan_id="packs",
        name="Packs",
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "credits", "included": 0, "price": pack}],
    )
    topup = {"feature_id": "credits", "enabled": True, "threshold": 20, "quantity": 100}
    too_many = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 3}}
    error = api(
        "customers.get_or_create", 400, customer_id="u1", billing_controls={"auto_topups": [too_many]}
    )
    assert error["code"] == "invalid_request"
    assert (
        error["message"]
        == "purchase_limit.count (3) cannot exceed purchase_limit.limit (2) for feature credits"
    )
    one_used = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 1}}
    created = api("customers.get_or_create", customer_id="u1", billing_controls={"auto_topups": [one_used]})
    # the count is runtime state, not a setting: it is not stored with the controls
    assert created["billing_controls"]["auto_topups"][0]["purchase_limit"] == {"interval": "day", "limit": 2}
    api.add_card("u1")
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="packs",
        feature_quantities=[{"feature_id": "credits", "quantity": 100}],
    )
    api("balances.track", customer_id="u1", feature_id="credits", value=90)  # 1 counted + this one = 2
    assert _credits(api) == 110
    api.clock.advance(60_000)  # past the 30 s between top-ups
    api("balances.track", customer_id="u1", feature_id="credits", value=100)
    assert _credits(api) == 10  # the day's limit of 2 is reached
    reset = {**topup, "purchase_limit": {"interval": "day", "limit": 2, "count": 0}}
    api("customers.update", customer_id="u1", billing_controls={"auto_topups": [reset]})
    api("balances.track", customer_id="u1", feature_id="credits", value=1)
    assert _credits(api) == 109  # counted from zero again
