"""billing.setup_payment and billing.open_customer_portal: links to the pages where the customer
sets up a payment method or manages its plans."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import OpenCustomerPortalResponseJson, SetupPaymentResponseJson
from autumn_sdk._generated.models import AttachParams, OpenCustomerPortalParams, SetupPaymentParams
from reference_server.billing.checkout_session_params import check_checkout_session_params
from reference_server.billing.discounts import refuse_unbilled, resolve_discounts
from reference_server.billing.free_trial_shorthand import fold_free_trial
from reference_server.billing.license_seats import attach_seats
from reference_server.billing.no_billing import skips_billing
from reference_server.billing.payment_collection import checkout_action
from reference_server.billing.plan_changes import customer_ref
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.resolve import resolve_attach
from reference_server.billing.sessions import (
    create_portal_session,
    create_setup_session,
)
from reference_server.billing.stripe_metadata import check_attach_metadata
from reference_server.engine.billing.money import DEFAULT_CURRENCY
from reference_server.errors import entity_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.store.billing_sessions import load_session
from reference_server.store.subjects import CustomerRow, get_entity

SETUP_ATTACH_KEYS = frozenset(
    (
        "customer_id",
        "entity_id",
        "plan_id",
        "feature_quantities",
        "license_quantities",
        "customize",
        "remove_plan_ids",
        "metadata",
        "no_billing_changes",
        "discounts",
    )
)
"""What ``billing.setup_payment`` with a ``plan_id`` attaches once the card is set up (its ``metadata``
goes on what that attach makes on Stripe, as Autumn passes the request on to its attach; with
``no_billing_changes`` that attach bills nothing: billing/no_billing.py; its ``discounts`` are checked
now and applied by that attach: billing/discounts.py)."""


def setup_attach(body: dict[str, Any]) -> AttachParams:
    """The attach a ``billing.setup_payment`` request (its JSON, as stored with the setup session) makes
    once set up: its plan with its quantities, customization, removals, metadata, no_billing_changes and
    discounts."""
    return AttachParams.model_validate({k: v for k, v in body.items() if k in SETUP_ATTACH_KEYS})


def _customer_and_entity(
    ctx: Ctx, conn: Connection, customer_id: str, entity_id: str | None
) -> tuple[CustomerRow, str | None, int]:

    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, customer_id, lock=True)
    if entity_id and get_entity(conn, customer.pk, entity_id) is None:
        raise entity_not_found(entity_id)
    return customer, entity_id, now


def setup_payment(ctx: Ctx, params: SetupPaymentParams) -> SetupPaymentResponseJson:
    params = fold_free_trial(params)
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        check_attach_metadata(ctx, conn, params, on_checkout=False)  # (not on the setup's Checkout)
        customer, entity_id, now = _customer_and_entity(ctx, conn, params.customer_id, params.entity_id)
        action = checkout_action(ctx, "setup", params)
        if params.discounts:  # checked now (400 for what is not a coupon), applied by the attach
            if not params.plan_id:
                raise invalid("discounts: only with plan_id (the plan attached once set up)")
            refuse_unbilled(params.discounts, skips_billing(params))
            resolve_discounts(ctx, conn, params.discounts, DEFAULT_CURRENCY)
        if params.remove_plan_ids:
            if not params.plan_id:
                raise invalid("remove_plan_ids: only with plan_id (the plan attached once set up)")
            # the removals are checked now (as an attach of the request), applied with the attach
            resolve_attach(ctx, conn, AttachParams.model_validate(action["body"]))
        upserts = params.customize.upsert_licenses if params.customize is not None else None
        if params.license_quantities or upserts:
            if not params.plan_id:
                raise invalid("license_quantities: only with plan_id (the plan attached once set up)")
            then = AttachParams.model_validate(action["body"])
            cat, _, _, plan, current, _, _ = resolve_attach(ctx, conn, then)
            attach_seats(conn, cat, plan, current.pk if current is not None else None, then)  # checked now
        action["plan_id"] = params.plan_id
        session_id, url = create_setup_session(conn, customer.pk, action, now, base_url, params.success_url)
        processor = processor_for(ctx.state, conn, customer.pk)
        session = load_session(conn, session_id, "setup")
        if session is not None:
            # Nothing is due today: straight to the processor's own card page when it has one (a
            # setup-mode Stripe Checkout, as Autumn does), else this server's setup page.
            url = processor.card_page_url(conn, customer_ref(customer), session, base_url) or url
        customer_id = customer.id or ""  # (found by the request's customer_id)
        if entity_id is None:
            return {"customer_id": customer_id, "url": url}
        return {"customer_id": customer_id, "entity_id": entity_id, "url": url}


def open_customer_portal(ctx: Ctx, params: OpenCustomerPortalParams) -> OpenCustomerPortalResponseJson:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        customer, _, now = _customer_and_entity(ctx, conn, params.customer_id, None)
        _, url = create_portal_session(conn, customer.pk, now, base_url, params.return_url)
        return {"customer_id": customer.id or "", "url": url}
