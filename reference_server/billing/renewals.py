"""Paid billing's period boundaries, run by the maintenance hook before the core's own maintenance.

At each boundary, in time order: a renewal charges the next period; a trial end bills the plan or
ends it; an end of life (cancel or downgrade) charges the final usage and starts the scheduled
successor or the group's default plan; a scheduled plan reaching its start is billed for its first
period and started by the core (:func:`reference_server.service.subscriptions.start_scheduled`).
Past-due renewals are collected again when a new card is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from reference_server.billing.convert import (
    engine_plan,
    engine_subscription,
    instance_plan,
    instance_quantities,
)
from reference_server.billing.discounts import discount_invoice
from reference_server.billing.plan_changes import (
    activate_default,
    change,
    charge_draft,
    customer_ref,
    emit_billing_updated,
    expire_active,
    save_billing_state,
)
from reference_server.billing.processor_choice import processor_for
from reference_server.engine.billing import (
    FreeTrial,
    RenewalQuote,
    Subscription,
    TrialEndOutcome,
    quote_final_usage,
    quote_new,
    quote_renewal,
    trial_end_outcome,
)
from reference_server.engine.billing.attach_dates import end_credit
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import to_decimal
from reference_server.processors.contract import ChargeOutcome, PaymentProcessor
from reference_server.service.context import AppState, Ctx, Maintenance
from reference_server.service.subscriptions import (
    ExpiredState,
    Instance,
    load_instances,
    schedule_maintenance,
    start_scheduled,
    with_entity_usage,
)
from reference_server.store import instance_billing
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.invoices import has_retryable_invoice, invoice_record, retryable_invoice_pks
from reference_server.store.pending_lines import take_pending_lines
from reference_server.store.plan_instances import clear_period_end, set_period
from reference_server.store.subjects import CustomerRow, EntityRow, entity_by_pk
from reference_server.store.subscription_discounts import move_discounts


def _entity_of(conn: Connection, entity_pk: int | None) -> EntityRow | None:
    if entity_pk is None:
        return None
    return entity_by_pk(conn, entity_pk)


def _with_pending(
    conn: Connection, customer: CustomerRow, inst: Instance, draft: InvoiceDraft, entity: EntityRow | None
) -> InvoiceDraft:
    """``draft`` plus the plan's pending ``*_next_cycle`` prorations, which are due on its next invoice."""
    pending = take_pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
    return InvoiceDraft(draft.lines + pending, draft.currency) if pending else draft


def _activate_scheduled(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    inst: Instance,
    at: int,
    processor: PaymentProcessor,
    base_url: str,
    carried: ExpiredState | None,
) -> list[dict[str, Any]]:
    """Start a scheduled plan at its start time: bill its first period, then the core starts it.

    A paid plan's first period is quoted with the seats it starts with (the carried usage plus, for
    a customer-level plan, its entities' seats) and charged up front, like every renewal.
    """
    plan = instance_plan(conn, cat, inst)
    if plan is None:
        return []
    entity = _entity_of(conn, inst.entity_pk)
    quantities = instance_quantities(conn, inst)
    usage = dict(carried.continuous_usage) if carried else {}
    if entity is None:
        usage = with_entity_usage(conn, cat, customer.pk, plan, usage)
    columns: dict[str, Any] = {}
    if not plan.is_free:
        seats = {fid: to_decimal(u) for fid, u in usage.items()}
        quote = quote_new(engine_plan(plan, cat), at, quantities, seat_usage=seats)
        due = quote.due_now
        if _ends_itself(inst) and quote.anchor is not None:  # its ``ends_at`` falls in its first period
            assert inst.expires_at is not None
            ends_at = inst.expires_at
            credit = end_credit(
                quote.plan, quote.prepaid_quantities, quote.anchor, quote.period, ends_at, 1, seats
            )
            due = InvoiceDraft(due.lines + tuple(credit), due.currency)
        due = discount_invoice(conn, inst.pk, due, at)  # coupons kept when it was scheduled (discounts.py)
        outcome = charge_draft(processor, conn, customer, due, "renewal", at, base_url, entity)
        past_due = outcome is not None and not outcome.succeeded
        if quote.period is not None:
            columns = {"current_period_start": quote.period.start, "current_period_end": quote.period.end}
            instance_billing.set_anchor_and_past_due(conn, inst.pk, at, past_due)
            schedule_maintenance(conn, customer.pk, quote.period.end)
    start_scheduled(
        conn,
        cat,
        inst,
        plan,
        at,
        columns=columns,
        feature_quantities={k: float(v) for k, v in quantities.items()},
        carried_usage=usage,
    )
    return [change(conn, "activated", inst.pk)]


def _ends_itself(inst: Instance) -> bool:
    """The instance ends at its own ``ends_at`` (an expiry it was attached with, not a cancellation):
    the period it ends in is billed only up to then."""
    return inst.expires_at is not None and inst.canceled_at is None


def _displace_default(
    conn: Connection, cat: Catalog, customer: CustomerRow, inst: Instance, at: int
) -> tuple[ExpiredState | None, list[dict[str, Any]]]:
    """A main plan starting at ``at`` ends the free plan still active in its group and scope past that
    moment: the group's default, back because the plan the start was to replace ended sooner (a
    ``starts_at`` after a cancellation's end). What it leaves (continuous usage) carries over."""
    changes: list[dict[str, Any]] = []
    carried: ExpiredState | None = None
    plan = cat.plans_by_pk.get(inst.plan_pk)
    if plan is None or plan.add_on or plan.is_one_off:
        return carried, changes
    for other in load_instances(conn, customer.pk):
        held = cat.plans_by_pk.get(other.plan_pk)
        if (
            other.status == "active"
            and other.entity_pk == inst.entity_pk
            and held is not None
            and held.is_free
            and held.group == plan.group
            and not held.add_on
            and (other.expires_at is None or other.expires_at > at)
        ):
            carried = expire_active(conn, other.pk, at, changes)
    return carried, changes


def _trial_of(plan: Plan) -> FreeTrial | None:
    raw = plan.free_trial
    if not raw:
        return None
    return FreeTrial(
        int(raw.get("duration_length") or 1),
        str(raw.get("duration_type") or "month"),
        bool(raw.get("card_required", True)),
        str(raw.get("on_end") or "bill"),
    )


def process_boundary(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    inst: Instance,
    processor: PaymentProcessor,
    base_url: str,
) -> None:
    """Handle one event of a paid instance: a period end (renew or end a trial) or its end of life."""
    boundary = _event_time(inst)
    assert boundary is not None
    plan = instance_plan(conn, cat, inst)
    sub = engine_subscription(conn, cat, inst)
    if plan is None or sub is None:
        clear_period_end(conn, inst.pk)
        return
    entity = _entity_of(conn, inst.entity_pk)
    changes: list[dict[str, Any]] = []
    tags: list[str] = []
    pm = processor.default_payment_method(conn, customer_ref(customer))
    ending, trial_ending, trial_ended = _ending_at(inst, plan, boundary, pm is not None)
    if trial_ended:
        tags.append("trial_ended")
    if ending:
        if not trial_ending:
            final = _with_pending(conn, customer, inst, quote_final_usage(sub), entity)
            final = discount_invoice(conn, inst.pk, final, boundary, mid_cycle=True)
            charge_draft(processor, conn, customer, final, "final_usage", boundary, base_url, entity)
        carried = expire_active(conn, inst.pk, boundary, changes)
        successors = [
            i
            for i in load_instances(conn, customer.pk)
            if i.status == "scheduled"
            and i.entity_pk == inst.entity_pk
            and i.starts_at is not None
            and i.starts_at <= boundary
            and (p := cat.plans_by_pk.get(i.plan_pk)) is not None
            and p.group == plan.group
            and not p.add_on
        ]
        if successors:
            # The plan that follows (a downgrade at the period end) keeps the subscription's coupons.
            move_discounts(conn, inst.pk, successors[0].pk)
            for successor in successors:
                changes += _activate_scheduled(
                    conn, cat, customer, successor, boundary, processor, base_url, carried
                )
        elif not plan.add_on and not plan.is_one_off:  # (a one-off purchase ending replaces nothing)
            changes += activate_default(conn, cat, customer, entity, plan.group, boundary, carried, plan.id)
        emit_billing_updated(ctx, conn, customer, entity, changes, boundary, tags)
        return
    # The other plans of its multi-attach renewing now share the invoice (their trial ended with it).
    members = [(inst, sub), *_renewing_with(conn, cat, customer, inst, sub, boundary, pm is not None)]
    renewals = [(member, member_sub, quote_renewal(member_sub, boundary)) for member, member_sub in members]
    invoice = InvoiceDraft((), renewals[0][2].invoice.currency)
    for member, member_sub, renewal in renewals:
        draft = _renewal_invoice(conn, customer, member, member_sub, renewal, entity, boundary)
        invoice = InvoiceDraft(invoice.lines + draft.lines, invoice.currency)
    outcome = charge_draft(processor, conn, customer, invoice, "renewal", boundary, base_url, entity)
    past_due = outcome is not None and not outcome.succeeded
    for member, _, renewal in renewals:
        previous = {
            "current_period_start": member.current_period_start,
            "current_period_end": member.current_period_end,
        }
        set_period(conn, member.pk, renewal.next_period.start, renewal.next_period.end)
        instance_billing.set_past_due(conn, member.pk, past_due, boundary)
        schedule_maintenance(conn, customer.pk, renewal.next_period.end)
        changes.append(change(conn, "updated", member.pk, previous))
    emit_billing_updated(ctx, conn, customer, entity, changes, boundary, tags)


def _ending_at(inst: Instance, plan: Plan, boundary: int, has_card: bool) -> tuple[bool, bool, bool]:
    """(the instance ends at ``boundary``, its trial ends by then, that trial end is the event: the
    instance does not end at its own ``ends_at``). A trial end that does not bill the plan (no card, or
    ``on_end`` not billing) ends it."""
    ending = inst.expires_at is not None and inst.expires_at <= boundary
    trial_ending = inst.trial_ends_at is not None and inst.trial_ends_at <= boundary
    trial_ended = trial_ending and not ending
    if trial_ended and trial_end_outcome(_trial_of(plan), has_card) is not TrialEndOutcome.BILL:
        ending = True
    return ending, trial_ending, trial_ended


def _renewing_with(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    inst: Instance,
    sub: Subscription,
    boundary: int,
    has_card: bool,
) -> list[tuple[Instance, Subscription]]:
    """The other plans of ``inst``'s multi-attach (its billing group, one subscription) renewing at the
    same ``boundary`` in the same scope and currency: billed on the same invoice, as Autumn's one Stripe
    subscription with an item per plan bills them together (after a shared trial ends, too)."""
    group = instance_billing.billing_groups(conn, [inst.pk]).get(inst.pk)
    if group is None:
        return []
    others = [
        i
        for i in load_instances(conn, customer.pk)
        if i.pk != inst.pk
        and i.status == "active"
        and i.entity_pk == inst.entity_pk
        and i.current_period_end == boundary
        and _event_time(i) == boundary
    ]
    groups = instance_billing.billing_groups(conn, [i.pk for i in others])
    currency = quote_renewal(sub, boundary).invoice.currency
    found: list[tuple[Instance, Subscription]] = []
    for other in others:
        if groups.get(other.pk) != group:
            continue
        plan = instance_plan(conn, cat, other)
        other_sub = engine_subscription(conn, cat, other)
        if plan is None or other_sub is None or _ending_at(other, plan, boundary, has_card)[0]:
            continue  # (it ends at the boundary: billed, or not, on its own)
        if quote_renewal(other_sub, boundary).invoice.currency == currency:
            found.append((other, other_sub))
    return found


def _renewal_invoice(
    conn: Connection,
    customer: CustomerRow,
    inst: Instance,
    sub: Subscription,
    renewal: RenewalQuote,
    entity: EntityRow | None,
    boundary: int,
) -> InvoiceDraft:
    """One plan's part of a renewal invoice: its renewal quote, the credit of a plan ending within the
    next period, its pending ``*_next_cycle`` prorations, and its coupons in force (discounts.py)."""
    invoice = renewal.invoice
    if _ends_itself(inst):  # the period it ends in is billed up to its ``ends_at``
        assert inst.expires_at is not None
        credit = end_credit(
            sub.plan,
            sub.prepaid_quantities,
            sub.anchor,
            renewal.next_period,
            inst.expires_at,
            sub.quantity,
            sub.usage,
        )
        invoice = InvoiceDraft(invoice.lines + tuple(credit), invoice.currency)
    invoice = _with_pending(conn, customer, inst, invoice, entity)
    return discount_invoice(conn, inst.pk, invoice, boundary)


MAX_BOUNDARIES_PER_RUN = 1000


def end_default_trial(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    inst: Instance,
    processor: PaymentProcessor,
    base_url: str,
) -> None:
    """A default plan's no-card trial ended: bill it from the trial end if a card is on file, else revert.

    Without a card the plan expires and the group's free default plan takes over.
    """
    plan = cat.plans_by_pk.get(inst.plan_pk)
    assert inst.trial_ends_at is not None
    trial_end = inst.trial_ends_at
    if plan is None or plan.is_free:
        return
    entity = _entity_of(conn, inst.entity_pk)
    has_card = processor.default_payment_method(conn, customer_ref(customer)) is not None
    changes: list[dict[str, Any]] = []
    if trial_end_outcome(_trial_of(plan), has_card) is TrialEndOutcome.BILL and has_card:
        quote = quote_new(engine_plan(plan, cat), trial_end)
        outcome = charge_draft(
            processor, conn, customer, quote.due_now, "trial_end", trial_end, base_url, entity
        )
        previous = {"current_period_start": None, "current_period_end": None}
        period = quote.period
        set_period(conn, inst.pk, period.start if period else None, period.end if period else None)
        save_billing_state(conn, inst.pk, trial_end, {}, trial_end)
        if outcome is not None and not outcome.succeeded:
            instance_billing.mark_past_due(conn, inst.pk)
        if period is not None:
            schedule_maintenance(conn, customer.pk, period.end)
        changes.append(change(conn, "updated", inst.pk, previous))
    else:
        carried = expire_active(conn, inst.pk, trial_end, changes)
        if not plan.add_on:
            changes += activate_default(conn, cat, customer, entity, plan.group, trial_end, carried, plan.id)
    emit_billing_updated(ctx, conn, customer, entity, changes, trial_end, ["trial_ended"])


def _event_time(inst: Instance) -> int | None:
    """When an active instance next needs billing work: its end of life or its period end."""
    times = [t for t in (inst.current_period_end, inst.expires_at) if t is not None]
    return min(times) if times else None


def _managed(conn: Connection, instance_pks: Sequence[int]) -> set[int]:
    """Instances whose billing this module owns (they have a ``subscription_billing`` row)."""
    if not instance_pks:
        return set()
    return instance_billing.billed_instance_pks(conn, list(instance_pks))


def run_billing_maintenance(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    now: int,
    processor: PaymentProcessor,
    base_url: str,
) -> None:
    """Process every due event in time order (a long-idle customer catches up period by period).

    Events: a paid instance's period end (renewal or trial end), its end of life (cancel or downgrade,
    which starts the scheduled successor or the default plan), and scheduled instances starting.
    """
    instances = load_instances(conn, customer.pk)
    managed = _managed(conn, [i.pk for i in instances])
    for inst in instances:
        if (
            inst.status == "active"
            and inst.pk not in managed
            and inst.trial_ends_at is not None
            and inst.trial_ends_at <= now
            and inst.current_period_end is None
        ):
            end_default_trial(ctx, conn, cat, customer, inst, processor, base_url)
    for _ in range(MAX_BOUNDARIES_PER_RUN):
        instances = load_instances(conn, customer.pk)
        managed = _managed(conn, [i.pk for i in instances])
        due = [
            i
            for i in instances
            if i.status == "active"
            and i.pk in managed
            and (t := _event_time(i)) is not None
            and t <= now
            and (i.current_period_end is not None or i.expires_at is not None)
        ]
        starting = [
            i
            for i in instances
            if i.status == "scheduled" and i.pk in managed and i.starts_at is not None and i.starts_at <= now
        ]
        first_due = min(due, key=lambda i: (_event_time(i) or 0, i.pk)) if due else None
        first_start = min(starting, key=lambda i: (i.starts_at or 0, i.pk)) if starting else None
        if first_due is None and first_start is None:
            return
        if first_start is not None and (
            first_due is None or (first_start.starts_at or 0) < (_event_time(first_due) or 0)
        ):
            assert first_start.starts_at is not None
            carried, changes = _displace_default(conn, cat, customer, first_start, first_start.starts_at)
            changes += _activate_scheduled(
                conn, cat, customer, first_start, first_start.starts_at, processor, base_url, carried
            )
            emit_billing_updated(
                ctx,
                conn,
                customer,
                _entity_of(conn, first_start.entity_pk),
                changes,
                first_start.starts_at,
                ["phase_changed"],
            )
            continue
        assert first_due is not None
        process_boundary(ctx, conn, cat, customer, first_due, processor, base_url)


def past_due_instances(conn: Connection, customer_pks: Sequence[int]) -> set[int]:
    """The customers' plan instances with an unpaid renewal (``past_due`` on the Customer object)."""
    return instance_billing.past_due_instance_pks(conn, customer_pks)


def retry_past_due(
    conn: Connection, customer: CustomerRow, processor: PaymentProcessor, now: int
) -> list[ChargeOutcome]:
    """After a new card is saved, collect the open renewal invoices again and clear ``past_due``."""
    ref = customer_ref(customer)
    rows = retryable_invoice_pks(conn, customer.pk)
    outcomes = [processor.retry_invoice(conn, ref, invoice_record(conn, int(pk)), now) for pk in rows]
    if not has_retryable_invoice(conn, customer.pk):
        instance_pks = [i.pk for i in load_instances(conn, customer.pk)]
        if instance_pks:
            instance_billing.clear_past_due(conn, instance_pks, now)
    return outcomes


def maintenance_hook(state: AppState) -> Maintenance:
    def run(ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int) -> None:
        base = state.background_url
        processor = processor_for(state, conn, customer.pk)
        run_billing_maintenance(ctx, conn, cat, customer, now, processor, base)
        mirror = state.billing.subscription_mirror
        if mirror is not None:  # renewals: Stripe subscriptions checked after
            mirror.after_change(conn, customer.pk)

    return run
