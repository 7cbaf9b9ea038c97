"""``billing.update``'s free trial (``free_trial``, a shorthand for ``customize.free_trial``): start one on a
paying subscription, replace a running one, end one now with ``null``, keep one when it is left out; through
the real server over HTTP on SQLite and PostgreSQL, and on Stripe with localstripe (whose books the fixture
checks against the server's at the end of every scenario)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import (
    DAY,
    MAY,
    START,
    TWO_WEEKS,
    Api,
    create_trial_pro,
    invoices_of,
    on_pro,
    subscription_of,
    with_card,
)


def _trialing(api: Api) -> None:
    create_trial_pro(api, 7, group="trials")
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="trial_pro")
    assert subscription_of(api, "trial_pro")["trial_ends_at"] == START + 7 * DAY


def test_a_trial_on_a_paying_subscription_credits_its_unused_time(api: Api) -> None:
    on_pro(api)
    api("balances.track", customer_id="u1", feature_id="messages", value=35)
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "pro", "free_trial": TWO_WEEKS}
    preview = api("billing.preview_update", **body)
    assert preview["total"] == -20  # the whole month unused: credited
    assert preview["next_cycle"]["starts_at"] == START + 14 * DAY
    assert preview["next_cycle"]["total"] == 20

    answer = api("billing.update", **body)
    assert answer["invoice"]["total"] == preview["total"]
    subscription = subscription_of(api, "pro")
    assert subscription["trial_ends_at"] == START + 14 * DAY
    messages = api.customer("u1")["balances"]["messages"]
    assert (messages["granted"], messages["usage"]) == (1000, 35)  # usage kept through the change

    api.clock.set(START + 14 * DAY)  # the trial ends: the first period is billed (the credit pays it)
    renewal = invoices_of(api)[0]
    assert (renewal["total"], renewal["status"]) == (20, "paid"), renewal
    if api.stripe is None:  # (on Stripe nothing is asked of the card: the fixture checks its books)
        assert api.on_processor(renewal) == ("paid", 0)


def test_a_running_trial_is_replaced_kept_or_ended(api: Api) -> None:
    _trialing(api)
    api.clock.advance(3 * DAY)
    now = START + 3 * DAY
    month = {"duration_length": 1, "duration_type": "month", "card_required": True}
    longer = api("billing.preview_update", customer_id="u1", plan_id="trial_pro", free_trial=month)
    assert longer["total"] == 0
    assert longer["next_cycle"]["starts_at"] == MAY + 3 * DAY
    api("billing.update", customer_id="u1", plan_id="trial_pro", free_trial=month)
    assert subscription_of(api, "trial_pro")["trial_ends_at"] == MAY + 3 * DAY

    # customize.free_trial wins over the shorthand; a customization leaving the trial out keeps it
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "trial_pro"}
    wins = api("billing.preview_update", **body, free_trial=TWO_WEEKS, customize={"free_trial": month})
    assert wins["next_cycle"]["starts_at"] == MAY + 3 * DAY
    bigger = {"items": [{"feature_id": "messages", "included": 2000, "reset": {"interval": "month"}}]}
    kept = api("billing.preview_update", **body, customize=bigger)
    assert kept["total"] == 0 and kept["next_cycle"]["starts_at"] == MAY + 3 * DAY
    api("billing.update", **body, customize=bigger)
    assert subscription_of(api, "trial_pro")["trial_ends_at"] == MAY + 3 * DAY
    assert api.customer("u1")["balances"]["messages"]["granted"] == 2100  # (and Free's 100)

    # null ends it now: a whole period billed from now
    before = len(invoices_of(api))
    ended = api("billing.preview_update", **body, free_trial=None)
    assert ended["total"] == 20
    assert ended["next_cycle"]["starts_at"] == MAY + 3 * DAY  # a month from now
    answer = api("billing.update", **body, free_trial=None)
    assert answer["invoice"]["total"] == 20
    assert subscription_of(api, "trial_pro")["trial_ends_at"] is None
    invoices = invoices_of(api)
    assert len(invoices) == before + 1
    assert api.on_processor(invoices[0]) == ("paid", 2000)
    assert now == api.clock.now_ms()


def test_null_without_a_running_trial_changes_nothing(api: Api) -> None:
    on_pro(api)
    api.clock.advance(10 * DAY)
    before = invoices_of(api)
    preview = api("billing.preview_update", customer_id="u1", plan_id="pro", free_trial=None)
    assert preview["total"] == 0
    api("billing.update", customer_id="u1", plan_id="pro", free_trial=None)
    assert [i for i in invoices_of(api) if i["total"]] == [i for i in before if i["total"]]
    assert subscription_of(api, "pro")["trial_ends_at"] is None
    api.clock.set(MAY)
    assert invoices_of(api)[0]["total"] == 20  # renews on its anchor as before


@pytest.mark.parametrize("op", ["billing.update", "billing.preview_update"])
def test_what_autumn_refuses_is_400_and_writes_nothing(api: Api, op: str) -> None:
    _trialing(api)
    api("customers.get_or_create", customer_id="u2")  # on the free default plan only
    before = (invoices_of(api), subscription_of(api, "trial_pro"), api.customer("u2")["subscriptions"])
    revert = {**TWO_WEEKS, "on_end": "revert"}
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"customer_id": "u1", "plan_id": "trial_pro", "free_trial": revert},
            "on_end: 'revert' can only be set when attaching a plan.",
        ),
        (
            {"customer_id": "u2", "plan_id": "free", "free_trial": TWO_WEEKS},
            "free_trial can only be given on an update of a plan with a recurring price",
        ),
        (
            {
                "customer_id": "u1",
                "plan_id": "trial_pro",
                "free_trial": None,
                "custom_line_items": [{"amount": 5, "description": "Setup"}],
            },
            "custom_line_items cannot be used when the subscription update creates a Stripe-managed invoice"
            " (e.g. removing a trial)",
        ),
    ]
    for body, message in cases:
        error = api(op, 400, **body)
        assert (error["code"], error["message"]) == ("invalid_request", message), (body, error)
    malformed = api(op, 400, customer_id="u1", plan_id="trial_pro", free_trial={"duration_type": "day"})
    assert "message" in malformed and "code" in malformed
    after = (invoices_of(api), subscription_of(api, "trial_pro"), api.customer("u2")["subscriptions"])
    assert after == before


@pytest.mark.parametrize("op", ["billing.update", "billing.preview_update"])
def test_a_trial_beside_an_anchor_reset_is_refused(api: Api, op: str) -> None:
    """The trial starts now and the first period when it ends: an anchor reset would be dropped."""
    on_pro(api)
    before = (invoices_of(api), subscription_of(api, "pro"))
    for trial in ({"free_trial": TWO_WEEKS}, {"customize": {"free_trial": TWO_WEEKS}}):
        error = api(op, 400, customer_id="u1", plan_id="pro", billing_cycle_anchor="now", **trial)
        assert (error["code"], error["message"]) == (
            "invalid_request",
            "billing_cycle_anchor 'now' cannot be combined with a free trial: the trial starts now and the "
            "first period begins when it ends",
        )
    assert (invoices_of(api), subscription_of(api, "pro")) == before
