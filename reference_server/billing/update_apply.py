"""Carrying out a ``billing.update``: a plan without a price changes at once (:func:`update_free`); a
priced plan's quoted change (:mod:`reference_server.billing.update_quote`) is charged, invoiced or sent
to checkout, then written (:func:`apply_update`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import AttachResponseJson
from reference_server.billing.convert import feature_quantities
from reference_server.billing.discounts import record_discounts, resolve_discounts
from reference_server.billing.last_payment_refund import make_refund
from reference_server.billing.license_seats import keep_links, park_seats, unpark_seats
from reference_server.billing.payment_collection import (
    bill_by_invoice,
    change_response,
    charge_or_retry_link,
    checkout_action,
    invoice_mode_for,
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
)
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.quoted_update import QuotedUpdate
from reference_server.billing.resolve import UpdateRequest
from reference_server.billing.sessions import create_checkout_session
from reference_server.billing.update_request import recalculates, usage_carry
from reference_server.engine.billing.money import DEFAULT_CURRENCY
from reference_server.errors import invalid, plan_not_found
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
from reference_server.store.pending_lines import add_pending_lines, take_pending_lines
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
) -> AttachResponseJson:
    # A plan without a price has no invoice to discount: its discounts are checked, and kept nowhere.
    resolve_discounts(ctx, conn, params.discounts, DEFAULT_CURRENCY)
    recalculates(params)  # (refused here: no quantities to recalculate on this path)
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
    out: AttachResponseJson = {"customer_id": customer.id or "", "payment_url": None}
    if entity is not None and entity.id is not None:  # (found by the request's entity_id)
        out["entity_id"] = entity.id
    return out


def apply_update(
    ctx: Ctx, conn: Connection, q: QuotedUpdate, base_url: str, paid: bool = False
) -> AttachResponseJson:
    """Apply an update; ``paid``: its invoice-mode invoice was paid (nothing more to collect)."""
    params = q.params
    no_billing = q.no_billing
    paid = paid or no_billing  # (no_billing_changes: nothing to collect, no_billing.py)
    mode = None if paid else invoice_mode_for(params.invoice_mode, q.due)
    if mode is not None:

        def start() -> None:
            apply_update(ctx, conn, q, base_url, paid=True)

        return bill_by_invoice(
            ctx,
            conn,
            q.customer,
            q.entity,
            q.due,
            q.now,
            base_url,
            "update",
            params,
            start,
            mode=mode,
            # not declared by billing.update, honoured as billing.attach does
            enable_plan_immediately=extra_field(params, "enable_plan_immediately"),
            success_url=extra_field(params, "success_url"),
        )
    cat, customer, entity, inst = q.cat, q.customer, q.entity, q.inst
    plan, now, intent = q.plan, q.now, q.intent
    entity_id = entity.id if entity else None
    invoice: InvoiceRecord | None = None
    if not paid and params.redirect_mode == "always":
        # The change waits on a checkout page; paying (or confirming) it there applies it (op "update").
        _, url = create_checkout_session(
            conn,
            customer.pk,
            q.due,
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
            q.due,
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
    ends_at = q.ends_at  # (a cancel's: set with its intent, update_quote.py)
    if intent == "cancel_immediately" or (
        intent == "cancel_end_of_cycle" and ends_at is not None and ends_at <= now
    ):
        # Its pending next-cycle prorations are settled on this last invoice; without billing there is
        # none, and no later invoice of the plan: they are dropped with it (no_billing.py).
        take_pending_lines(conn, customer.pk, inst.plan_id, entity_id)
        if q.refund is not None:
            make_refund(conn, processor_for(ctx.state, conn, customer.pk), customer.pk, q.refund, now)
        set_canceled_at(conn, inst.pk, now)
        carried = expire_active(conn, inst.pk, now, changes)
        if not plan.add_on:
            changes += expire_scheduled_in_group(conn, cat, q.instances, plan.group, entity_pk)
            changes += activate_default(conn, cat, customer, entity, plan.group, now, carried, plan.id)
    elif intent == "cancel_end_of_cycle" and ends_at is not None:
        previous = {"canceled_at": inst.canceled_at, "expires_at": inst.expires_at}
        set_cancellation(conn, inst.pk, now, ends_at)
        schedule_maintenance(conn, customer.pk, ends_at)
        changes.append(change(conn, "updated", inst.pk, previous))
        default = group_default(cat, plan.group, plan.id) if not plan.add_on else None
        if default is not None:
            changes += expire_scheduled_in_group(conn, cat, q.instances, plan.group, entity_pk)
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
        changes += expire_scheduled_in_group(conn, cat, q.instances, plan.group, entity_pk)
        changes.append(change(conn, "updated", inst.pk, previous))
    elif intent == "update_quantity" and (quote := q.quantities) is not None:
        for feature_id, delta in quote.balance_deltas.items():
            _add_prepaid(conn, inst.pk, feature_id, float(delta))
        if q.recalculate:  # recalculate_balances: the named features' balances restart (update_request.py)
            for feature_id in feature_quantities(params.feature_quantities):
                _restart_balance(conn, inst.pk, feature_id)
        if not no_billing:
            # ``*_next_cycle`` prorations wait for the renewal invoice (Stripe's pending invoice items).
            processor_name = processor_for(ctx.state, conn, customer.pk).name
            add_pending_lines(conn, customer.pk, quote.deferred, processor_name, now, base_url, entity_id)
        set_prepaid_quantities(conn, inst.pk, {k: str(v) for k, v in quote.prepaid_quantities.items()}, now)
        changes.append(change(conn, "updated", inst.pk, {}))
    elif intent == "update_plan" and (customization := q.customization) is not None:
        switch, custom = customization.switch, customization.custom
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
            trial_ends_at=switch.trial_ends_at,  # kept, started or ended (update_free_trial.py)
            current_period_start=period.start if period else None,
            current_period_end=period.end if period else None,
        )
        snapshot = custom if customization.snapshot else None  # (a version as it is: none, update_quote.py)
        save_billing_state(conn, new_pk, switch.anchor, dict(switch.prepaid_quantities), now, snapshot)
        carry_over(conn, customer.pk, entity_pk, new_pk, leftovers, now, usage_carry(params))
        keep_links(conn, new_pk, customization.seats, inst.pk, now)
        unpark_seats(conn, parked, new_pk, inst.plan_pk, now)
        if period is not None:
            schedule_maintenance(conn, customer.pk, period.end)
        changes.append(change(conn, "activated", new_pk))
        kept_on = new_pk
    discounted = q.discounts
    if discounted is not None:
        record_discounts(ctx, conn, customer.pk, kept_on, discounted, q.due.currency, now)
    emit_billing_updated(ctx, conn, customer, entity, changes, now, sync_processor=not no_billing)
    return change_response(
        customer, entity_id, None, invoice=invoice.to_api() if invoice is not None else None
    )


def _add_prepaid(conn: Connection, instance_pk: int, feature_id: str, delta: float) -> None:
    """A quantity change moves the purchased grant and the balance by the same amount (usage is kept)."""
    row = first_feature_source(conn, instance_pk, feature_id)
    if row is None:
        return
    set_prepaid_and_balance(conn, row.pk, float(row.prepaid) + delta, float(row.balance) + delta)


def _restart_balance(conn: Connection, instance_pk: int, feature_id: str) -> None:
    """``recalculate_balances``: the balance is the feature's whole grant again (included, adjustment and
    the new prepaid quantity), its usage so far no longer counted against it.  A continuous feature's
    usage is what is in use (seats), never restarted: its balance already is its grant less that."""
    row = first_feature_source(conn, instance_pk, feature_id)
    if row is None or row.continuous:
        return
    grant = float(row.allowance) + float(row.adjustment) + float(row.prepaid)
    set_prepaid_and_balance(conn, row.pk, float(row.prepaid), grant)
