"""The hosted pages' route table: each page family's handlers, mounted at the app root.

Every POST runs in one database transaction: the card, the charge and the hook that activates the plan
commit together or not at all, and the session row is locked so a double submit cannot pay twice.  A
payment processor's failure that nothing caught (Stripe down or refusing) rolls that transaction back
and shows an error page (:func:`shown_failures`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .context import PagesContext, StripeCheckoutCompleted
from .invoices import InvoicePages
from .security import Endpoint, StaticHeaders, secured
from .session_steps import SessionStepPages
from .stripe_checkout import StripeCheckoutPages

STATIC_DIR = Path(__file__).parent / "static"


class HostedPages(SessionStepPages, StripeCheckoutPages, InvoicePages):
    """Every hosted page's handlers, one object per app."""


def shown_failures(pages: HostedPages, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` answering a payment processor's failure that nothing caught with an error page
    (:meth:`~.base.PageBase.processor_failure_page`) rather than a bare 500; other exceptions go on."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            page = pages.processor_failure_page(request, exc)
            if page is None:
                raise
            return page

    wrapped.__name__ = getattr(endpoint, "__name__", "page")
    return wrapped


def stripe_checkout_completer(ctx: PagesContext) -> StripeCheckoutCompleted:
    """What the Stripe webhook endpoint calls for ``checkout.session.completed`` (inside its transaction)."""
    return HostedPages(ctx).stripe_checkout_event


def billing_page_routes(ctx: PagesContext) -> list[BaseRoute]:
    """Routes to mount at the app root: checkout, setup, portal and invoice pages.

    ``/checkout/{id}``, ``/setup/{id}`` and ``/portal/{id}`` each have an ``/authenticate`` step; checkout
    and setup have a ``/complete`` page; ``/invoices/{id}`` shows one invoice.  For a Stripe organization
    each also has ``POST /stripe`` (on to Stripe Checkout) and ``GET /stripe-return`` (Stripe's way back).
    """
    pages = HostedPages(ctx)

    def sid(request: Request) -> str:
        return str(request.path_params["session_id"])

    async def checkout_page(request: Request) -> Response:
        return await run_in_threadpool(pages.checkout_page, request, sid(request))

    async def checkout_link(request: Request) -> Response:
        return await run_in_threadpool(pages.checkout_link, request, sid(request))

    async def checkout_pay(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.checkout_pay, request, sid(request), form)

    def authenticate(kind: str) -> tuple[Callable[[Request], Any], Callable[[Request], Any]]:
        async def page(request: Request) -> Response:
            return await run_in_threadpool(pages.authenticate_page, request, kind, sid(request))

        async def submit(request: Request) -> Response:
            form = await request.form()
            decision = str(form.get("decision", "fail"))
            return await run_in_threadpool(pages.authenticate_submit, request, kind, sid(request), decision)

        return page, submit

    def complete(kind: str) -> Callable[[Request], Any]:
        async def page(request: Request) -> Response:
            return await run_in_threadpool(pages.complete_page, request, kind, sid(request))

        return page

    async def setup_page(request: Request) -> Response:
        return await run_in_threadpool(pages.setup_page, request, sid(request))

    async def setup_submit(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.setup_submit, request, sid(request), form)

    async def portal_page(request: Request) -> Response:
        return await run_in_threadpool(pages.portal_page, request, sid(request))

    async def portal_payment_method(request: Request) -> Response:
        form = dict(await request.form())
        return await run_in_threadpool(pages.portal_payment_method, request, sid(request), form)

    async def portal_cancel(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_cancel, request, sid(request), plan_id)

    def stripe(kind: str) -> tuple[Callable[[Request], Any], Callable[[Request], Any]]:
        async def start(request: Request) -> Response:
            return await run_in_threadpool(pages.stripe_start, request, kind, sid(request))

        async def back(request: Request) -> Response:
            return await run_in_threadpool(pages.stripe_return, request, kind, sid(request))

        return start, back

    async def invoice_page(request: Request) -> Response:
        return await run_in_threadpool(pages.invoice_page, request, str(request.path_params["invoice_id"]))

    async def invoice_pdf_download(request: Request) -> Response:
        return await run_in_threadpool(pages.invoice_pdf, request, str(request.path_params["invoice_id"]))

    async def portal_cancel_confirm(request: Request) -> Response:
        plan_id = request.query_params.get("plan_id", "")
        return await run_in_threadpool(pages.portal_cancel_confirm, request, sid(request), plan_id)

    async def portal_uncancel(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_uncancel, request, sid(request), plan_id)

    async def portal_switch_confirm(request: Request) -> Response:
        plan_id = request.query_params.get("plan_id", "")
        return await run_in_threadpool(pages.portal_switch_confirm, request, sid(request), plan_id)

    async def portal_switch(request: Request) -> Response:
        form = await request.form()
        plan_id = str(form.get("plan_id", ""))
        return await run_in_threadpool(pages.portal_switch, request, sid(request), plan_id)

    routes: list[BaseRoute] = [
        Route("/l/{session_id}", checkout_link, methods=["GET"], name="checkout_link"),
        Route("/checkout/{session_id}", checkout_page, methods=["GET"], name="checkout_page"),
        Route("/checkout/{session_id}", checkout_pay, methods=["POST"], name="checkout_pay"),
        Route(
            "/checkout/{session_id}/complete", complete("checkout"), methods=["GET"], name="checkout_complete"
        ),
        Route("/setup/{session_id}", setup_page, methods=["GET"], name="setup_page"),
        Route("/setup/{session_id}", setup_submit, methods=["POST"], name="setup_submit"),
        Route("/setup/{session_id}/complete", complete("setup"), methods=["GET"], name="setup_complete"),
        Route("/portal/{session_id}", portal_page, methods=["GET"], name="portal_page"),
        Route(
            "/portal/{session_id}/payment-method",
            portal_payment_method,
            methods=["POST"],
            name="portal_payment_method",
        ),
        Route("/portal/{session_id}/cancel", portal_cancel, methods=["POST"], name="portal_cancel"),
        Route(
            "/portal/{session_id}/cancel",
            portal_cancel_confirm,
            methods=["GET"],
            name="portal_cancel_confirm",
        ),
        Route("/portal/{session_id}/uncancel", portal_uncancel, methods=["POST"], name="portal_uncancel"),
        Route(
            "/portal/{session_id}/switch",
            portal_switch_confirm,
            methods=["GET"],
            name="portal_switch_confirm",
        ),
        Route("/portal/{session_id}/switch", portal_switch, methods=["POST"], name="portal_switch"),
        Route("/invoices/{invoice_id}", invoice_page, methods=["GET"], name="invoice_page"),
        Route("/invoices/{invoice_id}/pdf", invoice_pdf_download, methods=["GET"], name="invoice_pdf"),
    ]
    for kind in ("checkout", "setup", "portal"):
        page, submit = authenticate(kind)
        path = f"/{kind}/{{session_id}}/authenticate"
        routes.append(Route(path, page, methods=["GET"], name=f"{kind}_authenticate_page"))
        routes.append(Route(path, submit, methods=["POST"], name=f"{kind}_authenticate"))
        start, back = stripe(kind)
        routes.append(
            Route(f"/{kind}/{{session_id}}/stripe", start, methods=["POST"], name=f"{kind}_stripe_start")
        )
        routes.append(
            Route(
                f"/{kind}/{{session_id}}/stripe-return", back, methods=["GET"], name=f"{kind}_stripe_return"
            )
        )
    secured_routes: list[BaseRoute] = [
        Route(
            route.path,
            secured(shown_failures(pages, route.endpoint)),
            methods=sorted(route.methods or ()),
            name=route.name,
        )
        for route in routes
        if isinstance(route, Route)
    ]
    static = StaticHeaders(StaticFiles(directory=str(STATIC_DIR)))
    return [*secured_routes, Mount("/static/billing", app=static, name="billing_static")]
