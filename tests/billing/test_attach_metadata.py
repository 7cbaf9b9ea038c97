"""``billing.attach``'s ``metadata`` (its preview's, ``billing.setup_payment``'s): on the Stripe
subscription, invoice and Checkout Session of the attach beside the server's own ``autumn_*`` keys (which
win; the caller's are stripped), Stripe's limits refused before anything is written, and refused for an
organization charged by the local processor, which has no Stripe object to carry it.  Over real HTTP on
SQLite and PostgreSQL, with the local processor and with Stripe (localstripe)."""

from __future__ import annotations

from typing import Any

from .helpers import DAY, Api, invoices_of, with_card
from .localstripe_server import stripe_checkout_url

ORDER = {"order": "42", "autumn_plan_id": "forged", "autumn_note": "dropped"}
"""The caller's metadata: one key of its own, two reserved ones (stripped)."""


def _stripe_metadata(found: Any) -> dict[str, str]:
    return dict(found.metadata.to_dict()) if found.metadata else {}


def _subscription(api: Api, customer_id: str) -> dict[str, str]:
    """The metadata of the customer's one active Stripe subscription (the mirror of its paid plan)."""
    assert api.stripe is not None
    stripe_customer = api.customer(customer_id)["stripe_id"]
    subs = api.stripe.v1.subscriptions.list({"customer": stripe_customer, "status": "active"}).data
    assert len(subs) == 1, subs
    return _stripe_metadata(subs[0])


def _invoice(api: Api, invoice: dict[str, Any]) -> dict[str, str]:
    assert api.stripe is not None
    return _stripe_metadata(api.stripe.v1.invoices.retrieve(str(invoice["stripe_id"])))


def _nothing_written(api: Api, customer_id: str) -> None:
    assert api.plans_of(customer_id) == {"free": "active"}
    assert invoices_of(api, customer_id) == []


def test_metadata_goes_on_the_stripe_subscription_and_invoice_of_the_attach(api: Api) -> None:
    with_card(api, "u1")
    if api.stripe is None:  # no Stripe object to carry it: refused, nothing written
        for op in ("billing.preview_attach", "billing.attach"):
            error = api(op, expect=400, customer_id="u1", plan_id="pro", metadata=ORDER)
            assert error["code"] == "unsupported_field", error
            assert error["message"].startswith("metadata is part of Autumn's API"), error
            assert "local processor" in error["message"], error
        _nothing_written(api, "u1")
        # What asks for nothing passes: {} and only reserved keys (stripped, as Autumn does).
        api("billing.attach", customer_id="u1", plan_id="pro", metadata={"autumn_x": "y"})
        api("billing.attach", customer_id="u1", plan_id="premium", metadata={})
        assert api.plans_of("u1") == {"premium": "active"}
        return
    api("billing.preview_attach", customer_id="u1", plan_id="pro", metadata=ORDER)
    api("billing.attach", customer_id="u1", plan_id="pro", metadata=ORDER)
    first = invoices_of(api, "u1")[0]
    on_invoice = _invoice(api, first)
    assert on_invoice["order"] == "42" and on_invoice["autumn_invoice_id"]  # beside the server's key
    assert not {"autumn_plan_id", "autumn_note"} & set(on_invoice)  # the caller's reserved keys: stripped
    on_sub = _subscription(api, "u1")
    assert (on_sub["order"], on_sub["autumn_plan_id"]) == ("42", "pro")  # the server's key wins
    assert "autumn_note" not in on_sub

    # An upgrade updates the same subscription: its metadata merged over the earlier attach's.
    api.clock.advance(15 * DAY)
    api("billing.attach", customer_id="u1", plan_id="premium", metadata={"order": "43", "seats": "5"})
    upgrade = invoices_of(api, "u1")[0]
    assert upgrade["stripe_id"] != first["stripe_id"]
    assert (_invoice(api, upgrade)["order"], _invoice(api, upgrade)["seats"]) == ("43", "5")
    on_sub = _subscription(api, "u1")
    assert (on_sub["order"], on_sub["seats"], on_sub["autumn_plan_id"]) == ("43", "5", "premium")
    # A later change without metadata leaves the keys there (Stripe keeps the keys an update does not name).
    api("billing.update", customer_id="u1", plan_id="premium", cancel_action="cancel_end_of_cycle")
    assert _subscription(api, "u1")["order"] == "43"
    assert _invoice(api, first)["order"] == "42"  # each invoice keeps its own attach's


def test_metadata_goes_on_the_stripe_checkout_session_under_checkout_session_params(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    metadata = {"order": "42", "campaign": "attach", "autumn_session_id": "sess_forged"}
    session_params = {"metadata": {"campaign": "session"}}
    if api.stripe is None:
        error = api("billing.attach", expect=400, customer_id="u1", plan_id="pro", metadata=metadata)
        assert error["code"] == "unsupported_field", error
        _nothing_written(api, "u1")
        return
    url = api(
        "billing.attach",
        customer_id="u1",
        plan_id="pro",
        metadata=metadata,
        checkout_session_params=session_params,
    )["payment_url"]
    assert url and invoices_of(api, "u1") == []  # nothing is billed before the payer pays
    stripe_url = stripe_checkout_url(url)
    session = api.stripe.v1.checkout.sessions.retrieve(stripe_url.rsplit("/", 1)[1])
    on_session = _stripe_metadata(session)
    assert (on_session["order"], on_session["campaign"]) == ("42", "session")  # the session's own win
    assert on_session["autumn_session_kind"] == "checkout"
    assert on_session["autumn_session_id"] != "sess_forged"  # the server's key, not the caller's
    assert api.pay(url).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    paid = invoices_of(api, "u1")[0]
    assert (paid["status"], _invoice(api, paid)["order"], _invoice(api, paid)["campaign"]) == (
        "paid",
        "42",
        "attach",  # checkout_session_params.metadata is the Checkout Session's alone
    )
    assert _subscription(api, "u1")["order"] == "42"


def test_setup_payment_metadata_goes_on_what_its_attach_makes(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    if api.stripe is None:
        error = api(
            "billing.setup_payment", expect=400, customer_id="u1", plan_id="pro", metadata={"order": "7"}
        )
        assert error["code"] == "unsupported_field" and error["message"].startswith("metadata "), error
        return
    url = api("billing.setup_payment", customer_id="u1", plan_id="pro", metadata={"order": "7"})["url"]
    # Autumn's setup Checkout Session carries checkout_session_params.metadata only, not the request's.
    session = api.stripe.v1.checkout.sessions.retrieve(url.rsplit("/", 1)[1])
    assert "order" not in _stripe_metadata(session)
    assert api.pay(url).status_code == 303
    assert api.plans_of("u1") == {"pro": "active"}
    assert _invoice(api, invoices_of(api, "u1")[0])["order"] == "7"
    assert _subscription(api, "u1")["order"] == "7"


def test_invoice_mode_sends_the_stripe_invoice_with_the_metadata(api: Api) -> None:
    api("customers.get_or_create", customer_id="u1")
    if api.stripe is None:
        return  # (refused like every other attach with metadata: see above)
    out = api(
        "billing.attach",
        customer_id="u1",
        plan_id="pro",
        invoice_mode={"enabled": True, "enable_plan_immediately": True},
        metadata={"po_number": "PO-1"},
    )
    assert out["invoice"]["status"] == "open"
    assert _invoice(api, out["invoice"])["po_number"] == "PO-1"
    assert _subscription(api, "u1")["po_number"] == "PO-1"


def test_metadata_stripe_would_refuse_is_refused_before_anything_is_written(api: Api) -> None:
    with_card(api, "u1")
    too_many = {f"k{i}": "v" for i in range(45)}  # 44 fit beside the subscription's 6 server keys
    cases: tuple[dict[str, str], ...] = (
        too_many,
        {"k" * 41: "v"},
        {"": "v"},
        {"a[b]": "v"},
        {"k": "v" * 501},
    )
    for metadata in cases:
        for op in ("billing.preview_attach", "billing.attach"):
            error = api(op, expect=400, customer_id="u1", plan_id="pro", metadata=metadata)
            assert error["code"] == "invalid_inputs", (metadata, error)
            assert error["message"].startswith("metadata: "), error
        error = api("billing.setup_payment", expect=400, customer_id="u1", plan_id="pro", metadata=metadata)
        assert error["code"] == "invalid_inputs", (metadata, error)
    assert (
        "at most 44 keys"
        in api("billing.attach", expect=400, customer_id="u1", plan_id="pro", metadata=too_many)["message"]
    )
    _nothing_written(api, "u1")
    if api.stripe is None:
        return
    # Reserved keys do not count: they are stripped.  44 of the caller's own fit.
    fits = {**{f"k{i}": "v" * 500 for i in range(44)}, **{f"autumn_{i}": "x" for i in range(10)}}
    api("billing.preview_attach", customer_id="u1", plan_id="pro", metadata=fits)
    # On the Checkout Session the attach's keys and checkout_session_params.metadata share 47.
    session_params = {"metadata": {f"s{i}": "v" for i in range(20)}}
    error = api(
        "billing.attach",
        expect=400,
        customer_id="u1",
        plan_id="pro",
        metadata={f"k{i}": "v" for i in range(30)},
        checkout_session_params=session_params,
    )
    assert error["code"] == "invalid_inputs" and "at most 47 keys" in error["message"], error
    too_many_on_session = {"metadata": {f"s{i}": "v" for i in range(48)}}
    error = api(
        "billing.attach",
        expect=400,
        customer_id="u1",
        plan_id="pro",
        checkout_session_params=too_many_on_session,
    )
    assert error["message"].startswith("checkout_session_params.metadata: at most 47 keys"), error
    _nothing_written(api, "u1")
    api("billing.attach", customer_id="u1", plan_id="pro", metadata=fits)
    on_sub = _subscription(api, "u1")
    assert on_sub["k43"] == "v" * 500 and "autumn_0" not in on_sub
    assert len(on_sub) == 44 + 5  # the server's keys: 5 here (6 on an entity's plan)
