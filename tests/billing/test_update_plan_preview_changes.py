"""``billing.preview_update``'s ``incoming`` and ``outgoing`` for a customization (``customize``) or a
move to another ``version`` (intent ``update_plan``), through the real server over HTTP on SQLite and
PostgreSQL (the ``api`` fixture: the local processor and Stripe).

As Autumn's ``billingPlanToChanges`` (``getIsOutgoing``: a plan update is measured against the plan as it
stood), one plan comes in, the plan as changed (active now: no ``effective_at``), and one goes out, the
plan as it stood, leaving now, with its own cancellation. The update then does what it previewed.
"""

from __future__ import annotations

from typing import Any

from .helpers import DAY, START, Api, change, create_prepaid_team_plan, on_pro, subscription_of, with_card

NOW = START + 15 * DAY
PERIOD_END = START + 30 * DAY  # April 2026 has 30 days
MONTH = {"interval": "month"}


def _previews(api: Api, update: dict[str, Any]) -> dict[str, Any]:
    """``billing.preview_update``'s body for ``update`` of ``u1``.

    (``billing.preview_multi_update`` takes only cancel actions, ``MultiUpdateUpdate``, so no subscription
    of it is an ``update_plan``; it lists its changes by the same rule, ``update_changes.py``.)"""
    return api("billing.preview_update", customer_id="u1", **update)


def test_customize_lists_the_plan_as_changed_and_as_it_stood(api: Api) -> None:
    create_prepaid_team_plan(api)
    with_card(api)
    packs = [{"feature_id": "messages", "quantity": 300}]
    attached = api("billing.preview_attach", customer_id="u1", plan_id="team", feature_quantities=packs)
    assert attached["incoming"][0]["feature_quantities"] == packs  # as an attach lists them
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=packs)
    api.clock.advance(15 * DAY)

    update = {"plan_id": "team", "customize": {"price": {"amount": 30, **MONTH}}}
    preview = _previews(api, update)
    assert preview["intent"] == "update_plan" and preview["total"] == 5  # half a month of $10 more
    assert preview["next_cycle"]["total"] == 60  # Team at $30 with its 300 messages
    assert preview["incoming"] == [change("team", packs)]  # Team as customized, from now
    assert preview["outgoing"] == [change("team", packs, effective_at=NOW)]  # Team as it stood

    api("billing.update", customer_id="u1", **update)
    team = subscription_of(api, "team")
    assert (team["status"], team["canceled_at"], team["expires_at"]) == ("active", None, None)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300  # the packs it keeps


def test_version_move_lists_the_new_version_and_the_old(api: Api) -> None:
    on_pro(api)
    api("plans.update", plan_id="pro", price={"amount": 30, **MONTH})  # version 2; u1 stays on 1
    api.clock.advance(15 * DAY)
    update = {"plan_id": "pro", "version": 2}
    preview = _previews(api, update)
    assert preview["intent"] == "update_plan" and preview["total"] == 5
    assert preview["incoming"] == [change("pro", [])]
    assert preview["outgoing"] == [change("pro", [], effective_at=NOW)]
    api("billing.update", customer_id="u1", **update)
    assert api.plans_of("u1") == {"pro": "active"}


def test_customizing_a_cancelled_plan_lists_its_cancellation_going_out(api: Api) -> None:
    on_pro(api)
    api.clock.advance(10 * DAY)
    cancelled_at = START + 10 * DAY
    api("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    api.clock.advance(5 * DAY)
    customize = {"items": [{"feature_id": "messages", "included": 2000, "reset": MONTH}]}
    update = {"plan_id": "pro", "customize": customize}
    preview = _previews(api, update)
    assert preview["intent"] == "update_plan"
    pro = subscription_of(api, "pro")
    assert preview["outgoing"] == [
        change("pro", [], effective_at=NOW, canceled_at=cancelled_at, expires_at=PERIOD_END)
    ]
    # the customized plan comes in as the update leaves it: a new instance, with no cancellation
    assert preview["incoming"] == [change("pro", [])]
    assert pro["canceled_at"] == cancelled_at  # (the preview changed nothing)
    api("billing.update", customer_id="u1", **update)
    after = subscription_of(api, "pro")
    assert (after["status"], after["canceled_at"], after["expires_at"]) == ("active", None, None)


def test_customizing_a_free_plan_lists_it_in_and_out(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    assert api.plans_of("u1") == {"free": "active"}
    customize = {"items": [{"feature_id": "messages", "included": 250, "reset": MONTH}]}
    preview = _previews(api, {"plan_id": "free", "customize": customize})
    assert preview["intent"] == "update_plan" and preview["total"] == 0
    assert preview["incoming"] == [change("free", [])]
    assert preview["outgoing"] == [change("free", [], effective_at=START)]
    api("billing.update", customer_id="u1", plan_id="free", customize=customize)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 250
