"""Refunds Stripe refuses, for localstripe: TEST INFRASTRUCTURE ONLY.

localstripe grants every refund of a succeeded payment.  Stripe can refuse one for a while: too many
requests at once answer HTTP 429 with the error object ``{"type": "invalid_request_error", "code":
"rate_limit", "message": ...}`` (https://docs.stripe.com/rate-limits, https://docs.stripe.com/error-codes),
which the Stripe libraries raise as ``RateLimitError`` and do not retry on their own.  Here
``POST /_config/refunds`` with ``fail_next=N`` (and optionally ``payment_intent=pi_...``, else any
PaymentIntent) makes the next N ``POST /v1/refunds`` of that PaymentIntent answer exactly that, before
anything is refunded; ``fail_next=0`` clears it.  ``GET /_config/refunds`` shows what is still to refuse
and how many were refused.
"""

from __future__ import annotations

from typing import Any

from localstripe.resources import Refund

from .prices import stripe_error

ANY = "*"
_TO_REFUSE: dict[str, int] = {}  # PaymentIntent id (or ANY) -> refunds still to refuse
_REFUSED: list[str] = []  # the PaymentIntents whose refunds were refused, in order

_original_create = Refund._api_create


def _create(**data: Any) -> Any:
    intent = data.get("payment_intent")
    for key in (str(intent), ANY):
        left = _TO_REFUSE.get(key, 0)
        if left > 0:
            _TO_REFUSE[key] = left - 1
            _REFUSED.append(str(intent))
            raise stripe_error(
                429,
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                "rate_limit",
            )
    return _original_create(**data)


Refund._api_create = classmethod(lambda cls, **data: _create(**data))  # type: ignore[method-assign,assignment]


def install(app: Any) -> None:
    from aiohttp import web

    async def configure(request: Any) -> Any:
        data = await request.post()
        try:
            count = int(str(data.get("fail_next", "")))
        except ValueError:
            return web.json_response({"error": {"message": "fail_next: a count"}}, status=400)
        intent = data.get("payment_intent")
        key = str(intent) if isinstance(intent, str) and intent.startswith("pi_") else ANY
        _TO_REFUSE[key] = max(0, count)
        return web.json_response({"to_refuse": _TO_REFUSE, "refused": _REFUSED})

    async def show(request: Any) -> Any:
        return web.json_response({"to_refuse": _TO_REFUSE, "refused": _REFUSED})

    app.router.add_post("/_config/refunds", configure)
    app.router.add_get("/_config/refunds", show)
