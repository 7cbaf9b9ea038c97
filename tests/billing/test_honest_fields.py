"""Request fields the server used to accept and ignore, now acted on (or refused naming the field),
through the real server over HTTP on SQLite and PostgreSQL, locally and on Stripe (localstripe)."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import DAY, Api, create_prepaid_team_plan


def test_preview_multi_attach_prices_a_customer_customer_data_would_create(api: Api) -> None:
    plans = [{"plan_id": "pro"}]
    missing = api("billing.preview_multi_attach", expect=404, customer_id="ada", plans=plans)
    assert missing["code"] == "customer_not_found"  # nothing to create it from
    data = {"name": "Ada", "email": "ada@example.com"}
    preview = api("billing.preview_multi_attach", customer_id="ada", customer_data=data, plans=plans)
    assert (preview["customer_id"], preview["total"]) == ("ada", 20)
    assert preview["redirect_to_checkout"] is True  # a new customer has no card
    # The preview wrote nothing: no customer, so the same preview again still works from its data.
    assert api("customers.get", expect=404, customer_id="ada")["code"] == "customer_not_found"
    again = api("billing.preview_multi_attach", customer_id="ada", customer_data=data, plans=plans)
    assert again["total"] == 20
    # The multi-attach itself creates the customer and asks for the previewed amount.
    done = api("billing.multi_attach", customer_id="ada", customer_data=data, plans=plans)
    assert done["payment_url"]
    assert api("customers.get", customer_id="ada")["name"] == "Ada"
    assert api.pay(done["payment_url"]).status_code == 303
    assert [i["total"] for i in api.customer("ada")["invoices"]] == [20]


def test_preview_multi_attach_prices_an_entity_entity_data_would_create(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1")
    plans = [{"plan_id": "pro"}]
    missing = api("billing.preview_multi_attach", expect=404, customer_id="u1", entity_id="w1", plans=plans)
    assert missing["code"] == "entity_not_found"
    entity = {"feature_id": "seats", "name": "Main workspace"}
    preview = api(
        "billing.preview_multi_attach", customer_id="u1", entity_id="w1", entity_data=entity, plans=plans
    )
    assert (preview["entity_id"], preview["total"], preview["redirect_to_checkout"]) == ("w1", 20, False)
    assert api("entities.get", expect=404, customer_id="u1", entity_id="w1")["code"] == "entity_not_found"
    # Both at once: a new customer with a new entity.
    preview = api(
        "billing.preview_multi_attach",
        customer_id="bea",
        customer_data={"name": "Bea"},
        entity_id="w1",
        entity_data=entity,
        plans=plans,
    )
    assert (preview["customer_id"], preview["entity_id"], preview["total"]) == ("bea", "w1", 20)
    assert api("customers.get", expect=404, customer_id="bea")["code"] == "customer_not_found"
    # Refused data is refused by the preview too, naming the field, before anything is created.
    error = api(
        "billing.preview_multi_attach",
        expect=400,
        customer_id="cy",
        customer_data={"currency": "eur"},
        plans=plans,
    )
    assert error["code"] == "unsupported_field" and "customer_data.currency" in error["message"]


def test_update_redirect_mode_always_waits_on_a_checkout_page(api: Api) -> None:
    create_prepaid_team_plan(api)
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1")
    hundred = [{"feature_id": "messages", "quantity": 100}]
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=hundred)
    api.clock.advance(15 * DAY)
    more = [{"feature_id": "messages", "quantity": 300}]
    body: dict[str, Any] = {"customer_id": "u1", "plan_id": "team", "feature_quantities": more}
    charged_now = api("billing.preview_update", **body)
    preview = api("billing.preview_update", redirect_mode="always", **body)
    assert (preview["total"], preview["redirect_to_checkout"], preview["checkout_type"]) == (
        charged_now["total"],
        True,
        "autumn_checkout",
    )
    assert charged_now["redirect_to_checkout"] is False
    result = api("billing.update", redirect_mode="always", **body)
    assert result["payment_url"] and "/checkout/" in result["payment_url"]
    assert "invoice" not in result
    # Nothing changes until the customer confirms on the page (with the saved card here).
    assert api.customer("u1")["balances"]["messages"]["granted"] == 100
    page = httpx.get(result["payment_url"])
    assert page.status_code == 200 and "Visa ending in 4242" in page.text
    assert httpx.post(result["payment_url"], data={"use_saved": "1"}).status_code == 303
    customer = api.customer("u1")
    assert customer["balances"]["messages"]["granted"] == 300
    assert [i["total"] for i in customer["invoices"]] == [charged_now["total"], 30]
    # never and if_required charge at once, as without the field (the same in Autumn).
    for mode in ("never", "if_required"):
        body["feature_quantities"] = [{"feature_id": "messages", "quantity": 400 if mode == "never" else 500}]
        done = api("billing.update", redirect_mode=mode, **body)
        assert done["payment_url"] is None and done["invoice"]["status"] == "paid"
    assert api.customer("u1")["balances"]["messages"]["granted"] == 500


def test_update_redirect_mode_always_is_refused_where_autumn_refuses_it(api: Api) -> None:
    create_prepaid_team_plan(api)
    api("customers.get_or_create", customer_id="u1")
    api.add_card("u1")
    hundred = [{"feature_id": "messages", "quantity": 100}]
    api("billing.attach", customer_id="u1", plan_id="team", feature_quantities=hundred)
    base = {"customer_id": "u1", "plan_id": "team", "redirect_mode": "always"}
    refusals: tuple[tuple[dict[str, Any], str], ...] = (
        ({"cancel_action": "cancel_end_of_cycle"}, "does not support cancel or uncancel"),
        ({"cancel_action": "cancel_immediately"}, "does not support cancel or uncancel"),
        ({"cancel_action": "uncancel"}, "does not support cancel or uncancel"),
        ({}, "no billing changes"),
        ({"feature_quantities": hundred}, "quantities are not updated"),
    )
    for extra, message in refusals:
        for op in ("billing.update", "billing.preview_update"):
            error = api(op, expect=400, **base, **extra)
            assert error["code"] == "invalid_request" and message in error["message"], (op, extra, error)
    assert api.plans_of("u1") == {"team": "active"}
    assert len(api.customer("u1")["invoices"]) == 1
