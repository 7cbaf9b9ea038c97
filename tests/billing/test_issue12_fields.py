"""Fields of Autumn's current API that the server used to refuse, through the real server over HTTP on
SQLite and PostgreSQL (and on Stripe with localstripe, as the other billing scenarios):
``customize.remove_items[].interval_count`` and ``billing.multi_attach``'s per-plan ``entity_id``."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import DAY, START, Api, ms, with_card

MONTH = {"interval": "month"}
QUARTER = {"interval": "month", "interval_count": 3}


def _two_cadence_plan(api: Api) -> None:
    """``dual``: 100 messages a month and 500 more every three months, $10 a month."""
    api(
        "plans.create",
        plan_id="dual",
        name="Dual",
        price={"amount": 10, "interval": "month"},
        items=[
            {"feature_id": "messages", "included": 100, "reset": MONTH},
            {"feature_id": "messages", "included": 500, "reset": QUARTER},
        ],
    )


def _granted(api: Api, customer_id: str) -> Any:
    return api.customer(customer_id)["balances"]["messages"]["granted"]


def test_remove_items_interval_count_removes_only_the_item_of_that_count(api: Api) -> None:
    _two_cadence_plan(api)
    for cid in ("u1", "u2", "u3"):
        with_card(api, cid)
    quarterly = {"remove_items": [{"feature_id": "messages", "interval": "month", "interval_count": 3}]}
    preview = api("billing.preview_attach", customer_id="u1", plan_id="dual", customize=quarterly)
    assert preview["total"] == 10
    api("billing.attach", customer_id="u1", plan_id="dual", customize=quarterly)
    assert _granted(api, "u1") == 100  # the quarterly 500 is gone, the monthly 100 stays
    # interval_count 1 is the count of an item that gives none
    monthly = {"remove_items": [{"feature_id": "messages", "interval_count": 1}]}
    api("billing.attach", customer_id="u2", plan_id="dual", customize=monthly)
    assert _granted(api, "u2") == 500
    # without interval_count every messages item of that interval goes
    both = {"remove_items": [{"feature_id": "messages", "interval": "month"}]}
    api("billing.attach", customer_id="u3", plan_id="dual", customize=both)
    assert "messages" not in api.customer("u3")["balances"], api.customer("u3")["balances"]


def test_remove_items_interval_count_on_update(api: Api) -> None:
    _two_cadence_plan(api)
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="dual")
    assert _granted(api, "u1") == 600
    quarterly = {"remove_items": [{"feature_id": "messages", "interval_count": 3}]}
    preview = api("billing.preview_update", customer_id="u1", plan_id="dual", customize=quarterly)
    assert preview["total"] == 0  # the price is the same; only the quarterly grant goes
    api("billing.update", customer_id="u1", plan_id="dual", customize=quarterly)
    assert _granted(api, "u1") == 100


def test_remove_items_bad_interval_count_is_400_and_attaches_nothing(api: Api) -> None:
    _two_cadence_plan(api)
    api("customers.get_or_create", customer_id="u1")
    for bad in (0, -1, 1.5, "three"):
        body = {"remove_items": [{"feature_id": "messages", "interval_count": bad}]}
        error = api("billing.attach", expect=400, customer_id="u1", plan_id="dual", customize=body)
        assert error["code"] == "invalid_inputs", error
    assert api.plans_of("u1") == {"free": "active"}


def _addon(api: Api) -> None:
    api(
        "plans.create",
        plan_id="extra",
        name="Extra",
        add_on=True,
        price={"amount": 5, "interval": "month"},
        items=[{"feature_id": "messages", "included": 50, "reset": MONTH}],
    )


def _scopes(api: Api, customer_id: str) -> dict[str | None, set[str]]:
    """Each scope's active plans: the customer's own (``None``) and each entity's."""
    out: dict[str | None, set[str]] = {
        None: {s["plan_id"] for s in api.customer(customer_id)["subscriptions"] if s["status"] == "active"}
    }
    for entity in api("entities.list", customer_id=customer_id)["list"]:
        got = api("entities.get", customer_id=customer_id, entity_id=entity["id"])
        out[entity["id"]] = {s["plan_id"] for s in got["subscriptions"] if s["status"] == "active"}
    return out


def test_multi_attach_plan_entity_id_scopes_each_plan(api: Api) -> None:
    _addon(api)
    with_card(api, "u1")
    for eid in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=eid, feature_id="seats", name=eid)
    plans = [
        {"plan_id": "pro"},  # the request's entity, e1
        {"plan_id": "pro", "entity_id": "e2"},  # the same main plan, on another entity
        {"plan_id": "extra", "entity_id": None},  # the customer itself
    ]
    preview = api("billing.preview_multi_attach", customer_id="u1", entity_id="e1", plans=plans)
    assert preview["total"] == 45
    result = api("billing.multi_attach", customer_id="u1", entity_id="e1", plans=plans)
    assert result["invoice"]["total"] == 45  # one invoice for the three
    assert result["entity_id"] == "e1"
    scopes = _scopes(api, "u1")
    assert scopes["e1"] == {"pro"} and scopes["e2"] == {"pro"}
    assert "extra" in scopes[None] and "pro" not in scopes[None]


def test_multi_attach_plan_entity_id_without_a_request_entity(api: Api) -> None:
    with_card(api, "u1")
    for eid in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=eid, feature_id="seats", name=eid)
    plans = [{"plan_id": "pro", "entity_id": "e1"}, {"plan_id": "premium", "entity_id": "e2"}]
    result = api("billing.multi_attach", customer_id="u1", plans=plans)
    assert result["invoice"]["total"] == 70
    assert "entity_id" not in result or result["entity_id"] is None  # two scopes, none named by the request
    scopes = _scopes(api, "u1")
    assert (scopes["e1"], scopes["e2"]) == ({"pro"}, {"premium"})
    # every plan on one entity: the attach is that entity's
    api("entities.create", customer_id="u1", entity_id="e3", feature_id="seats", name="e3")
    one = api("billing.multi_attach", customer_id="u1", plans=[{"plan_id": "pro", "entity_id": "e3"}])
    assert one["entity_id"] == "e3"


def test_multi_attach_plan_entity_id_refusals_attach_nothing(api: Api) -> None:
    with_card(api, "u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="e1")
    before = _scopes(api, "u1")
    unknown = [{"plan_id": "pro", "entity_id": "e1"}, {"plan_id": "premium", "entity_id": "nobody"}]
    error = api("billing.multi_attach", expect=404, customer_id="u1", plans=unknown)
    assert error["code"] == "entity_not_found", error
    # two main plans of one group in the same scope, reached through the plan's entity_id
    same = [{"plan_id": "pro"}, {"plan_id": "premium", "entity_id": "e1"}]
    error = api("billing.multi_attach", expect=400, customer_id="u1", entity_id="e1", plans=same)
    assert error["code"] == "invalid_request", error
    error = api(
        "billing.multi_attach", expect=400, customer_id="u1", plans=[{"plan_id": "pro", "entity_id": 7}]
    )
    assert error["code"] == "invalid_inputs", error
    assert _scopes(api, "u1") == before


def test_multi_attach_billing_behavior_none_charges_no_proration(api: Api) -> None:
    _addon(api)
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro")
    api.clock.set(START + 15 * DAY)  # half of April
    plans = [{"plan_id": "premium"}, {"plan_id": "extra"}]
    prorated = api("billing.preview_multi_attach", customer_id="u1", plans=plans)
    # premium's half month less pro's unused half, and the add-on's own month
    assert prorated["total"] == 20
    none = api("billing.preview_multi_attach", customer_id="u1", plans=plans, billing_behavior="none")
    assert none["total"] == 5  # the switch is neither charged nor credited; the new add-on is billed
    result = api("billing.multi_attach", customer_id="u1", plans=plans, billing_behavior="none")
    assert result["invoice"]["total"] == 5
    assert api.plans_of("u1") == {"premium": "active", "extra": "active"}
    # premium keeps pro's period: its full price comes with the renewal on the same anchor
    subs = {sub["plan_id"]: sub for sub in api.customer("u1")["subscriptions"]}
    assert subs["premium"]["current_period_end"] == ms(2026, 5, 1)


def test_multi_attach_billing_behavior_refusals(api: Api) -> None:
    with_card(api, "u1")
    bad = api(
        "billing.multi_attach", expect=400, customer_id="u1", plans=[{"plan_id": "pro"}], billing_behavior="x"
    )
    assert bad["code"] == "invalid_inputs"
    # as attach's proration_behavior: 'none' cannot switch a free plan to a paid one
    free = api(
        "billing.multi_attach",
        expect=400,
        customer_id="u1",
        plans=[{"plan_id": "pro"}],
        billing_behavior="none",
    )
    assert free["code"] == "invalid_request", free
    assert api.plans_of("u1") == {"free": "active"}


def test_multi_attach_starts_at_backdates_and_bills_every_period_since(api: Api) -> None:
    _addon(api)
    with_card(api, "u1")
    api.clock.set(START + 45 * DAY)  # May 16
    plans = [{"plan_id": "pro"}, {"plan_id": "extra"}]
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=plans, starts_at=START)
    assert preview["total"] == 50  # April and May of pro (20 each) and of the add-on (5 each)
    result = api("billing.multi_attach", customer_id="u1", plans=plans, starts_at=START)
    assert result["invoice"]["total"] == 50
    customer = api.customer("u1")
    subs = {s["plan_id"]: s for s in customer["subscriptions"]}
    assert set(subs) == {"pro", "extra"}  # pro replaced the free plan
    for sub in subs.values():
        assert sub["started_at"] == START
        assert (sub["current_period_start"], sub["current_period_end"]) == (ms(2026, 5, 1), ms(2026, 6, 1))
    assert customer["balances"]["messages"]["next_reset_at"] == ms(2026, 6, 1)
    assert customer["balances"]["messages"]["granted"] == 1050
    api.clock.set(ms(2026, 6, 1) + 1)  # the renewal follows the backdated anchor
    invoices = api.customer("u1")["invoices"]
    # both plans renew on one invoice, as the one subscription they make (test_multi_attach_renewals.py)
    assert sorted(i["total"] for i in invoices) == [25, 50], invoices


def test_multi_attach_starts_at_refusals_change_nothing(api: Api) -> None:
    api(
        "plans.create",
        plan_id="trialed",
        name="Trialed",
        add_on=True,
        price={"amount": 9, "interval": "month"},
        free_trial={"duration_length": 7, "duration_type": "day", "card_required": False},
    )
    api(
        "plans.create",
        plan_id="gift",
        name="Gift",
        add_on=True,
        items=[{"feature_id": "messages", "included": 5}],
    )
    api("customers.get_or_create", customer_id="nocard")
    with_card(api, "u1")
    api.clock.set(START + 45 * DAY)
    pro = [{"plan_id": "pro"}]
    refusals: list[tuple[str, list[dict[str, Any]], Any]] = [
        ("u1", pro, START + 46 * DAY),  # a future moment
        ("u1", [{"plan_id": "gift"}], START),  # nothing paid and recurring
        ("u1", [{"plan_id": "trialed"}], START),  # a trial
        ("u1", pro, ms(2000, 1, 1)),  # over 250 backdated periods
        ("nocard", pro, START),  # it would go through Stripe Checkout
    ]
    for customer_id, plans, at in refusals:
        for op in ("billing.preview_multi_attach", "billing.multi_attach"):
            error = api(op, expect=400, customer_id=customer_id, plans=plans, starts_at=at)
            assert error["code"] == "invalid_request", (customer_id, plans, at, error)
    assert api("billing.multi_attach", expect=400, customer_id="u1", plans=pro, starts_at=-1)["code"] == (
        "invalid_inputs"
    )
    assert api.plans_of("u1") == {"free": "active"} and api.plans_of("nocard") == {"free": "active"}
    # with a paid subscription already, backdating is refused
    api("billing.attach", customer_id="u1", plan_id="pro")
    extra = [{"plan_id": "trialed"}]
    error = api("billing.multi_attach", expect=400, customer_id="u1", plans=extra, starts_at=START)
    assert "new Stripe subscription" in error["message"]


def _open(link: str) -> str:
    """Open a long-lived checkout link as a payer's browser does: where it sends them."""
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def test_long_lived_checkout_link_prices_the_attach_again_when_opened(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    result = api("billing.attach", customer_id="u1", plan_id="pro", long_lived_checkout=True)
    link = result["payment_url"]
    assert "/l/" in link and "/checkout/" not in link
    assert api.plans_of("u1") == {"free": "active"}  # nothing changes before payment
    first = _open(link)
    assert "/checkout/" in first
    assert _open(link) == first  # still waiting: the same checkout
    api.clock.set(START + 2 * DAY)  # that checkout expired (24 hours); the plan's price changed meanwhile
    api("plans.update", plan_id="pro", price={"amount": 25, "interval": "month"})
    fresh = _open(link)
    assert fresh != first and "/checkout/" in fresh
    if api.stripe is None:
        assert "$25.00" in httpx.get(fresh).text  # priced when opened
    assert api.pay(fresh).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    invoices = api.customer("u1")["invoices"]
    assert [i["total"] for i in invoices] == [25]
    assert _open(link) == fresh  # paid: back to that checkout, which shows it done
    api.clock.set(START + 91 * DAY)
    assert httpx.get(link, follow_redirects=False).status_code == 410  # the link lives 90 days


def test_long_lived_checkout_link_refused_once_the_attach_is(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    link = api("billing.attach", customer_id="u1", plan_id="pro", long_lived_checkout=True)["payment_url"]
    api.add_card("u1")
    api("billing.attach", customer_id="u1", plan_id="pro", long_lived_checkout=True)  # a card: no link
    assert api.plans_of("u1") == {"pro": "active"}
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 409 and "Cannot check out" in response.text  # the attach's own refusal
    error = api("billing.attach", expect=400, customer_id="u1", plan_id="premium", long_lived_checkout="x")
    assert error["code"] == "invalid_inputs"
    preview = api("billing.preview_attach", customer_id="u1", plan_id="premium", long_lived_checkout=True)
    assert preview["total"] == 30  # a preview takes it and changes nothing
    assert httpx.get(link.replace("/l/", "/l/x"), follow_redirects=False).status_code == 404
