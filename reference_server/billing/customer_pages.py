"""billing.setup_payment and billing.open_customer_portal: links to the pages where the customer
sets up a payment method or manages its plans."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from reference_server.billing.license_seats import attach_seats
from reference_server.billing.payment_collection import change_response, checkout_action
from reference_server.billing.plan_changes import customer_ref
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.resolve import resolve_attach
from reference_server.billing.sessions import (
    create_portal_session,
    create_setup_session,
)
from reference_server.errors import entity_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.store.billing_records import load_session
from reference_server.store.subjects import CustomerRow, get_entity


def _customer_and_entity(
    ctx: Ctx, conn: Connection, body: dict[str, Any]
) -> tuple[CustomerRow, str | None, int]:

    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
    entity_id = body.get("entity_id")
    if entity_id and get_entity(conn, customer.pk, entity_id) is None:
        raise entity_not_found(entity_id)
    return customer, entity_id, now


def setup_payment(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        customer, entity_id, now = _customer_and_entity(ctx, conn, body)
        if body.get("remove_plan_ids"):
            if not body.get("plan_id"):
                raise invalid("remove_plan_ids: only with plan_id (the plan attached once set up)")
            resolve_attach(ctx, conn, body)  # the removals are checked now, applied with the attach
        upserts = (body.get("customize") or {}).get("upsert_licenses")
        if body.get("license_quantities") or upserts:
            if not body.get("plan_id"):
                raise invalid("license_quantities: only with plan_id (the plan attached once set up)")
            cat, _, _, plan, current, _, _ = resolve_attach(ctx, conn, body)
            attach_seats(conn, cat, plan, current.pk if current is not None else None, body)  # checked now
        action = checkout_action(ctx, "setup", body)
        action["plan_id"] = body.get("plan_id")
        session_id, url = create_setup_session(
            conn, customer.pk, action, now, base_url, body.get("success_url")
        )
        processor = processor_for(ctx.state, conn, customer.pk)
        session = load_session(conn, session_id, "setup")
        if session is not None:
            # Nothing is due today: straight to the processor's own card page when it has one (a
            # setup-mode Stripe Checkout, as Autumn does), else this server's setup page.
            url = processor.card_page_url(conn, customer_ref(customer), session, base_url) or url
        return change_response(customer, entity_id, url=url)


def open_customer_portal(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        customer, _, now = _customer_and_entity(ctx, conn, body)
        _, url = create_portal_session(conn, customer.pk, now, base_url, body.get("return_url"))
        return {"customer_id": customer.id, "url": url}
