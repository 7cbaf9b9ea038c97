"""Request fields the server used to accept and ignore, now acted on (or refused naming the field),
through the real server over HTTP on SQLite and PostgreSQL, locally and on Stripe (localstripe)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from reference_server.store.stripe_objects import stripe_objects

from .helpers import DAY, START, Api, create_prepaid_team_plan, with_card
from .localstripe_server import stripe_checkout_url


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
    with_card(api, "u1")
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
    with_card(api, "u1")
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
    with_card(api, "u1")
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


CANCEL_URL = "https://app.example.com/pricing"
SUCCESS = "https://app.example.com/done"


def test_checkout_session_params_keys_not_served_are_refused_naming_the_key(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    pro: dict[str, Any] = {"customer_id": "u1", "plan_id": "pro"}
    plans = {"customer_id": "u1", "plans": [{"plan_id": "pro"}]}
    schedule = {"customer_id": "u1", "phases": [{"starts_at": START, "plans": [{"plan_id": "pro"}]}]}
    cases: tuple[tuple[str, dict[str, Any], str], ...] = (
        ("billing.attach", pro, "allow_promotion_codes"),
        ("billing.preview_attach", pro, "allow_promotion_codes"),
        ("billing.multi_attach", plans, "subscription_data"),
        ("billing.preview_multi_attach", plans, "subscription_data"),
        ("billing.create_schedule", schedule, "custom_text"),
        ("billing.setup_payment", {"customer_id": "u1"}, "consent_collection"),
        ("billing.attach", pro, "success_url"),
    )
    values = {
        "allow_promotion_codes": True,
        "subscription_data": {"metadata": {"a": "b"}},
        "custom_text": {"submit": {"message": "Thanks"}},
        "consent_collection": {"terms_of_service": "required"},
        "success_url": "https://app.example.com/elsewhere",
    }
    for op, body, key in cases:
        params = {"cancel_url": CANCEL_URL, key: values[key]}
        error = api(op, expect=400, checkout_session_params=params, **body)
        assert error["code"] == "unsupported_field", (op, error)
        assert error["message"].startswith(f"checkout_session_params.{key} is part of Autumn's API"), error
    assert "the request's own success_url" in error["message"]
    # A key that asks for nothing passes, as the official SDK's defaults do.
    quiet = {"allow_promotion_codes": False, "custom_text": {}, "shipping_options": [], "locale": None}
    api("billing.preview_attach", checkout_session_params=quiet, **pro)
    assert api.plans_of("u1") == {"free": "active"} and api.customer("u1")["invoices"] == []


def test_checkout_session_params_cancel_url_is_the_way_back_from_every_checkout_page(api: Api) -> None:
    for cid in ("u1", "u2", "u3"):
        api("customers.get_or_create", customer_id=cid)
    url = api(
        "billing.attach",
        customer_id="u1",
        plan_id="pro",
        success_url=SUCCESS,
        checkout_session_params={"cancel_url": CANCEL_URL},
    )["payment_url"]
    page = httpx.get(url)
    assert f'href="{CANCEL_URL}" id="return-link"' in page.text
    assert f'id="back-link" href="{CANCEL_URL}"' in page.text
    # Without it the way back is the success URL's site, as before.
    other = api("billing.attach", customer_id="u2", plan_id="pro", success_url=SUCCESS)["payment_url"]
    assert 'href="https://app.example.com/" id="return-link"' in httpx.get(other).text
    setup = api("billing.setup_payment", customer_id="u3", checkout_session_params={"cancel_url": CANCEL_URL})
    if api.stripe is None:
        assert f'href="{CANCEL_URL}" id="return-link"' in httpx.get(setup["url"]).text
    else:  # Stripe Checkout's own back link, on the setup's Stripe session and on the attach's
        assert _stripe_session(api, setup["url"]).cancel_url == CANCEL_URL
        assert _stripe_session(api, stripe_checkout_url(url)).cancel_url == CANCEL_URL
    assert api.pay(url).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    # A cancel_url that is not an absolute http(s) URL is refused before anything is written.
    for bad in ("javascript:alert(1)", "/pricing", 7):
        error = api(
            "billing.attach",
            expect=400,
            customer_id="u2",
            plan_id="premium",
            checkout_session_params={"cancel_url": bad},
        )
        assert error["code"] == "invalid_inputs" and "checkout_session_params.cancel_url" in error["message"]


def _stripe_session(api: Api, stripe_url: str) -> Any:
    assert api.stripe is not None and "/c/pay/" in stripe_url
    return api.stripe.v1.checkout.sessions.retrieve(stripe_url.rsplit("/", 1)[1])


STRIPE_CHECKOUT_OPTIONS = {
    "locale": "fr",
    "billing_address_collection": "required",
    "metadata": {"campaign": "spring", "seats": 3},
}


def test_checkout_session_params_served_on_stripe_checkout_only_where_there_is_one(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    api("customers.get_or_create", customer_id="u2")
    served_by_both = {"billing_address_collection": "auto", "payment_method_types": ["card"]}
    if api.stripe is None:
        # The server's own card form has no language but English, no address step and no Stripe session.
        for key, value in STRIPE_CHECKOUT_OPTIONS.items():
            for op in ("billing.attach", "billing.preview_attach"):
                error = api(
                    op, expect=400, customer_id="u1", plan_id="pro", checkout_session_params={key: value}
                )
                assert error["code"] == "unsupported_field", error
                assert f"checkout_session_params.{key} is part of Autumn's API" in error["message"]
                assert "only on Stripe Checkout" in error["message"]
        url = api("billing.attach", customer_id="u1", plan_id="pro", checkout_session_params=served_by_both)
        assert api.pay(url["payment_url"]).status_code == 303
        assert api.plans_of("u1") == {"pro": "active"}
        return
    options = {**STRIPE_CHECKOUT_OPTIONS, **{"payment_method_types": ["card"]}}
    url = api("billing.attach", customer_id="u1", plan_id="pro", checkout_session_params=options)[
        "payment_url"
    ]
    stripe_url = stripe_checkout_url(url)
    session = _stripe_session(api, stripe_url)
    assert (session.locale, session.billing_address_collection) == ("fr", "required")
    metadata = session.metadata.to_dict()
    assert (metadata["campaign"], metadata["seats"]) == ("spring", "3")
    assert metadata["autumn_session_kind"] == "checkout"  # the server's own keys stay
    assert api.pay(url).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    setup = api("billing.setup_payment", customer_id="u2", checkout_session_params={"locale": "de"})
    assert _stripe_session(api, setup["url"]).locale == "de"


def test_checkout_session_params_bad_values_are_refused(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    invalid_values = (
        {"locale": "klingon"},
        {"billing_address_collection": "sometimes"},
        {"payment_method_types": "card"},
        {"metadata": {"autumn_session_id": "sess_forged"}},
        {"metadata": {"k" * 41: "v"}},
        {"metadata": {"k": "v" * 501}},
        {"metadata": {"k": {"nested": True}}},
        {"metadata": "campaign"},
    )
    for params in invalid_values:
        for op in ("billing.attach", "billing.preview_attach"):
            error = api(op, expect=400, customer_id="u1", plan_id="pro", checkout_session_params=params)
            key = next(iter(params))
            assert error["code"] == "invalid_inputs", (params, error)
            assert error["message"].startswith(f"checkout_session_params.{key}:"), error
    other_types = {"payment_method_types": ["card", "us_bank_account"]}
    error = api(
        "billing.attach", expect=400, customer_id="u1", plan_id="pro", checkout_session_params=other_types
    )
    assert error["code"] == "unsupported_field" and "['us_bank_account']" in error["message"]
    assert api.plans_of("u1") == {"free": "active"} and api.customer("u1")["invoices"] == []


def _stripe_objects(api: Api, plan_id: str) -> dict[tuple[int, str], str]:
    """(version, price key) -> Stripe id of what the server made in Stripe for ``plan_id``."""
    with api.server.app.state.autumn.db.read() as conn:
        rows = conn.execute(select(stripe_objects).where(stripe_objects.c.plan_id == plan_id)).all()
    return {(int(r.plan_version), str(r.price_key)): str(r.stripe_id) for r in rows}


def test_create_in_stripe_makes_the_plans_stripe_product_when_it_is_written(api: Api) -> None:
    price = {"amount": 15, "interval": "month"}
    solo = api("plans.create", plan_id="solo", name="Solo", price=price, create_in_stripe=True)
    assert solo["id"] == "solo"
    api("plans.create", plan_id="later", name="Later", price=price, create_in_stripe=False)
    api("plans.create", plan_id="lazy", name="Lazy", price=price)
    assert _stripe_objects(api, "later") == _stripe_objects(api, "lazy") == {}  # made when first billed
    if api.stripe is None:  # charged locally: no Stripe account, nothing to make (as Autumn without Stripe)
        assert _stripe_objects(api, "solo") == {}
        return
    made = _stripe_objects(api, "solo")
    assert set(made) == {(1, ""), (1, "base")}
    product = api.stripe.v1.products.retrieve(made[(1, "")])
    assert (product.name, product.metadata["autumn_plan_id"]) == ("Solo", "solo")
    base = api.stripe.v1.prices.retrieve(made[(1, "base")])
    assert base.recurring is not None
    assert (base.unit_amount, base.recurring.interval, base.product) == (1500, "month", product.id)
    # Billing the plan uses what was made; a rename with create_in_stripe renames the Product at once.
    with_card(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="solo")
    assert _stripe_objects(api, "solo") == made
    api("plans.update", plan_id="solo", name="Solo Plus", create_in_stripe=True)
    assert api.stripe.v1.products.retrieve(made[(1, "")]).name == "Solo Plus"
    # A new version (its price changed while it has a customer) gets its own Product and Price at once.
    api("plans.update", plan_id="solo", price={"amount": 18, "interval": "month"}, create_in_stripe=True)
    assert set(_stripe_objects(api, "solo")) == {(1, ""), (1, "base"), (2, ""), (2, "base")}


def test_adjustable_quantities_are_refused_naming_the_field(api: Api) -> None:
    create_prepaid_team_plan(api)
    api("customers.get_or_create", customer_id="u1")
    quantities = [{"feature_id": "messages", "quantity": 100, "adjustable": True}]
    cases: tuple[tuple[str, dict[str, Any], str], ...] = (
        ("billing.attach", {"plan_id": "team", "feature_quantities": quantities}, "feature_quantities"),
        (
            "billing.preview_attach",
            {"plan_id": "team", "feature_quantities": quantities},
            "feature_quantities",
        ),
        (
            "billing.setup_payment",
            {"plan_id": "team", "feature_quantities": quantities},
            "feature_quantities",
        ),
        (
            "billing.multi_attach",
            {"plans": [{"plan_id": "team", "feature_quantities": quantities}]},
            "plans[*].feature_quantities",
        ),
        ("billing.update", {"plan_id": "team", "feature_quantities": quantities}, "feature_quantities"),
    )
    for op, body, path in cases:
        error = api(op, expect=400, customer_id="u1", **body)
        assert error["code"] == "unsupported_field", (op, error)
        assert error["message"].startswith(f"{path}[*].adjustable is part of Autumn's API"), error
    not_adjustable = [{"feature_id": "messages", "quantity": 100, "adjustable": False}]
    preview = api(
        "billing.preview_attach", customer_id="u1", plan_id="team", feature_quantities=not_adjustable
    )
    assert preview["total"] == 30


def test_update_customizes_a_free_plan(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    items = [{"feature_id": "messages", "included": 777, "reset": {"interval": "month"}}]
    preview = api("billing.preview_update", customer_id="u1", plan_id="free", customize={"items": items})
    assert (preview["intent"], preview["total"]) == ("update_plan", 0)
    done = api("billing.update", customer_id="u1", plan_id="free", customize={"items": items})
    assert done["payment_url"] is None
    customer = api.customer("u1")
    assert customer["balances"]["messages"]["granted"] == 777
    assert [s["plan_id"] for s in customer["subscriptions"]] == ["free"] and customer["invoices"] == []


def test_multi_attach_redirect_mode_as_autumn_decides_it(api: Api) -> None:
    plans = [{"plan_id": "pro"}]
    with_card(api, "card")
    # With a card on file only "always" goes to checkout; the preview says so too.
    always = api("billing.preview_multi_attach", customer_id="card", plans=plans, redirect_mode="always")
    assert always["redirect_to_checkout"] is True
    assert (
        api("billing.preview_multi_attach", customer_id="card", plans=plans)["redirect_to_checkout"] is False
    )
    # Without one, "never" charges instead of sending to checkout (the charge then needs the customer).
    api("customers.get_or_create", customer_id="nocard")
    never = api("billing.preview_multi_attach", customer_id="nocard", plans=plans, redirect_mode="never")
    assert never["redirect_to_checkout"] is False
    done = api("billing.multi_attach", customer_id="nocard", plans=plans, redirect_mode="never")
    assert done["required_action"]["code"] == "payment_method_required"
    assert done["invoice"]["status"] == "open" and done["payment_url"]
    assert api.on_processor(done["invoice"]) == ("open", 2000)  # Stripe's books show it open too
    assert api.plans_of("nocard") == {"free": "active"}
    # The payment link pays that invoice and makes the change.
    assert api.pay(done["payment_url"]).status_code == 303
    assert api.plans_of("nocard") == {"pro": "active"}
    (paid,) = api.customer("nocard")["invoices"]
    assert paid["stripe_id"] == done["invoice"]["stripe_id"]
    assert api.on_processor(paid) == ("paid", 2000)


def test_entities_list_filters_as_customers_list_does(api: Api) -> None:
    api(
        "plans.create",
        plan_id="boost",
        name="Boost",
        add_on=True,
        items=[{"feature_id": "messages", "included": 50}],
    )
    for cid in ("u1", "u2"):
        api("customers.get_or_create", customer_id=cid)
    api("entities.create", customer_id="u1", entity_id="alpha", feature_id="seats", name="Alpha team")
    api("entities.create", customer_id="u1", entity_id="beta", feature_id="seats", name="Beta team")
    api("entities.create", customer_id="u2", entity_id="gamma", feature_id="seats", name="Gamma")
    api("billing.attach", customer_id="u1", entity_id="beta", plan_id="boost")
    api("billing.attach", customer_id="u2", plan_id="boost")  # the customer's: gamma inherits it

    def ids(**body: Any) -> list[str]:
        return [e["id"] for e in api("entities.list", **body)["list"]]

    assert ids() == ["alpha", "beta", "gamma"]
    assert ids(search="TEAM") == ["alpha", "beta"]
    assert ids(search="gam") == ["gamma"]
    assert ids(plans=[{"id": "boost"}]) == ["beta", "gamma"]
    assert ids(plans=[{"id": "boost", "versions": [2]}]) == []
    assert ids(plans=[{"id": "boost"}], customer_id="u1") == ["beta"]
    assert ids(subscription_status="scheduled") == []
    assert ids(processors=["revenuecat"]) == []
    api.add_card("u2")  # u2 now has a Stripe customer on Stripe; nobody does on the local processor
    assert ids(processors=["stripe", "vercel"]) == (["gamma"] if api.stripe is not None else [])
    customers = [c["id"] for c in api("customers.list", processors=["vercel"])["list"]]
    assert customers == []
