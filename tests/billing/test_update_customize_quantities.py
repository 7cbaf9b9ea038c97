"""``billing.update`` with both ``customize`` and ``feature_quantities``: as Autumn's
``computeUpdateSubscriptionIntent`` (new items, version or free trial make the update a plan change) and
``computeCustomPlanFeatureQuantities`` (the customized plan's prepaid features take the request's
quantities, else the current ones), the update is one plan change to the customized plan with the given
quantities, priced as one change, never a change of quantities that drops the customization.

Through the real server over HTTP on SQLite and PostgreSQL (the ``api`` fixture: the local processor and
Stripe); the preview is what the update then bills.
"""

from __future__ import annotations

from .helpers import (
    DAY,
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


def _on_team_with_300(api: Api) -> None:
    """u1 pays for Team ($20/month) with 3 packs of 100 messages ($10 each): $50 a month from now."""
    create_prepaid_team_plan(api)
    with_card(api)
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=PACKS_300)
    assert invoices_of(api)[0]["total"] == 50


def test_customized_price_and_new_quantities_are_one_plan_change(api: Api) -> None:
    _on_team_with_300(api)
    api.clock.advance(15 * DAY)  # half of April (30 days) left
    update = {
        "plan_id": "team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
    }
    preview = applied_like_preview(api, update)
    assert preview["intent"] == "update_plan"
    # half a month of $30 + 5 packs ($80) less half a month of $20 + 3 packs ($50): $40 - $25
    assert preview["total"] == 15
    assert preview["next_cycle"]["total"] == 80
    assert preview["incoming"][0]["feature_quantities"] == PACKS_500

    team = subscription_of(api, "team")
    assert (team["status"], team["canceled_at"], team["expires_at"]) == ("active", None, None)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500
    # the customization stayed: a later change of quantities alone is priced on the $30 plan
    api.clock.advance(5 * DAY)
    later = api("billing.preview_update", customer_id="u1", plan_id="team", feature_quantities=PACKS_500)
    assert later["intent"] == "update_quantity"
    assert later["next_cycle"]["total"] == 80


def test_customized_items_take_the_given_quantities(api: Api) -> None:
    _on_team_with_300(api)
    api.clock.advance(15 * DAY)
    pack_of_100_at_20 = {"amount": 20, "interval": "month", "billing_method": "prepaid", "billing_units": 100}
    update = {
        "plan_id": "team",
        "customize": {
            "items": [{"feature_id": "messages", "included": 0, "reset": MONTH, "price": pack_of_100_at_20}]
        },
        "feature_quantities": [{"feature_id": "messages", "quantity": 200}],
    }
    preview = applied_like_preview(api, update)
    assert preview["intent"] == "update_plan"
    # half a month of $20 + 2 packs at $20 ($60) less half a month of the $50 it paid: $30 - $25
    assert preview["total"] == 5
    assert preview["next_cycle"]["total"] == 60
    assert api.customer("u1")["balances"]["messages"]["granted"] == 200


def test_customize_without_quantities_keeps_the_current_ones(api: Api) -> None:
    _on_team_with_300(api)
    api.clock.advance(15 * DAY)
    update = {"plan_id": "team", "customize": {"price": {"amount": 30, **MONTH}}}
    preview = applied_like_preview(api, update)
    assert (preview["intent"], preview["total"], preview["next_cycle"]["total"]) == ("update_plan", 5, 60)
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300


def test_recalculate_balances_beside_a_customize_is_refused(api: Api) -> None:
    """``recalculate_balances`` applies to a change of quantities only: beside a customization it is a
    400, not a quantity change that drops the customization."""
    _on_team_with_300(api)
    update = {
        "plan_id": "team",
        "customize": {"price": {"amount": 30, **MONTH}},
        "feature_quantities": PACKS_500,
        "recalculate_balances": {"enabled": True},
    }
    for op in ("billing.preview_update", "billing.update"):
        refused = api(op, expect=400, customer_id="u1", **update)
        assert refused["code"] == "invalid_inputs"
    assert api.customer("u1")["balances"]["messages"]["granted"] == 300
    assert len(invoices_of(api)) == 1
