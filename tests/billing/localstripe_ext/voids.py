"""Invoice voids and draft deletions Stripe refuses, for localstripe: TEST INFRASTRUCTURE ONLY.

Like :mod:`.refunds`: Stripe can refuse a request for a while with HTTP 429 and the error object
``{"type": "invalid_request_error", "code": "rate_limit", ...}`` (https://docs.stripe.com/rate-limits).
``POST /_config/invoice_voids`` with ``fail_next=N`` makes the next N ``POST /v1/invoices/{id}/void``
and ``DELETE /v1/invoices/{id}`` answer exactly that, before anything changes; ``fail_next=0`` clears
it.  ``GET /_config/invoice_voids`` shows what is still to refuse and the invoices refused, in order.
(Imported after :mod:`.invoices`, whose ``void`` it wraps.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localstripe.resources import Invoice, extra_apis

from .prices import stripe_error

_STATE = {"to_refuse": 0}
_REFUSED: list[str] = []  # the invoices whose void or deletion was refused, in order

VOID = ("POST", "/v1/invoices/{id}/void")


def _refuse(invoice_id: str) -> None:
    if _STATE["to_refuse"] > 0:
        _STATE["to_refuse"] -= 1
        _REFUSED.append(invoice_id)
        raise stripe_error(
            429,
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            "rate_limit",
        )


def _wrap_void(original: Callable[..., Any]) -> Callable[..., Any]:
    def void(id: str, **kwargs: Any) -> Any:
        _refuse(id)
        return original(id, **kwargs)

    return void


extra_apis[:] = [(m, u, _wrap_void(f) if (m, u) == VOID else f) for m, u, f in extra_apis]

_original_delete = Invoice._api_delete


def _delete(id: str) -> Any:
    _refuse(id)
    return _original_delete(id)


Invoice._api_delete = classmethod(lambda cls, id: _delete(id))  # type: ignore[method-assign,assignment]


def install(app: Any) -> None:
    from aiohttp import web

    async def configure(request: Any) -> Any:
        data = await request.post()
        try:
            count = int(str(data.get("fail_next", "")))
        except ValueError:
            return web.json_response({"error": {"message": "fail_next: a count"}}, status=400)
        _STATE["to_refuse"] = max(0, count)
        return web.json_response({"to_refuse": _STATE["to_refuse"], "refused": _REFUSED})

    async def show(request: Any) -> Any:
        return web.json_response({"to_refuse": _STATE["to_refuse"], "refused": _REFUSED})

    app.router.add_post("/_config/invoice_voids", configure)
    app.router.add_get("/_config/invoice_voids", show)
