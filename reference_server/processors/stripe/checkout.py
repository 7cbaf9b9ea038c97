"""Collecting a card for a Stripe organization through Stripe Checkout (``mode=setup``).

Raw card numbers never reach this server for an organization whose processor is Stripe: Stripe refuses
raw card data for almost every account, and taking it would put the server in PCI scope.  Whenever such
a customer has to enter a card (a checkout, ``redirect_mode: "always"``, ``billing.setup_payment``, the
portal's "update card", a retry after a decline or a failed authentication), the server creates a Stripe
Checkout Session in ``setup`` mode on the customer's Stripe customer.  Stripe's page collects and
authenticates the card (a SetupIntent for off-session use); the server then keeps charging its own
invoices off-session with that card, exactly as it does after its local card form.

Where ``payment_url`` points (checkout):
    the server's own order-summary page (``/checkout/{id}``), which lists the lines and the total due
    today and has a "Continue to Stripe" step, not the Stripe session URL directly.  A setup-mode
    Checkout page shows no amounts, so a payer sent straight there would authorize a card without ever
    seeing what it is about to be charged; the summary is where they see it (and can pay with a saved
    card instead, for ``redirect_mode: "always"``).  The Stripe session is created only when the payer
    continues, so an attach that is never paid leaves nothing at Stripe, and a session that expired or was
    abandoned is simply replaced by a fresh one.
``billing.setup_payment`` returns the Stripe session URL itself: nothing is due today (Autumn returns
    a setup-mode Stripe Checkout URL too).  The portal's update-card button goes to Stripe the same way.

Completion: the session's ``success_url`` is the server's return route, which retrieves the session,
saves its SetupIntent's payment method as the customer's default card (with its Stripe id) and continues
what the hosted session was for; Stripe's ``checkout.session.completed`` webhook does the same.  Whichever
arrives first applies it; the Stripe session id is recorded on the server's session (``action``), so the
second is a no-op.  The current Stripe session id is kept in ``billing_sessions.processor_id``.
"""

from __future__ import annotations

from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.processors.contract import CompletedSetup
from reference_server.processors.stripe.metadata import caller_metadata, with_server_keys
from reference_server.store.billing_sessions import SessionRecord, session_processor_id, update_session
from reference_server.store.customer_lookup import CustomerRef

APPLIED_KEY = "stripe_checkout_applied"
"""``action`` key: the Stripe Checkout Session ids already applied to a server session."""
ERROR_KEY = "stripe_checkout_error"
"""``action`` key: why the charge after the last Stripe Checkout failed (shown on the summary page)."""
BASE_URL_KEY = "stripe_checkout_base_url"
"""``action`` key: the public URL the payer used, for invoices created when the webhook comes first."""
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
CALLER_OPTIONS = ("locale", "billing_address_collection")
"""``checkout_session_params`` keys passed to Stripe as they are (checked when the request came in:
:mod:`reference_server.billing.checkout_session_params`)."""


def page_path(kind: str, session_id: str) -> str:
    """The server's hosted page of a session (``/checkout/{id}``, ``/setup/{id}``, ``/portal/{id}``)."""
    return f"/{kind}/{session_id}"


def start_path(kind: str, session_id: str) -> str:
    """``POST`` here sends the payer on to a Stripe Checkout Session for the server session."""
    return f"/{kind}/{session_id}/stripe"


def return_path(kind: str, session_id: str) -> str:
    """Stripe sends the payer back here (``?checkout_session=cs_...``) once the card is set up."""
    return f"/{kind}/{session_id}/stripe-return"


def current_session_id(conn: Connection, session_pk: int) -> str | None:
    return session_processor_id(conn, session_pk)


def create_setup_checkout(
    conn: Connection,
    client: stripe.StripeClient,
    stripe_customer: str,
    customer: CustomerRef,
    session_pk: int,
    session_id: str,
    kind: str,
    success_url: str,
    cancel_url: str,
    options: dict[str, Any] | None = None,
    attach_metadata: dict[str, str] | None = None,
) -> tuple[str, str]:
    """A setup-mode Checkout Session for the server session ``session_id``: (its id, its URL).

    ``success_url`` gets ``?checkout_session={CHECKOUT_SESSION_ID}``; the metadata names the server
    session so the webhook finds it.  The id is stored as the server session's ``processor_id``.
    ``options``: the caller's ``checkout_session_params`` (its :data:`CALLER_OPTIONS` are passed on and
    its ``metadata`` goes beside the server's own keys); ``attach_metadata``: the attach's ``metadata``
    (as :func:`~.metadata.caller_metadata` gives it), under ``checkout_session_params.metadata`` as
    Autumn merges them.  The server's own keys win over both.
    """
    options = options or {}
    separator = "&" if "?" in success_url else "?"
    metadata = {
        "autumn_session_id": session_id,
        "autumn_session_kind": kind,
        "autumn_customer_id": customer.id,
    }
    caller = {**(attach_metadata or {}), **caller_metadata(options.get("metadata"))}
    params: dict[str, Any] = {
        "mode": "setup",
        "customer": str(stripe_customer),
        "payment_method_types": ["card"],
        "client_reference_id": session_id,
        "success_url": f"{success_url}{separator}checkout_session={SESSION_ID_PLACEHOLDER}",
        "cancel_url": cancel_url,
        "metadata": with_server_keys(caller, metadata),
        "setup_intent_data": {"metadata": metadata},
        **{key: options[key] for key in CALLER_OPTIONS if options.get(key)},
    }
    created = client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    update_session(conn, session_pk, processor_id=created.id)
    return str(created.id), str(created.url)


def open_checkout_for(
    conn: Connection,
    client: stripe.StripeClient,
    stripe_customer: str,
    customer: CustomerRef,
    session: SessionRecord,
    base_url: str,
) -> str:
    """A new Checkout Session for a server session: back to :func:`return_path` when done, and to the
    caller's ``checkout_session_params.cancel_url`` (else the server's page) when the payer goes back;
    the caller's ``locale``, ``billing_address_collection`` and ``metadata`` are the session's too, and
    so is the attach's ``metadata`` when the session is a checkout (Autumn puts it on the Checkout
    Session of an attach, not on ``billing.setup_payment``'s)."""
    base = base_url.rstrip("/")
    body = session.action.get("body") or {}
    params = dict(body.get("checkout_session_params") or {})
    attach_metadata = caller_metadata(body.get("metadata")) if session.kind == "checkout" else {}
    cancel_url = str(params.get("cancel_url") or f"{base}{page_path(session.kind, session.id)}")
    update_session(conn, session.pk, action={**session.action, BASE_URL_KEY: base})
    _, url = create_setup_checkout(
        conn,
        client,
        stripe_customer,
        customer,
        session.pk,
        session.id,
        session.kind,
        f"{base}{return_path(session.kind, session.id)}",
        cancel_url,
        params,
        attach_metadata,
    )
    return url


def reusable_url(client: stripe.StripeClient, checkout_session_id: str | None) -> str | None:
    """The URL of a still-open Checkout Session, so going back and forth does not create new ones."""
    if not checkout_session_id:
        return None
    try:
        found = client.v1.checkout.sessions.retrieve(checkout_session_id)
    except stripe.StripeError:
        return None
    return str(found.url) if found.status == "open" and found.url else None


def expire_if_open(client: stripe.StripeClient, checkout_session_id: str | None) -> None:
    """Expire a Checkout Session nobody should finish any more (the server session completed otherwise)."""
    if not checkout_session_id:
        return
    try:
        found = client.v1.checkout.sessions.retrieve(checkout_session_id)
        if found.status == "open":
            client.v1.checkout.sessions.expire(checkout_session_id)
    except stripe.StripeError:
        return


def completed_setup(client: stripe.StripeClient, checkout_session_id: str) -> CompletedSetup | None:
    """The session's saved card, read from Stripe; None unless the session is complete and its
    SetupIntent succeeded (an open, expired or foreign session)."""
    try:
        session = client.v1.checkout.sessions.retrieve(
            checkout_session_id, {"expand": ["setup_intent.payment_method"]}
        )
    except stripe.InvalidRequestError:
        return None
    metadata: dict[str, Any] = session.metadata.to_dict() if session.metadata else {}
    intent: Any = session.setup_intent
    if session.status != "complete" or session.mode != "setup" or intent is None:
        return None
    if isinstance(intent, str):
        intent = client.v1.setup_intents.retrieve(intent, {"expand": ["payment_method"]})
    if intent.status != "succeeded" or intent.payment_method is None:
        return None
    pm: Any = intent.payment_method
    if isinstance(pm, str):
        pm = client.v1.payment_methods.retrieve(pm)
    card = pm.card
    server_id = metadata.get("autumn_session_id") or session.client_reference_id
    if not server_id:
        return None
    return CompletedSetup(
        checkout_session_id=str(session.id),
        server_session_id=str(server_id),
        server_session_kind=str(metadata.get("autumn_session_kind") or ""),
        stripe_customer=str(session.customer) if session.customer else None,
        payment_method_id=str(pm.id),
        brand=str(card.brand),
        last4=str(card.last4),
        exp_month=int(card.exp_month),
        exp_year=int(card.exp_year),
    )


__all__ = [
    "APPLIED_KEY",
    "BASE_URL_KEY",
    "CALLER_OPTIONS",
    "ERROR_KEY",
    "SESSION_ID_PLACEHOLDER",
    "CompletedSetup",
    "completed_setup",
    "create_setup_checkout",
    "current_session_id",
    "expire_if_open",
    "open_checkout_for",
    "page_path",
    "return_path",
    "reusable_url",
    "start_path",
]
