"""billing.update and billing.preview_update: cancel, uncancel, change quantities or customize a plan.

A plan without a price changes at once (§5.2, §5.6): it has no billing period, so
``cancel_end_of_cycle`` ends it at once like ``cancel_immediately``, and cancelling a main plan brings
the group's auto_enable plan back.  A priced plan's change is quoted by the engine and charged.
"""

from __future__ import annotations

from autumn_sdk._generated.json_types import AttachResponseJson, PreviewUpdateResponseJson
from autumn_sdk._generated.models import PreviewUpdateParams, UpdateSubscriptionParams
from reference_server.billing.convert import is_customized
from reference_server.billing.customer_lock import customer_lock
from reference_server.billing.free_trial_shorthand import fold_free_trial
from reference_server.billing.last_payment_refund import check_refund_request
from reference_server.billing.license_seats import hide_seats
from reference_server.billing.no_billing import check_no_billing
from reference_server.billing.payment_collection import invoice_mode_for, settle_due
from reference_server.billing.resolve import resolve_update
from reference_server.billing.update_apply import apply_update, update_free
from reference_server.billing.update_changes import update_changes
from reference_server.billing.update_custom_lines import check_custom_lines_request
from reference_server.billing.update_quote import update_quotes
from reference_server.billing.update_request import (
    CHECKOUT_TYPE,
    check_anchor_now,
    check_checkout_quantities,
    check_update_redirect,
    update_intent,
)
from reference_server.engine.billing.preview import update_preview_body
from reference_server.service.context import Ctx


def paid_update(ctx: Ctx, params: UpdateSubscriptionParams) -> AttachResponseJson:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        q = update_quotes(ctx, conn, params)
        check_checkout_quantities(q)
        return apply_update(ctx, conn, q, base_url)


def preview_update(ctx: Ctx, params: PreviewUpdateParams) -> PreviewUpdateResponseJson:
    params = fold_free_trial(params)  # free_trial: customize.free_trial's shorthand
    check_no_billing(params)
    check_refund_request(params.refund_last_payment, params.cancel_action, params.proration_behavior)
    check_custom_lines_request(params)
    check_update_redirect(params)
    settle_due(ctx, params.customer_id)
    with ctx.db.write() as conn:
        if params.billing_cycle_anchor == "now":
            cat, _, _, inst, _, now = resolve_update(ctx, conn, params)
            check_anchor_now(conn, cat, inst, params, now)
        q = update_quotes(ctx, conn, params)
        check_checkout_quantities(q)
        # An invoice-mode update is invoiced, never sent to checkout (as apply_update does).
        redirect = params.redirect_mode == "always" and invoice_mode_for(params.invoice_mode, q.due) is None
        # The quote's parts (update_quote.py), as the preview reads them.
        customer, entity, due, next_cycle, refund = q.customer, q.entity, q.due, q.next_cycle, q.refund
        incoming, outgoing = update_changes(q)  # as each of a multi update's previews (update_changes.py)
        out = update_preview_body(
            customer.id or "",
            due,
            [next_cycle] if next_cycle is not None else [],
            update_intent(params),  # (the quote's intent)
            incoming,
            outgoing,
            redirect,
            CHECKOUT_TYPE if redirect else None,
            entity.id if entity else None,
            refund.to_json() if refund is not None else None,
        )
        conn.rollback()
        return hide_seats(out)


def update_subscription(ctx: Ctx, params: UpdateSubscriptionParams) -> AttachResponseJson:
    """``billing.update``: a plan without a price changes at once (free path), a priced one is quoted
    and charged; both under the customer's billing lock."""
    params = fold_free_trial(params)  # free_trial: customize.free_trial's shorthand
    check_no_billing(params)
    check_refund_request(params.refund_last_payment, params.cancel_action, params.proration_behavior)
    check_custom_lines_request(params)
    check_update_redirect(params)
    with customer_lock(ctx, params.customer_id):
        return _update_unlocked(ctx, params)


def _update_unlocked(ctx: Ctx, params: UpdateSubscriptionParams) -> AttachResponseJson:
    with ctx.db.write() as conn:
        cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, params)
        check_anchor_now(conn, cat, inst, params, now)
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if (
            plan is not None
            and plan.is_free
            and not params.feature_quantities
            and not params.license_quantities
            and params.version is None  # another version: quoted like a customization
            and not is_customized(params.customize)  # a new shape of the plan: quoted like a paid one
            and params.redirect_mode != "always"  # a checkout is the paid path's, even at $0
            and not params.custom_line_items  # refused on the paid path (update_custom_lines.py)
        ):
            return update_free(ctx, conn, params, cat, customer, entity, inst, instances, now)
    return paid_update(ctx, params)
