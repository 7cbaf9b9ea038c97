"""``billing.update`` with ``customize`` beside other fields that make it one plan change.

- ``customize`` with both ``feature_quantities`` and ``license_quantities``: in Autumn
  (``setupUpdateSubscriptionIntent``) new items, licenses, version or free trial make the update a plan
  change (``update_plan``); ``license_quantities`` alone make it a change of seats
  (``update_license_quantity``), and only there is the pair refused ("license_quantities cannot be
  combined with feature_quantities in one update.", ``handleLicenseQuantityErrors``). On the plan change
  both are taken: the customized plan's prepaid features get the given quantities and its pools the
  given seats, priced as one change, neither one dropped.
- ``billing_cycle_anchor: "now"`` with ``customize`` and ``feature_quantities``: Autumn refuses the
  anchor beside quantities only on an update of quantities (``handleUpdateSubscriptionBillingCycleAnchor
  Errors``); on a plan change the cycle restarts at the request: the unused time is credited, a whole new
  period charged, and the next renewal is a month from the change.

Through the real server over HTTP on SQLite and PostgreSQL (the ``api`` fixture: the local processor and
Stripe); the preview is what the update then bills.
"""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import (
    DAY,
    MAY,
    Api,
    applied_like_preview,
    create_prepaid_team_plan,
    invoices_of,
    subscription_of,
    with_card,
)

MONTH = {"interval": "month"}
PACKS_300 = [{"feature_id": "messages", "quantity": 300}]
PACKS_500 = [{"feature_id": "messages", "quantity": 500}]


def _seat_team(api: Api) -> None:
    """Plan ``seat_team``: $20/month, prepaid messages at $10 per pack of 100, and seats of the license
    plan ``seat`` ($30/month each, one included)."""
    api(
        "plans.create",
        plan_id="seat",
        name="Seat",
        group="licenses",
        price={"amount": 30, **MONTH},
        items=[{"feature_id": "messages", "included": 10, "reset": MONTH}],
    )
    packs = {"amount": 10, "interval": "month", "billing_method": "prepaid", "billing_units": 100}
    api(
        "plans.create",
        plan_id="seat_team",
        name="Seat team",
        price={"amount": 20, **MONTH},
        items=[{"feature_id": "messages", "included": 0, "reset": MONTH, "price": packs}],
        licenses=[{"license_plan_id": "seat", "included": 1}],
    )


def _seats(api: Api) -> dict[str, Any]:
    pools = [p for p in api("licenses.list", customer_id="u1")["list"] if p["license_plan_id"] == "seat"]
    assert len(pools) == 1, pools
    return dict(pools[0])


def _on_seat_team(api: Api) -> None:
    """u1 pays for Seat team with 3 packs ($30) and 3 seats (2 paid, $60): $110 a month from now."""
    _seat_team(api)
    with_card(api)
    api(
        "billing.attach",
        customer_id="u1",
        plan_id="seat_team",
        feature_quantities=PACKS_300,
        license_quantities=[{"license_plan_id": "seat", "quantity": 3}],
    )
    assert invoices_of(api)[0]["total"] == 110


def test_customize_with_feature_and_license_quantities_takes_both(api: Api) -> None:
    _on_seat_team(api)
    api.clock.advance(15 * DAY)  # half of April (30 days) left
    update = {
        "plan_id": "seat_team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
    }
    preview = applied_like_preview(api, update)
    assert preview["intent"] == "update_plan"
    # a month: $30 + 5 packs ($50) + 4 paid seats ($120) = $200, was $110; half of each
    assert preview["total"] == 100 - 55
    assert preview["next_cycle"]["total"] == 200
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    assert (_seats(api)["granted"], _seats(api)["paid_quantity"]) == (5, 4)
    team = subscription_of(api, "seat_team")
    assert (team["status"], team["canceled_at"], team["expires_at"]) == ("active", None, None)


def test_customize_with_both_quantities_through_checkout_takes_both(api: Api) -> None:
    """``redirect_mode: "always"``: nothing changes until the page is confirmed; then both are taken."""
    _on_seat_team(api)
    api.clock.advance(15 * DAY)
    update: dict[str, Any] = {
        "customer_id": "u1",
        "plan_id": "seat_team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
        "redirect_mode": "always",
    }
    preview = api("billing.preview_update", **update)
    assert (preview["intent"], preview["total"], preview["redirect_to_checkout"]) == ("update_plan", 45, True)
    result = api("billing.update", **update)
    assert result["payment_url"] and "/checkout/" in result["payment_url"]
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300
    assert _seats(api)["granted"] == 3
    assert httpx.post(result["payment_url"], data={"use_saved": "1"}).status_code == 303
    assert [i["total"] for i in invoices_of(api)] == [45, 110]
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    assert (_seats(api)["granted"], _seats(api)["paid_quantity"]) == (5, 4)
    if api.stripe is not None:
        api.check_stripe_books()


def test_both_quantities_without_a_customize_are_refused(api: Api) -> None:
    """Without a plan change the pair is a change of seats, where Autumn refuses it: a 400, nothing billed."""
    _on_seat_team(api)
    update = {
        "plan_id": "seat_team",
        "feature_quantities": PACKS_500,
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
    }
    for op in ("billing.preview_update", "billing.update"):
        refused = api(op, expect=400, customer_id="u1", **update)
        assert (
            refused["message"]
            == "license_quantities cannot be combined with feature_quantities in one update."
        )
    assert len(invoices_of(api)) == 1
    assert _seats(api)["granted"] == 3


def test_anchor_now_with_customize_and_quantities_restarts_the_cycle(api: Api) -> None:
    create_prepaid_team_plan(api)
    with_card(api)
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=PACKS_300)
    assert invoices_of(api)[0]["total"] == 50
    api.clock.advance(15 * DAY)
    now = api.clock.now_ms()
    update = {
        "plan_id": "team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
        "billing_cycle_anchor": "now",
    }
    preview = applied_like_preview(api, update)
    assert preview["intent"] == "update_plan"
    # a whole new month of $30 + 5 packs ($80) less the unused half of the $50 paid
    assert preview["total"] == 80 - 25
    assert preview["next_cycle"]["total"] == 80
    team = subscription_of(api, "team")
    assert (team["current_period_start"], team["current_period_end"]) == (now, now + 30 * DAY)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    # the old anchor (May 1) bills nothing; the renewal comes a month from the change, at the new price
    api.clock.set(MAY + DAY)
    assert len(invoices_of(api)) == 2
    api.clock.set(now + 30 * DAY + 1)
    invoices = invoices_of(api)
    assert [i["total"] for i in invoices[:2]] == [80, 55]
    if api.stripe is not None:
        api.check_stripe_books()


def test_anchor_now_with_customize_and_both_quantities_restarts_the_cycle(api: Api) -> None:
    _on_seat_team(api)
    api.clock.advance(15 * DAY)
    now = api.clock.now_ms()
    update = {
        "plan_id": "seat_team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
        "billing_cycle_anchor": "now",
    }
    preview = applied_like_preview(api, update)
    # a whole new month ($30 + 5 packs + 4 paid seats: $200) less the unused half of the $110 paid
    assert (preview["intent"], preview["total"], preview["next_cycle"]["total"]) == ("update_plan", 145, 200)
    team = subscription_of(api, "seat_team")
    assert (team["current_period_start"], team["current_period_end"]) == (now, now + 30 * DAY)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    assert (_seats(api)["granted"], _seats(api)["paid_quantity"]) == (5, 4)
    api.clock.set(now + 30 * DAY + 1)
    assert [i["total"] for i in invoices_of(api)[:2]] == [200, 145]
    if api.stripe is not None:
        api.check_stripe_books()


def test_a_version_change_with_both_quantities_takes_both(api: Api) -> None:
    """``version`` is a plan change too (as in Autumn): both quantities are taken on it."""
    _on_seat_team(api)
    api("plans.update", plan_id="seat_team", price={"amount": 30, **MONTH})  # version 2
    api.clock.advance(15 * DAY)
    update = {
        "plan_id": "seat_team",
        "version": 2,
        "feature_quantities": PACKS_500,
        "license_quantities": [{"license_plan_id": "seat", "quantity": 5}],
    }
    preview = applied_like_preview(api, update)
    assert (preview["intent"], preview["total"], preview["next_cycle"]["total"]) == ("update_plan", 45, 200)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    assert (_seats(api)["granted"], _seats(api)["paid_quantity"]) == (5, 4)


def test_anchor_now_with_a_version_change_restarts_the_cycle(api: Api) -> None:
    _on_seat_team(api)
    api("plans.update", plan_id="seat_team", price={"amount": 30, **MONTH})  # version 2
    api.clock.advance(15 * DAY)
    now = api.clock.now_ms()
    update = {"plan_id": "seat_team", "version": 2, "billing_cycle_anchor": "now"}
    preview = applied_like_preview(api, update)
    # a whole month of version 2 ($30 + 3 packs + 2 paid seats: $120) less the unused half of $110
    assert (preview["intent"], preview["total"], preview["next_cycle"]["total"]) == ("update_plan", 65, 120)
    team = subscription_of(api, "seat_team")
    assert (team["current_period_start"], team["current_period_end"]) == (now, now + 30 * DAY)


def test_anchor_now_without_a_plan_change_is_autumns_400(api: Api) -> None:
    """As Autumn's ``handleUpdateSubscriptionBillingCycleAnchorErrors``: beside quantities only (a change of
    seats first) or a cancel action the anchor is a 400 ``invalid_request``; nothing changes."""
    _on_seat_team(api)
    api.clock.advance(15 * DAY)
    seats_5 = [{"license_plan_id": "seat", "quantity": 5}]
    refusals: tuple[tuple[dict[str, Any], str], ...] = (
        ({"feature_quantities": PACKS_500}, "feature_quantities"),
        ({"license_quantities": seats_5}, "license_quantities"),
        ({"feature_quantities": PACKS_500, "license_quantities": seats_5}, "license_quantities"),
        ({"cancel_action": "cancel_end_of_cycle"}, "a cancel action"),
        ({"cancel_action": "cancel_immediately"}, "a cancel action"),
    )
    for body, what in refusals:
        for op in ("billing.preview_update", "billing.update"):
            refused = api(op, 400, customer_id="u1", plan_id="seat_team", billing_cycle_anchor="now", **body)
            assert refused["code"] == "invalid_request", refused
            assert refused["message"] == f"billing_cycle_anchor cannot be used together with {what}"
    assert len(invoices_of(api)) == 1
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300
    assert _seats(api)["granted"] == 3
    assert subscription_of(api, "seat_team")["status"] == "active"
