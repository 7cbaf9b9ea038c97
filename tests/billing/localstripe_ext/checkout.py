"""Stripe Checkout Sessions (``mode=setup``) for localstripe: TEST INFRASTRUCTURE ONLY.

localstripe 1.15 has SetupIntents, PaymentMethods, Customers and signed webhooks but no Checkout.
This module adds, on top of localstripe's own objects and store:

* the ``checkout.session`` object, modelled on Stripe's documented one: ``id`` (``cs_test_...``),
  ``url``, ``mode``, ``customer``, ``setup_intent``, ``status`` (``open`` | ``complete`` |
  ``expired``), ``success_url`` (``{CHECKOUT_SESSION_ID}`` is replaced when the payer is sent there),
  ``cancel_url``, ``metadata``, ``client_reference_id``, ``expires_at``, ``payment_status``, ``locale``,
  ``billing_address_collection`` (stored and shown as given);
  ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}`` and
  ``POST /v1/checkout/sessions/{id}/expire``.  Only ``mode=setup`` is modelled (a 400 otherwise).
* a minimal hosted page at ``session.url`` (``/c/pay/{id}``, like checkout.stripe.com) where a test card
  is typed: ``4242 4242 4242 4242`` succeeds, ``4000 0000 0000 0002`` is declined (the error shows on the
  page, the session stays open), ``4000 0025 0000 3155`` / ``4000 0027 6000 3184`` ask for 3-D Secure
  (an authenticate step).  Completing confirms the session's SetupIntent with localstripe's own
  objects, attaches the card to the customer, sends ``checkout.session.completed`` through localstripe's
  webhook mechanism (signed like its other events) and redirects to ``success_url``.
* Stripe's documented behaviour of ``4000 0025 0000 3155``: once set up for off-session use through an
  authenticated SetupIntent, later off-session payments on it no longer ask for authentication
  (``4000 0027 6000 3184`` always does).

The hosted page needs no API key (it is the payer's browser), so :func:`install` lets ``/c/pay/``
through localstripe's auth middleware and adds the page routes once ``localstripe.server`` is imported.
"""

from __future__ import annotations

import contextvars
import html
import time
from typing import Any
from urllib.parse import parse_qs

from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Event,
    PaymentMethod,
    SetupIntent,
    StripeObject,
    extra_apis,
)
from localstripe.webhooks import schedule_webhook

PAGE_PREFIX = "/c/pay/"
_LOCALES = frozenset(
    [
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    ]
)
"""Stripe Checkout's ``locale`` values (anything else is Stripe's 400)."""
SESSION_TTL_S = 24 * 3600

# The origin (scheme://host:port) the current API request came in on, so ``url`` is absolute.
_origin: contextvars.ContextVar[str] = contextvars.ContextVar("localstripe_origin", default="")

_ONCE_AUTHENTICATED_CARDS = ("4000002500003155",)
_original_requires_authentication = PaymentMethod._requires_authentication


def _requires_authentication(self: Any) -> bool:
    """Stripe: 3155 needs no more authentication off-session once it was set up with 3-D Secure."""
    if getattr(self, "_set_up_off_session", False) and self._card_number in _ONCE_AUTHENTICATED_CARDS:
        return False
    return bool(_original_requires_authentication(self))


PaymentMethod._requires_authentication = _requires_authentication


class CheckoutSession(StripeObject):  # type: ignore[misc]
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(
        self,
        mode: Any = None,
        customer: Any = None,
        success_url: Any = None,
        cancel_url: Any = None,
        metadata: Any = None,
        client_reference_id: Any = None,
        payment_method_types: Any = None,
        currency: Any = None,
        setup_intent_data: Any = None,
        locale: Any = None,
        billing_address_collection: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        try:
            assert mode in ("setup", "payment", "subscription")
            assert isinstance(success_url, str) and success_url.startswith("http")
            assert cancel_url is None or (isinstance(cancel_url, str) and cancel_url.startswith("http"))
            assert customer is None or (isinstance(customer, str) and customer.startswith("cus_"))
            assert metadata is None or isinstance(metadata, dict)
            assert setup_intent_data is None or isinstance(setup_intent_data, dict)
            assert locale is None or (isinstance(locale, str) and locale in _LOCALES)
            assert billing_address_collection in (None, "auto", "required")
            if payment_method_types is not None:
                assert isinstance(payment_method_types, list)
                assert all(t == "card" for t in payment_method_types)
        except AssertionError as exc:
            raise UserError(400, "Bad request") from exc
        if mode != "setup":
            raise UserError(
                400, "Only mode=setup Checkout Sessions are modelled by this localstripe extension"
            )
        if customer is not None:
            Customer._api_retrieve(customer)  # 404 when unknown

        intent_metadata = dict((setup_intent_data or {}).get("metadata") or {})
        setup_intent = SetupIntent(customer=customer, usage="off_session", metadata=intent_metadata)

        # All exceptions must be raised before this point.
        super().__init__()
        self.mode = mode
        self.customer = customer
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.metadata = metadata or {}
        self.client_reference_id = client_reference_id
        self.locale = locale
        self.billing_address_collection = billing_address_collection or "auto"
        self.payment_method_types = payment_method_types or ["card"]
        self.currency = currency
        self.setup_intent = setup_intent.id
        self.status = "open"
        self.payment_status = "no_payment_required"
        self.expires_at = self.created + SESSION_TTL_S
        self.url = f"{_origin.get()}{PAGE_PREFIX}{self.id}"
        self.payment_intent = None
        self.subscription = None

    @classmethod
    def _api_expire(cls, id: str, **kwargs: Any) -> CheckoutSession:
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        session: CheckoutSession = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(400, f"Only open Checkout Sessions can be expired (this one is {session.status})")
        session._expire()
        return session

    def _expire(self) -> None:
        self.status = "expired"
        self.url = None
        intent = SetupIntent._api_retrieve(self.setup_intent)
        intent.status = "canceled"
        intent.next_action = None

    def _is_usable(self) -> bool:
        if self.status == "open" and time.time() >= self.expires_at:
            self._expire()
        return bool(self.status == "open")

    def _redirect_target(self) -> str:
        return str(self.success_url).replace("{CHECKOUT_SESSION_ID}", self.id)

    def _complete(self, pm: Any) -> None:
        """The SetupIntent succeeded: the card is the customer's, the session is complete, the event goes."""
        intent = SetupIntent._api_retrieve(self.setup_intent)
        intent.status = "succeeded"
        intent.next_action = None
        intent.payment_method = pm.id
        if self.customer:
            pm.customer = self.customer
        self.status = "complete"
        self.url = None
        schedule_webhook(Event("checkout.session.completed", self))


extra_apis.extend(
    (
        ("POST", "/v1/checkout/sessions", CheckoutSession._api_create),
        ("GET", "/v1/checkout/sessions/{id}", CheckoutSession._api_retrieve),
        ("POST", "/v1/checkout/sessions/{id}/expire", CheckoutSession._api_expire),
    )
)


# -- the hosted page ------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
    "label{display:block;margin-top:.8rem;font-weight:600}input{font:inherit;width:100%;padding:.4rem;"
    "box-sizing:border-box}button{font:inherit;margin-top:1rem;padding:.5rem 1rem}"
    ".error{color:#a00000;border:1px solid #a00000;padding:.6rem;margin:1rem 0}"
)


def _page(title: str, body: str, status: int = 200) -> Any:
    from aiohttp import web

    text = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><main>{body}"
        "<p><small>localstripe test-mode Checkout (test infrastructure)</small></p></main></body></html>"
    )
    return web.Response(text=text, content_type="text/html", status=status)


def _card_form(session: CheckoutSession, error: str | None) -> str:
    back = (
        f"<p><a id='cancel-link' href='{html.escape(session.cancel_url)}'>&larr; Back</a></p>"
        if session.cancel_url
        else ""
    )
    alert = f"<div class='error' id='card-errors' role='alert'>{html.escape(error)}</div>" if error else ""
    return (
        f"{back}<h1 id='checkout-title'>Set up a payment method</h1>"
        "<p>Your card is saved for future payments.</p>"
        f"{alert}<form method='post' id='payment-form'>"
        "<label for='cardNumber'>Card number</label>"
        "<input id='cardNumber' name='card_number' inputmode='numeric' autocomplete='cc-number' "
        "placeholder='1234 1234 1234 1234'>"
        "<label for='cardExpiry'>Expiration (MM / YY)</label>"
        "<input id='cardExpiry' name='expiry' autocomplete='cc-exp' placeholder='MM / YY'>"
        "<label for='cardCvc'>CVC</label>"
        "<input id='cardCvc' name='cvc' inputmode='numeric' autocomplete='cc-csc' placeholder='CVC'>"
        "<label for='billingName'>Cardholder name</label>"
        "<input id='billingName' name='name' autocomplete='cc-name'>"
        "<button type='submit' id='submitButton'>Save card</button></form>"
    )


def _session_for_page(session_id: str) -> CheckoutSession | None:
    try:
        session = CheckoutSession._api_retrieve(session_id)
    except UserError:
        return None
    return session if isinstance(session, CheckoutSession) else None


def _closed(session: CheckoutSession | None) -> Any:
    from aiohttp import web

    if session is not None and session.status == "complete":
        raise web.HTTPSeeOther(session._redirect_target())
    return _page(
        "Session expired", "<h1 id='checkout-title'>This Checkout Session is no longer active</h1>", 410
    )


async def _form(request: Any) -> dict[str, str]:
    body = (await request.read()).decode()
    return {key: values[0] for key, values in parse_qs(body).items()}


def _card_fields(form: dict[str, str]) -> dict[str, Any]:
    number = "".join(ch for ch in form.get("card_number", "") if ch.isdigit())
    expiry = form.get("expiry", "").replace(" ", "")
    month, _, year = expiry.partition("/")
    if len(number) != 16:
        raise UserError(400, "Your card number is incomplete.")
    if not (month.isdigit() and year.isdigit()):
        raise UserError(400, "Your card's expiration date is incomplete.")
    cvc = form.get("cvc", "").strip()
    if not (cvc.isdigit() and len(cvc) == 3):
        raise UserError(400, "Your card's security code is incomplete.")
    return {"number": number, "exp_month": month, "exp_year": year, "cvc": cvc}


async def checkout_page(request: Any) -> Any:
    session = _session_for_page(request.match_info["id"])
    if session is None or not session._is_usable():
        return _closed(session)
    return _page("Checkout", _card_form(session, None))


async def checkout_submit(request: Any) -> Any:
    from aiohttp import web

    session = _session_for_page(request.match_info["id"])
    if session is None or not session._is_usable():
        return _closed(session)
    form = await _form(request)
    intent = SetupIntent._api_retrieve(session.setup_intent)
    try:
        fields = _card_fields(form)
        billing = {"name": form["name"]} if form.get("name") else None
        pm = PaymentMethod(type="card", card=fields, billing_details=billing)
        SetupIntent._api_confirm(intent.id, payment_method=pm.id)
    except UserError as exc:
        # Stripe keeps the session open and the SetupIntent waiting for another card.
        intent.status, intent.payment_method, intent.next_action = "requires_payment_method", None, None
        message = str(exc.body["error"].get("message") or "Your card was declined.")
        return _page("Checkout", _card_form(session, message), int(exc.code))
    if intent.status == "requires_action":
        raise web.HTTPSeeOther(f"{PAGE_PREFIX}{session.id}/authenticate")
    session._complete(pm)
    raise web.HTTPSeeOther(session._redirect_target())


async def authenticate_page(request: Any) -> Any:
    from aiohttp import web

    session = _session_for_page(request.match_info["id"])
    if session is None or not session._is_usable():
        return _closed(session)
    intent = SetupIntent._api_retrieve(session.setup_intent)
    if intent.status != "requires_action":
        raise web.HTTPSeeOther(f"{PAGE_PREFIX}{session.id}")
    pm = PaymentMethod._api_retrieve(intent.payment_method)
    body = (
        "<h1 id='authenticate-title'>3D Secure 2 Test Page</h1>"
        f"<p>Authenticate the card ending in {html.escape(pm.card['last4'])} for future payments.</p>"
        "<form method='post'>"
        "<button type='submit' name='decision' value='complete' id='test-source-authorize-3ds'>"
        "Complete authentication</button>"
        "<button type='submit' name='decision' value='fail' id='test-source-fail-3ds'>"
        "Fail authentication</button></form>"
    )
    return _page("Authenticate", body)


async def authenticate_submit(request: Any) -> Any:
    from aiohttp import web

    session = _session_for_page(request.match_info["id"])
    if session is None or not session._is_usable():
        return _closed(session)
    intent = SetupIntent._api_retrieve(session.setup_intent)
    if intent.status != "requires_action":
        raise web.HTTPSeeOther(f"{PAGE_PREFIX}{session.id}")
    pm = PaymentMethod._api_retrieve(intent.payment_method)
    if (await _form(request)).get("decision") != "complete":
        intent.status, intent.payment_method, intent.next_action = "requires_payment_method", None, None
        message = (
            "We are unable to authenticate your payment method. "
            "Please choose a different payment method and try again."
        )
        return _page("Checkout", _card_form(session, message), 402)
    pm._set_up_off_session = True
    session._complete(pm)
    raise web.HTTPSeeOther(session._redirect_target())


def install(app: Any) -> None:
    """Called by :func:`register_all` after ``localstripe.server`` is imported: the hosted page's routes,
    and an auth middleware that lets the payer's browser reach them (and remembers the request origin)."""
    from aiohttp import web
    from localstripe import server

    @web.middleware
    async def auth_unless_hosted_page(request: Any, handler: Any) -> Any:
        _origin.set(f"{request.scheme}://{request.host}")
        if request.path.startswith(PAGE_PREFIX):
            return await handler(request)
        return await server.auth_middleware(request, handler)

    index = list(app.middlewares).index(server.auth_middleware)
    app.middlewares[index] = auth_unless_hosted_page
    app.router.add_get(PAGE_PREFIX + "{id}", checkout_page)
    app.router.add_post(PAGE_PREFIX + "{id}", checkout_submit)
    app.router.add_get(PAGE_PREFIX + "{id}/authenticate", authenticate_page)
    app.router.add_post(PAGE_PREFIX + "{id}/authenticate", authenticate_submit)


__all__ = ["CheckoutSession", "install"]
