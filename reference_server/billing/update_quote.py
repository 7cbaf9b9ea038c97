"""The quote of a ``billing.update`` on a priced plan: a cancel, an uncancel, a change of quantities or a
customization priced by the engine, with the subscription's and the request's discounts; shared by the
update, its preview and ``billing.multi_update``."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection

from reference_server.billing.convert import (
    customized_plan,
    engine_plan,
    engine_subscription,
    feature_quantities,
    instance_plan,
    is_customized,
)
from reference_server.billing.discounts import (
    discount_change,
    refuse_unbilled,
    removed_rewards,
    resolve_discounts,
    running_discounts,
)
from reference_server.billing.invoice_mode import check_update
from reference_server.billing.last_payment_refund import quote_refund
from reference_server.billing.license_seats import update_seats
from reference_server.billing.no_billing import nothing_due, skips_billing
from reference_server.billing.payment_collection import cycle_plus_lines, plus_lines, rule_error
from reference_server.billing.plan_changes import without_carried_usage
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.quoted_update import Customization, QuotedUpdate
from reference_server.billing.resolve import UpdateRequest, resolve_update
from reference_server.billing.seats import starting_seat_usage
from reference_server.billing.update_custom_lines import with_update_lines
from reference_server.billing.update_free_trial import update_trial
from reference_server.billing.update_request import recalculates, update_intent, usage_carry
from reference_server.engine.billing import (
    BillingRuleError,
    quote_cancel,
    quote_quantity_change,
    quote_upgrade,
)
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.errors import ApiError, invalid
from reference_server.service.context import Ctx
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.pending_lines import pending_lines


def update_quotes(ctx: Ctx, conn: Connection, params: UpdateRequest) -> QuotedUpdate:
    cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, params)
    plan = instance_plan(conn, cat, inst)
    sub = engine_subscription(conn, cat, inst)
    if plan is None or sub is None:
        raise invalid(f"Plan {inst.plan_id} is not available")
    intent = update_intent(params)
    trialing = bool(inst.trial_ends_at and inst.trial_ends_at > now)
    free_trial = plan.free_trial
    check_update(
        params.invoice_mode,
        bool(free_trial.get("card_required", True) if free_trial else True) if trialing else None,
        str((free_trial.get("on_end") if free_trial else None) or "bill") if trialing else None,
    )
    result = QuotedUpdate(
        params=params,
        cat=cat,
        customer=customer,
        entity=entity,
        inst=inst,
        instances=instances,
        now=now,
        plan=plan,
        sub=sub,
        intent=intent,
        due=InvoiceDraft(),
        no_billing=skips_billing(params),
        recalculate=recalculates(params),
    )
    prorate = params.proration_behavior != "none"
    reset_anchor = params.billing_cycle_anchor == "now"  # (checked before the quote: check_anchor_now)
    if intent in ("cancel_immediately", "cancel_end_of_cycle"):
        if inst.status != "active":
            raise invalid("Only an active plan can be cancelled")
        cancel = quote_cancel(sub, now, intent == "cancel_immediately" or sub.period_end is None, prorate)
        due = cancel.due_now
        if params.refund_last_payment is not None:  # only with cancel_immediately (check_refund_request)
            processor = processor_for(ctx.state, conn, customer.pk)
            entity_id = entity.id if entity else None
            due, refund = quote_refund(
                conn, processor, customer.pk, entity_id, inst.plan_id, due, params.refund_last_payment
            )
            result.refund = refund
        if cancel.ends_at <= now:
            # Ending now: its pending next-cycle prorations are settled on this last invoice.
            due = plus_lines(
                due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
            )
        result.due, result.ends_at = due, cancel.ends_at
    elif intent == "uncancel":
        if inst.status != "active":
            raise invalid("Only an active plan can be uncancelled")
    elif intent == "update_quantity":
        if inst.status == "scheduled":
            raise invalid("A scheduled plan cannot be updated")
        if params.license_quantities and params.feature_quantities:
            raise invalid("license_quantities cannot be combined with feature_quantities in one update.")
        seats = update_seats(conn, cat, plan, inst.pk, params)
        plan = seats.plan
        sub = dataclasses.replace(sub, plan=engine_plan(plan, cat))
        result.plan, result.sub = plan, sub
        try:
            quote = quote_quantity_change(
                sub,
                {**feature_quantities(params.feature_quantities), **seats.quantities},
                now,
                params.proration_behavior,
            )
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
        next_cycle = quote.next_cycle
        if next_cycle is not None:
            # The renewal also takes the prorations already pending for this plan.
            next_cycle = cycle_plus_lines(
                next_cycle, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
            )
        result.due, result.next_cycle, result.quantities = quote.due_now, next_cycle, quote
    elif intent == "update_plan":
        base = plan if params.version is None else _version_of(cat, inst.plan_id, params.version)
        if inst.status != "active":
            raise invalid("Only an active plan can be customized")
        catalog_plan = cat.plans_by_pk.get(inst.plan_pk)
        if catalog_plan is None:
            raise invalid(f"Plan {inst.plan_id} is not available")
        # Paid seats stay through a customization (its items replace the plan's, not the seats).
        seats = update_seats(conn, cat, customized_plan(base, params.customize), inst.pk, params)
        custom = seats.plan
        requested = {**feature_quantities(params.feature_quantities), **seats.quantities}
        target = engine_plan(custom, cat)
        trial = update_trial(params.customize, sub, target, now)  # kept, started, ended (update_free_trial)
        result.ends_trial = sub.trialing_at(now) and trial is None
        try:
            switch = quote_upgrade(
                dataclasses.replace(sub, plan=dataclasses.replace(sub.plan, id=f"{sub.plan.id}@previous")),
                target,
                now,
                requested,
                trial=trial,
                proration_behavior=params.proration_behavior or "prorate_immediately",
                seat_usage=starting_seat_usage(conn, cat, customer.pk, custom, entity, inst.pk),
                reset_anchor=reset_anchor,
            )
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
        due = without_carried_usage(switch.due_now, f"{sub.plan.id}@previous", usage_carry(params))
        due = _relabel(due, f"{sub.plan.id}@previous", sub.plan.id)
        # The replaced version's pending next-cycle prorations are settled now, like its unused time.
        due = plus_lines(due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None))
        switch = dataclasses.replace(switch, due_now=due)
        result.due, result.next_cycle = switch.due_now, switch.next_cycle
        # A move to a version as it is (no customize) bills that version, not a stored customization.
        snapshot = params.version is None or is_customized(params.customize)
        result.customization = Customization(switch, custom, seats, snapshot)
    # custom_line_items: what it bills now, if given (update_custom_lines.py)
    with_update_lines(params, result, ends_trial=result.ends_trial)
    # Coupons (discounts.py): the subscription's own, then the request's, on what the change bills now
    # and its next cycle; they stay on the instance the change leaves.
    refuse_unbilled(params.discounts, result.no_billing)
    removed = removed_rewards(params.discounts, params.remove_discounts, result.no_billing)
    coupons = running_discounts(conn, inst.pk) if inst.status == "active" else []
    named = resolve_discounts(ctx, conn, params.discounts, result.due.currency)
    if coupons or named:
        discounted = discount_change(
            result.due, result.next_cycle, coupons, named, not result.no_billing, removed
        )
        result.due, result.next_cycle, result.discounts = discounted.due, discounted.next_cycle, discounted
    if result.no_billing:  # the change as quoted, with nothing billed for it (no_billing.py)
        result.due = nothing_due(result.due)
    return result


def _version_of(cat: Catalog, plan_id: str, version: float) -> Plan:
    """``version``: the subscription's plan at that version (its own items and price, none of the
    subscription's customization), which the update moves it to; 404 as Autumn when there is none."""
    found = cat.plan_version(plan_id, version)
    if found is None:
        shown = int(version) if float(version).is_integer() else version
        raise ApiError(404, "product_not_found", f"Product version {shown} not found for product {plan_id}")
    return found


def _relabel(draft: InvoiceDraft, old_id: str, new_id: str) -> InvoiceDraft:
    """Lines of the outgoing version of a customized plan carry the plan's own id."""
    return InvoiceDraft(
        tuple(
            dataclasses.replace(line, plan_id=new_id) if line.plan_id == old_id else line
            for line in draft.lines
        ),
        draft.currency,
    )
