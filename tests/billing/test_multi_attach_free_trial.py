"""``billing.multi_attach``'s request-wide ``free_trial`` (and its preview's): Autumn's one trial for the
subscription the multi-attach makes, started by every plan with a recurring price (in place of their own);
``null`` attaches them without a trial. Through the real server over HTTP on SQLite and PostgreSQL, and on
Stripe with localstripe (whose books the fixture checks against the server's)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import DAY, START, TWO_WEEKS, Api, create_extra, create_pack, with_card


def _catalog(api: Api) -> None:
    create_extra(api, free_trial={"duration_length": 3, "duration_type": "day", "card_required": True})
    create_pack(api)
    with_card(api, "u1")


def _trial_ends(api: Api) -> dict[str, Any]:
    return {s["plan_id"]: s["trial_ends_at"] for s in api.customer("u1")["subscriptions"]}


PLANS = [{"plan_id": "pro"}, {"plan_id": "extra"}, {"plan_id": "pack"}]


def test_one_trial_for_every_recurring_plan(api: Api) -> None:
    _catalog(api)
    own = api("billing.preview_multi_attach", customer_id="u1", plans=PLANS)
    assert own["total"] == 30  # Pro $20 now, Extra on its own 3-day trial, the Pack $10
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=PLANS, free_trial=TWO_WEEKS)
    assert preview["total"] == 10  # only the one-off Pack now
    assert preview["next_cycle"]["starts_at"] == START + 14 * DAY
    assert preview["next_cycle"]["total"] == 35

    answer = api("billing.multi_attach", customer_id="u1", plans=PLANS, free_trial=TWO_WEEKS)
    assert answer["invoice"]["total"] == preview["total"]
    assert _trial_ends(api) == {"pro": START + 14 * DAY, "extra": START + 14 * DAY}
    customer = api.customer("u1")
    assert [p["plan_id"] for p in customer["purchases"]] == ["pack"]
    assert customer["balances"]["messages"]["granted"] == 1250
    invoice = customer["invoices"][0]
    assert api.on_processor(invoice) == ("paid", 1000)

    api.clock.set(START + 14 * DAY)  # the trial ends for both: one period of each, on one invoice
    renewal = api.customer("u1")["invoices"][0]  # (test_multi_attach_renewals.py: its lines, later cycles)
    assert (renewal["total"], renewal["status"]) == (35, "paid")
    assert sorted(renewal["plan_ids"]) == ["extra", "pro"]


def test_null_attaches_without_the_plans_trials(api: Api) -> None:
    _catalog(api)
    plans = [{"plan_id": "pro"}, {"plan_id": "extra"}]
    preview = api("billing.preview_multi_attach", customer_id="u1", plans=plans, free_trial=None)
    assert preview["total"] == 35  # Extra's own trial is not started
    answer = api("billing.multi_attach", customer_id="u1", plans=plans, free_trial=None)
    assert answer["invoice"]["total"] == 35
    assert api.on_processor(answer["invoice"]) == ("paid", 3500)
    assert _trial_ends(api) == {"pro": None, "extra": None}


@pytest.mark.parametrize("op", ["billing.multi_attach", "billing.preview_multi_attach"])
def test_a_malformed_trial_is_400_and_writes_nothing(api: Api, op: str) -> None:
    _catalog(api)
    for trial in ({"duration_type": "day"}, {"duration_length": 7, "duration_type": "fortnight"}):
        error = api(op, 400, customer_id="u1", plans=PLANS, free_trial=trial)
        assert "message" in error and "code" in error
    assert api.plans_of("u1") == {"free": "active"}
    assert api.customer("u1")["invoices"] == []
