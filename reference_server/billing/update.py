"""billing.update and billing.preview_update: cancel, uncancel, change quantities or customize a plan.

A plan without a price changes at once (§5.2, §5.6): it has no billing period, so
``cancel_end_of_cycle`` ends it at once like ``cancel_immediately``, and cancelling a main plan brings
the group's auto_enable plan back.  A priced plan's change is quoted by the engine and charged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import (
    AttachCarryOverBalances,
    PreviewUpdateParams,
    UpdateSubscriptionParams,
)
from reference_server.billing.convert import (
    customized_plan,
    engine_plan,
    engine_subscription,
    feature_quantities,
    instance_plan,
    is_customized,
)
from reference_server.billing.customer_lock import customer_lock
from reference_server.billing.discounts import (
    DiscountedChange,
    discount_change,
    record_discounts,
    removed_rewards,
    resolve_discounts,
    running_discounts,
)
from reference_server.billing.invoice_mode import check_update
from reference_server.billing.last_payment_refund import check_refund_request, make_refund, quote_refund
from reference_server.billing.license_seats import (
    hide_seats,
    keep_links,
    park_seats,
    unpark_seats,
    update_seats,
)
from reference_server.billing.no_billing import check_no_billing, nothing_due, skips_billing
from reference_server.billing.payment_collection import (
    bill_by_invoice,
    change_response,
    charge_or_retry_link,
    checkout_action,
    cycle_plus_lines,
    invoice_mode_for,
    plus_lines,
    rule_error,
    settle_due,
)
from reference_server.billing.plan_changes import (
    activate_default,
    carry_over,
    change,
    consumable_leftovers,
    emit_billing_updated,
    expire_active,
    expire_scheduled_in_group,
    group_default,
    save_billing_state,
    without_carried_usage,
)
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.resolve import UpdateRequest, resolve_update
from reference_server.billing.seats import starting_seat_usage
from reference_server.billing.sessions import create_checkout_session
from reference_server.engine.billing import (
    BillingRuleError,
    quote_cancel,
    quote_quantity_change,
    quote_upgrade,
)
from reference_server.engine.billing.cycle_reset import check_cycle_reset
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import DEFAULT_CURRENCY
from reference_server.engine.billing.preview import (
    outgoing_json,
    preview_body,
)
from reference_server.errors import ApiError, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.extra_fields import extra_field
from reference_server.service.subscriptions import (
    Instance,
    activate_group_default,
    activate_plan,
    expire_instance,
    expire_scheduled_switches,
    schedule_maintenance,
)
from reference_server.store.catalog import Catalog
from reference_server.store.instance_billing import set_prepaid_quantities
from reference_server.store.invoices import InvoiceRecord
from reference_server.store.pending_lines import add_pending_lines, pending_lines, take_pending_lines
from reference_server.store.plan_instances import (
    first_feature_source,
    set_canceled_at,
    set_cancellation,
    set_prepaid_and_balance,
)
from reference_server.store.subjects import CustomerRow, EntityRow


def update_free(
    ctx: Ctx,
    conn: Connection,
    params: UpdateRequest,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    inst: Instance,
    instances: list[Instance],
    now: int,
) -> dict[str, Any]:
    # A plan without a price has no invoice to discount: its discounts are checked, and kept nowhere.
    resolve_discounts(ctx, conn, params.discounts, DEFAULT_CURRENCY)
    plan = cat.plans_by_pk.get(inst.plan_pk)
    if plan is None:
        raise plan_not_found(inst.plan_id)
    action = params.cancel_action
    entity_pk = entity.pk if entity else None
    if action in ("cancel_immediately", "cancel_end_of_cycle"):
        if inst.status != "active":
            raise invalid("Only an active plan can be cancelled")
        set_canceled_at(conn, inst.pk, now)
        carried = expire_instance(conn, inst.pk, now)
        if not plan.add_on and not plan.auto_enable:
            scheduled = [i for i in instances if i.status == "scheduled" and i.entity_pk == entity_pk]
            if not scheduled:
                activate_group_default(conn, cat, customer, entity, plan.group, now, carried)
    elif action == "uncancel":
        if inst.status != "active":
            raise invalid("Only an active plan can be uncancelled")
        set_cancellation(conn, inst.pk, None, None)
        expire_scheduled_switches(conn, cat, instances, plan.group, entity_pk)
    elif inst.status == "scheduled":
        raise invalid("A scheduled plan cannot be updated")
    out: dict[str, Any] = {"customer_id": customer.id, "payment_url": None}
    if entity is not None:
        out["entity_id"] = entity.id
    return out


def _intent(params: UpdateRequest) -> str:
    action = params.cancel_action
    if action in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        return str(action)
    customized = is_customized(params.customize)
    if params.feature_quantities or (params.license_quantities and not customized):
        return "update_quantity"
    if customized:
        return "update_plan"
    return "none"


CHECKOUT_TYPE = "autumn_checkout"
"""An update sent through checkout (``redirect_mode: "always"``) is confirmed on the checkout page,
with the saved card or a new one (Autumn's update uses its own checkout page for it, never Stripe's)."""


def check_update_redirect(params: UpdateRequest) -> None:
    """``redirect_mode: "always"`` sends the change to a checkout page, as Autumn's update does; like
    Autumn, it is refused for a cancel or an uncancel and for an update that changes nothing.
    (``never`` and ``if_required`` are the same for an update, in Autumn as here: the change is charged
    at once, and a charge that needs the customer answers a payment link with ``required_action``.)"""
    if params.redirect_mode != "always":
        return
    intent = _intent(params)
    if intent in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        raise invalid("Autumn checkout does not support cancel or uncancel updates", "invalid_request")
    if intent == "none":
        raise invalid(
            "Cannot create checkout when no billing changes will happen in this update", "invalid_request"
        )


def _check_checkout_quantities(q: dict[str, Any]) -> None:
    """A checkout for a quantity update that leaves every quantity as it is would sell nothing."""
    quote = q["quantities"]
    always = q["params"].redirect_mode == "always"
    if always and quote is not None and not any(quote.balance_deltas.values()):
        raise invalid(
            "Cannot create checkout when quantities are not updated or adjustable", "invalid_request"
        )


def _usage_carry(params: UpdateRequest) -> AttachCarryOverBalances:
    """``carry_over_usages`` of an update that replaces the plan's items (``customize``): unlike an attach,
    Autumn carries every consumable feature's usage when the field is left out; ``enabled: false``
    carries none, ``feature_ids`` only those.  Usage of continuous features (seats in use) always stays."""
    return params.carry_over_usages or AttachCarryOverBalances(enabled=True)


def update_quotes(ctx: Ctx, conn: Connection, params: UpdateRequest) -> dict[str, Any]:
    cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, params)
    plan = instance_plan(conn, cat, inst)
    sub = engine_subscription(conn, cat, inst)
    if plan is None or sub is None:
        raise invalid(f"Plan {inst.plan_id} is not available")
    intent = _intent(params)
    running = (plan.free_trial or {}) if inst.trial_ends_at and inst.trial_ends_at > now else None
    check_update(
        params.invoice_mode,
        bool(running.get("card_required", True)) if running is not None else None,
        str(running.get("on_end") or "bill") if running is not None else None,
    )
    result: dict[str, Any] = {
        "params": params,
        "cat": cat,
        "customer": customer,
        "entity": entity,
        "inst": inst,
        "instances": instances,
        "now": now,
        "plan": plan,
        "sub": sub,
        "intent": intent,
        "due": InvoiceDraft(),
        "next_cycle": None,
        "ends_at": None,
        "quantities": None,
        "refund": None,
        "no_billing": skips_billing(params),
        "discounts": None,
    }
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
            result.update(refund=refund)
        if cancel.ends_at <= now:
            # Ending now: its pending next-cycle prorations are settled on this last invoice.
            due = plus_lines(
                due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
            )
        result.update(due=due, ends_at=cancel.ends_at)
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
        result.update(plan=plan, sub=sub)
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
        result.update(due=quote.due_now, next_cycle=next_cycle, quantities=quote)
    elif intent == "update_plan":
        if inst.status != "active":
            raise invalid("Only an active plan can be customized")
        catalog_plan = cat.plans_by_pk.get(inst.plan_pk)
        if catalog_plan is None:
            raise invalid(f"Plan {inst.plan_id} is not available")
        # Paid seats stay through a customization (its items replace the plan's, not the seats).
        seats = update_seats(conn, cat, customized_plan(plan, params.customize), inst.pk, params)
        custom = seats.plan
        requested = {**feature_quantities(params.feature_quantities), **seats.quantities}
        try:
            switch = quote_upgrade(
                dataclasses.replace(sub, plan=dataclasses.replace(sub.plan, id=f"{sub.plan.id}@previous")),
                engine_plan(custom, cat),
                now,
                requested,
                proration_behavior=params.proration_behavior or "prorate_immediately",
                seat_usage=starting_seat_usage(conn, cat, customer.pk, custom, entity, inst.pk),
                reset_anchor=reset_anchor,
            )
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
        due = without_carried_usage(switch.due_now, f"{sub.plan.id}@previous", _usage_carry(params))
        due = _relabel(due, f"{sub.plan.id}@previous", sub.plan.id)
        # The replaced version's pending next-cycle prorations are settled now, like its unused time.
        due = plus_lines(due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None))
        switch = dataclasses.replace(switch, due_now=due)
        result.update(
            due=switch.due_now, next_cycle=switch.next_cycle, switch=switch, custom=custom, seats=seats
        )
    # Coupons (discounts.py): the subscription's own, then the request's, on what the change bills now
    # and its next cycle; they stay on the instance the change leaves.
    if params.discounts and result["no_billing"]:
        raise invalid("discounts cannot be used with no_billing_changes: nothing is billed")
    removed = removed_rewards(params.discounts, params.remove_discounts, result["no_billing"])
    coupons = running_discounts(conn, inst.pk) if inst.status == "active" else []
    named = resolve_discounts(ctx, conn, params.discounts, result["due"].currency)
    if coupons or named:
        discounted = discount_change(
            result["due"], result["next_cycle"], coupons, named, not result["no_billing"], removed
        )
        result.update(due=discounted.due, next_cycle=discounted.next_cycle, discounts=discounted)
    if result["no_billing"]:  # the change as quoted, with nothing billed for it (no_billing.py)
        result.update(due=nothing_due(result["due"]))
    return result


def check_anchor_now(conn: Connection, cat: Catalog, inst: Instance, params: UpdateRequest, now: int) -> None:
    """``billing_cycle_anchor: "now"``: a customization (``customize``) of a plan with a recurring price
    restarts the subscription's cycle at the request, crediting the unused time and charging a whole new
    period. As Autumn, it is 400 for a one-off plan and during a free trial; on a free plan, with a
    cancel or with an update of quantities only (or of nothing) it is refused here rather than
    silently ignored. One check for every plan, free or paid, before the update is quoted."""
    if params.billing_cycle_anchor != "now":
        return
    sub = engine_subscription(conn, cat, inst)
    if sub is None:
        raise invalid(f"Plan {inst.plan_id} is not available")
    intent = _intent(params)
    if not sub.plan.is_free:
        try:
            check_cycle_reset(sub.plan, sub.trialing_at(now))
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
    if intent != "update_plan" or sub.plan.is_free:
        raise _cycle_reset_unsupported()


def _cycle_reset_unsupported() -> ApiError:
    return ApiError(
        400,
        "unsupported_field",
        "billing_cycle_anchor 'now' on a free plan, or without a customize change (a cancel, or an update "
        "of quantities only) is part of Autumn's API but the reference server does not support it yet; "
        "leave it out (see the README's list of unsupported fields)",
    )


def _relabel(draft: InvoiceDraft, old_id: str, new_id: str) -> InvoiceDraft:
    """Lines of the outgoing version of a customized plan carry the plan's own id."""
    return InvoiceDraft(
        tuple(
            dataclasses.replace(line, plan_id=new_id) if line.plan_id == old_id else line
            for line in draft.lines
        ),
        draft.currency,
    )


def apply_update(
    ctx: Ctx, conn: Connection, q: dict[str, Any], base_url: str, paid: bool = False
) -> dict[str, Any]:
    """Apply an update; ``paid``: its invoice-mode invoice was paid (nothing more to collect)."""
    params: UpdateRequest = q["params"]
    no_billing: bool = q["no_billing"]
    paid = paid or no_billing  # (no_billing_changes: nothing to collect, no_billing.py)
    mode = None if paid else invoice_mode_for(params.invoice_mode, q["due"])
    if mode is not None:

        def start() -> None:
            apply_update(ctx, conn, q, base_url, paid=True)

        return bill_by_invoice(
            ctx,
            conn,
            q["customer"],
            q["entity"],
            q["due"],
            q["now"],
            base_url,
            "update",
            params,
            start,
            mode=mode,
            # not declared by billing.update, honoured as billing.attach does
            enable_plan_immediately=extra_field(params, "enable_plan_immediately"),
            success_url=extra_field(params, "success_url"),
        )
    cat: Catalog = q["cat"]
    customer: CustomerRow = q["customer"]
    entity = q["entity"]
    inst = q["inst"]
    plan = q["plan"]
    now: int = q["now"]
    intent = q["intent"]
    entity_id = entity.id if entity else None
    invoice: InvoiceRecord | None = None
    if not paid and params.redirect_mode == "always":
        # The change waits on a checkout page; paying (or confirming) it there applies it (op "update").
        _, url = create_checkout_session(
            conn,
            customer.pk,
            q["due"],
            checkout_action(ctx, "update", params),
            now,
            base_url,
            extra_field(params, "success_url"),
        )
        return change_response(customer, entity_id, payment_url=url)
    if not paid:
        invoice, failure = charge_or_retry_link(
            ctx,
            conn,
            customer,
            entity,
            q["due"],
            intent,
            now,
            base_url,
            checkout_action(ctx, "update_invoice", None),
            None,
        )
        if failure is not None:
            return failure
    changes: list[dict[str, Any]] = []
    entity_pk = entity.pk if entity else None
    kept_on: int = inst.pk  # the instance the change leaves, where its coupons stay
    if intent == "cancel_immediately" or (intent == "cancel_end_of_cycle" and q["ends_at"] <= now):
        if not no_billing:
            take_pending_lines(conn, customer.pk, inst.plan_id, entity_id)  # settled on this invoice
        if q["refund"] is not None:
            make_refund(conn, processor_for(ctx.state, conn, customer.pk), customer.pk, q["refund"], now)
        set_canceled_at(conn, inst.pk, now)
        carried = expire_active(conn, inst.pk, now, changes)
        if not plan.add_on:
            changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
            changes += activate_default(conn, cat, customer, entity, plan.group, now, carried, plan.id)
    elif intent == "cancel_end_of_cycle":
        ends_at = q["ends_at"]
        previous = {"canceled_at": inst.canceled_at, "expires_at": inst.expires_at}
        set_cancellation(conn, inst.pk, now, ends_at)
        schedule_maintenance(conn, customer.pk, ends_at)
        changes.append(change(conn, "updated", inst.pk, previous))
        default = group_default(cat, plan.group, plan.id) if not plan.add_on else None
        if default is not None:
            changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
            pk = activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=default,
                now=now,
                status="scheduled",
                starts_at=ends_at,
            )
            save_billing_state(conn, pk, None, {}, now)
            changes.append(change(conn, "scheduled", pk))
    elif intent == "uncancel":
        previous = {"canceled_at": inst.canceled_at, "expires_at": inst.expires_at}
        set_cancellation(conn, inst.pk, None, None)
        changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
        changes.append(change(conn, "updated", inst.pk, previous))
    elif intent == "update_quantity":
        quote = q["quantities"]
        for feature_id, delta in quote.balance_deltas.items():
            _add_prepaid(conn, inst.pk, feature_id, float(delta))
        if not no_billing:
            # ``*_next_cycle`` prorations wait for the renewal invoice (Stripe's pending invoice items).
            processor_name = processor_for(ctx.state, conn, customer.pk).name
            add_pending_lines(conn, customer.pk, quote.deferred, processor_name, now, base_url, entity_id)
        set_prepaid_quantities(conn, inst.pk, {k: str(v) for k, v in quote.prepaid_quantities.items()}, now)
        changes.append(change(conn, "updated", inst.pk, {}))
    elif intent == "update_plan":
        switch = q["switch"]
        custom = q["custom"]
        if not no_billing:
            take_pending_lines(conn, customer.pk, inst.plan_id, entity_id)  # settled on this invoice
        parked = park_seats(conn, inst.pk)  # the customized plan keeps the seats it gave out
        leftovers = consumable_leftovers(conn, inst.pk)
        carried = expire_active(conn, inst.pk, now, changes)
        period = switch.period
        new_pk = activate_plan(
            conn,
            cat,
            customer=customer,
            entity=entity,
            plan=custom,
            now=now,
            subscription_id=inst.subscription_id,
            feature_quantities={k: float(v) for k, v in switch.prepaid_quantities.items()},
            carried_usage=carried.continuous_usage,
            next_reset_overrides=carried.next_resets,
            trial_ends_at=inst.trial_ends_at if inst.trial_ends_at and inst.trial_ends_at > now else None,
            current_period_start=period.start if period else None,
            current_period_end=period.end if period else None,
        )
        save_billing_state(conn, new_pk, switch.anchor, dict(switch.prepaid_quantities), now, custom)
        carry_over(conn, customer.pk, entity_pk, new_pk, leftovers, now, _usage_carry(params))
        keep_links(conn, new_pk, q["seats"], inst.pk, now)
        unpark_seats(conn, parked, new_pk, inst.plan_pk, now)
        if period is not None:
            schedule_maintenance(conn, customer.pk, period.end)
        changes.append(change(conn, "activated", new_pk))
        kept_on = new_pk
    discounted: DiscountedChange | None = q["discounts"]
    if discounted is not None:
        record_discounts(ctx, conn, customer.pk, kept_on, discounted, q["due"].currency, now)
    emit_billing_updated(ctx, conn, customer, entity, changes, now, sync_processor=not no_billing)
    out = change_response(customer, entity_id, payment_url=None)
    if invoice is not None:
        out["invoice"] = invoice.to_api()
    return out


def _add_prepaid(conn: Connection, instance_pk: int, feature_id: str, delta: float) -> None:
    """A quantity change moves the purchased grant and the balance by the same amount (usage is kept)."""
    row = first_feature_source(conn, instance_pk, feature_id)
    if row is None:
        return
    set_prepaid_and_balance(conn, row.pk, float(row.prepaid) + delta, float(row.balance) + delta)


def paid_update(ctx: Ctx, params: UpdateSubscriptionParams) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        q = update_quotes(ctx, conn, params)
        _check_checkout_quantities(q)
        return apply_update(ctx, conn, q, base_url)


def preview_update(ctx: Ctx, params: PreviewUpdateParams) -> dict[str, Any]:
    check_no_billing(params)
    check_refund_request(params.refund_last_payment, params.cancel_action, params.proration_behavior)
    check_update_redirect(params)
    settle_due(ctx, params.customer_id)
    with ctx.db.write() as conn:
        if params.billing_cycle_anchor == "now":
            cat, _, _, inst, _, now = resolve_update(ctx, conn, params)
            check_anchor_now(conn, cat, inst, params, now)
        q = update_quotes(ctx, conn, params)
        _check_checkout_quantities(q)
        # An invoice-mode update is invoiced, never sent to checkout (as apply_update does).
        redirect = (
            params.redirect_mode == "always" and invoice_mode_for(params.invoice_mode, q["due"]) is None
        )
        inst, now = q["inst"], q["now"]
        sub = q["sub"]
        cycles = []
        if q["next_cycle"] is not None:
            cycles.append(q["next_cycle"])
        outgoing = []
        if q["ends_at"] is not None:
            outgoing.append(outgoing_json(inst.plan_id, q["ends_at"], now, dict(sub.prepaid_quantities)))
        incoming = []
        if q["quantities"] is not None:
            incoming.append(
                {
                    "plan_id": inst.plan_id,
                    "feature_quantities": [
                        {"feature_id": k, "quantity": float(v) if v != v.to_integral_value() else int(v)}
                        for k, v in q["quantities"].prepaid_quantities.items()
                    ],
                    "effective_at": None,
                    "canceled_at": None,
                    "expires_at": None,
                }
            )
        out = preview_body(
            q["customer"].id or "",
            q["due"],
            cycles,
            incoming,
            outgoing,
            redirect,
            CHECKOUT_TYPE if redirect else None,
            q["entity"].id if q["entity"] else None,
        )
        out["intent"] = q["intent"]
        if q["refund"] is not None:
            out["refund"] = q["refund"].to_json()
        conn.rollback()
        return hide_seats(out)


def update_subscription(ctx: Ctx, params: UpdateSubscriptionParams) -> dict[str, Any]:
    """``billing.update``: a plan without a price changes at once (free path), a priced one is quoted
    and charged; both under the customer's billing lock."""
    check_no_billing(params)
    check_refund_request(params.refund_last_payment, params.cancel_action, params.proration_behavior)
    check_update_redirect(params)
    with customer_lock(ctx, params.customer_id):
        return _update_unlocked(ctx, params)


def _update_unlocked(ctx: Ctx, params: UpdateSubscriptionParams) -> dict[str, Any]:
    with ctx.db.write() as conn:
        cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, params)
        check_anchor_now(conn, cat, inst, params, now)
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if (
            plan is not None
            and plan.is_free
            and not params.feature_quantities
            and not params.license_quantities
            and not is_customized(params.customize)  # a new shape of the plan: quoted like a paid one
            and params.redirect_mode != "always"  # a checkout is the paid path's, even at $0
        ):
            return update_free(ctx, conn, params, cat, customer, entity, inst, instances, now)
    return paid_update(ctx, params)
