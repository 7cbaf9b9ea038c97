"""Request fields the server used to accept and ignore, now acted on (or refused naming the field),
through the real server over HTTP on SQLite and PostgreSQL, locally and on Stripe (localstripe)."""

from __future__ import annotations

from .helpers import Api


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
