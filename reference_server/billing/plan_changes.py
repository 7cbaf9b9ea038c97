"""Paid plan changes applied to the core's plan instances: attach, cancel, quantities and renewals.

The engine prices a change (:mod:`reference_server.engine.billing.quotes`); these functions make it
happen in the caller's transaction: charge through the processor, create, schedule or expire plan
instances through :mod:`reference_server.service.subscriptions`, keep the billing state
(``subscription_billing``) and write ``billing.updated`` to the webhook outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from reference_server.billing.convert import (
    engine_plan,
    engine_subscription,
    instance_plan,
    instance_quantities,
    plan_snapshot,
)
from reference_server.billing.resolve import AttachRequest, plans_to_remove
from reference_server.engine.billing import (
    AttachQuote,
    ChangeKind,
    FreeTrial,
    TrialChoice,
    TrialEndOutcome,
    quote_final_usage,
    quote_new,
    quote_renewal,
    trial_end_outcome,
)
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import to_decimal
from reference_server.processors.contract import ChargeOutcome, PaymentProcessor
from reference_server.service.context import Ctx
from reference_server.service.subscriptions import (
    ExpiredState,
    Instance,
    activate_plan,
    create_item_sources,
    expire_instance,
    expire_scheduled_switches,
    load_instances,
    schedule_maintenance,
    with_entity_usage,
)
from reference_server.store import instance_billing
from reference_server.store.billing_records import (
    CustomerRef,
    has_retryable_invoice,
    invoice_record,
    retryable_invoice_pks,
    take_pending_lines,
)
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.customer_lookup import customer_owner
from reference_server.store.customers import has_trial_record, insert_trial_record, trial_used_by_fingerprint
from reference_server.store.plan_instances import (
    clear_period_end,
    consumable_sources,
    instance_row,
    set_balance,
    set_cancellation,
    set_period,
    update_instance,
)
from reference_server.store.subjects import CustomerRow, EntityRow, entity_by_pk, insert_source
from reference_server.webhooks import BILLING_UPDATED, billing_updated, enqueue, plan_change

DEFAULT_BASE_URL = "http://127.0.0.1"


def customer_ref(customer: CustomerRow) -> CustomerRef:
    return CustomerRef(
        customer.pk, customer.id or f"cus_{customer.pk}", customer.email, customer.name, customer.stripe_id
    )


def subscription_payload(conn: Connection, instance_pk: int) -> dict[str, Any]:
    row = instance_row(conn, instance_pk)
    past_due = instance_billing.past_due_flag(conn, instance_pk)
    return {
        "plan_id": row.plan_id,
        "status": row.status,
        "past_due": bool(past_due),
        "started_at": row.started_at,
        "canceled_at": row.canceled_at,
        "expires_at": row.expires_at,
        "trial_ends_at": row.trial_ends_at,
        "current_period_start": row.current_period_start,
        "current_period_end": row.current_period_end,
    }


def past_due_instances(conn: Connection, customer: CustomerRow) -> set[int]:
    """The customer's plan instances with an unpaid renewal (``past_due`` on the Customer object)."""
    return instance_billing.past_due_instance_pks(conn, customer.pk)


def change(
    conn: Connection,
    action: str,
    instance_pk: int,
    previous: dict[str, Any] | None = None,
    one_off: bool = False,
) -> dict[str, Any]:
    payload = subscription_payload(conn, instance_pk)
    if one_off:
        purchase = {
            "plan_id": payload["plan_id"],
            "status": payload["status"],
            "expires_at": payload["expires_at"],
        }
        return plan_change(action, purchase=purchase, previous_attributes=previous)
    return plan_change(action, subscription=payload, previous_attributes=previous)


def emit_billing_updated(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    changes: Sequence[dict[str, Any]],
    now: int,
    tags: Sequence[str] = (),
) -> None:
    if not changes:
        return
    enqueue(
        conn,
        ctx.tenant.org_pk,
        ctx.tenant.env,
        BILLING_UPDATED,
        billing_updated(customer.id or "", changes, entity.id if entity else None, tags),
        now,
    )
    mirror = ctx.state.billing.subscription_mirror  # Stripe subscriptions follow each change
    if mirror is not None:
        mirror.after_change(conn, customer.pk)


def save_billing_state(
    conn: Connection,
    instance_pk: int,
    anchor: int | None,
    quantities: dict[str, Decimal],
    now: int,
    custom: Plan | None = None,
) -> None:
    instance_billing.insert_billing_state(
        conn,
        instance_pk,
        anchor,
        {k: str(v) for k, v in quantities.items()},
        plan_snapshot(custom) if custom is not None else None,
        now,
    )


def trial_used(
    conn: Connection, customer: CustomerRow, plan_id: str, unique_fingerprint: bool = False
) -> bool:
    """A trial is used once per customer per plan, and once per fingerprint when the trial says so.

    The fingerprint check spans the organization's customers in the same environment, so a second
    account of the same person (same fingerprint) does not get the trial again.
    """
    if has_trial_record(conn, customer.pk, plan_id):
        return True
    if any(
        i.plan_id == plan_id and i.trial_ends_at is not None
        for i in load_instances(conn, customer.pk, include_expired=True)
    ):
        return True
    if not unique_fingerprint or not customer.fingerprint:
        return False
    tenant = customer_owner(conn, customer.pk)
    return trial_used_by_fingerprint(conn, plan_id, customer.fingerprint, tenant.org_pk, tenant.env)


def record_trial(conn: Connection, customer: CustomerRow, plan_id: str, now: int) -> None:
    if not has_trial_record(conn, customer.pk, plan_id):
        insert_trial_record(conn, customer.pk, plan_id, customer.fingerprint, now)


def expire_active(conn: Connection, instance_pk: int, at: int, changes: list[dict[str, Any]]) -> ExpiredState:
    """Expire an active instance at ``at``, note the ``expired`` plan change, and hand back what
    carries over (continuous usage, reset times) to whatever replaces it."""
    carried = expire_instance(conn, instance_pk, at)
    changes.append(change(conn, "expired", instance_pk, {"status": "active"}))
    return carried


def expire_scheduled_in_group(
    conn: Connection, cat: Catalog, instances: Sequence[Instance], group: str, entity_pk: int | None
) -> list[dict[str, Any]]:
    """An immediate change or a new downgrade replaces the switch scheduled in this group and scope."""
    return [
        change(conn, "expired", inst.pk, {"status": "scheduled"})
        for inst in expire_scheduled_switches(conn, cat, list(instances), group, entity_pk)
    ]


@dataclass
class AttachState:
    """Everything an attach resolved: who, which plan (customized), what the customer has now."""

    ctx: Ctx
    conn: Connection
    cat: Catalog
    customer: CustomerRow
    entity: EntityRow | None
    plan: Plan
    customized: bool
    current: Instance | None
    instances: list[Instance]
    now: int
    params: AttachRequest

    @property
    def entity_pk(self) -> int | None:
        return self.entity.pk if self.entity else None


def _consumable_leftovers(conn: Connection, instance_pk: int) -> dict[str, tuple[float, float]]:
    """(usage, remaining) per consumable feature of an instance, read before it expires."""
    rows = consumable_sources(conn, instance_pk)
    out: dict[str, tuple[float, float]] = {}
    for row in rows:
        start = float(row.allowance) + float(row.adjustment) + float(row.prepaid)
        usage, remaining = out.get(row.feature_id, (0.0, 0.0))
        out[row.feature_id] = (usage + start - float(row.balance), remaining + max(0.0, float(row.balance)))
    return out


def _carry_over(
    conn: Connection, state: AttachState, new_pk: int, leftovers: dict[str, tuple[float, float]], now: int
) -> None:
    """``carry_over_usages`` deducts the old usage from the new grant; ``carry_over_balances`` keeps the old
    remaining as a one-off balance that expires at the new plan's next reset (consumable features only)."""
    usages = state.params.carry_over_usages
    balances = state.params.carry_over_balances
    new_rows = consumable_sources(conn, new_pk, oldest_first=True)
    first_row: dict[str, Any] = {}
    for new_row in new_rows:
        first_row.setdefault(new_row.feature_id, new_row)
    for feature_id, (usage, remaining) in leftovers.items():
        row = first_row.get(feature_id)
        if (
            usages is not None
            and usages.enabled
            and row is not None
            and usage > 0
            and feature_id in (usages.feature_ids or [feature_id])
        ):
            set_balance(conn, row.pk, float(row.balance) - usage)
        if (
            balances is not None
            and balances.enabled
            and remaining > 0
            and feature_id in (balances.feature_ids or [feature_id])
        ):
            insert_source(
                conn,
                {
                    "customer_pk": state.customer.pk,
                    "entity_pk": state.entity_pk,
                    "customer_plan_pk": None,
                    "feature_id": feature_id,
                    "plan_id": None,
                    "allowance": remaining,
                    "balance": remaining,
                    "interval": "one_off",
                    "interval_count": 1,
                    "expires_at": row.next_reset_at if row is not None else None,
                    "created_at": now,
                },
            )


def apply_attach(
    state: AttachState, quote: AttachQuote, trial: TrialChoice | None, created: list[int] | None = None
) -> list[dict[str, Any]]:
    """Make a priced attach real; returns the ``plan_changes`` for ``billing.updated``."""
    conn, cat, now = state.conn, state.cat, state.now
    plan, current = state.plan, state.current
    custom = plan if state.customized else None
    quantities = dict(quote.prepaid_quantities)
    floats = {k: float(v) for k, v in quantities.items()}
    changes: list[dict[str, Any]] = []
    for removed in plans_to_remove(cat, state.params, plan, current, state.instances, state.entity_pk):
        expire_active(conn, removed.pk, now, changes)  # remove_plan_ids: they end now, whatever the kind
    if quote.kind is ChangeKind.SAME:
        assert current is not None
        previous = {"canceled_at": current.canceled_at, "expires_at": current.expires_at}
        set_cancellation(conn, current.pk, None, None)
        changes += expire_scheduled_in_group(conn, cat, state.instances, plan.group, state.entity_pk)
        changes.append(change(conn, "updated", current.pk, previous))
        return changes
    if quote.kind is ChangeKind.DOWNGRADE:
        assert current is not None
        changes += expire_scheduled_in_group(conn, cat, state.instances, plan.group, state.entity_pk)
        previous = {"canceled_at": current.canceled_at, "expires_at": current.expires_at}
        set_cancellation(conn, current.pk, now, quote.starts_at)
        changes.append(change(conn, "updated", current.pk, previous))
        new_pk = activate_plan(
            conn,
            cat,
            customer=state.customer,
            entity=state.entity,
            plan=plan,
            now=now,
            status="scheduled",
            starts_at=quote.starts_at,
            subscription_id=state.params.subscription_id,
            feature_quantities=floats,
            current_period_start=quote.period.start if quote.period else None,
            current_period_end=quote.period.end if quote.period else None,
        )
        save_billing_state(conn, new_pk, quote.anchor, quantities, now, custom)
        schedule_maintenance(conn, state.customer.pk, quote.starts_at)
        changes.append(change(conn, "scheduled", new_pk))
        if created is not None:
            created.append(new_pk)
        return changes
    carried: ExpiredState | None = None
    leftovers: dict[str, tuple[float, float]] = {}
    if quote.kind is ChangeKind.UPGRADE and current is not None:
        # Its pending next-cycle prorations went on the switch's invoice (operations.prepare_attach).
        entity_id = state.entity.id if state.entity else None
        take_pending_lines(conn, state.customer.pk, current.plan_id, entity_id)
        leftovers = _consumable_leftovers(conn, current.pk)
        carried = expire_active(conn, current.pk, now, changes)
    if not plan.add_on and not plan.is_one_off:
        changes += expire_scheduled_in_group(conn, cat, state.instances, plan.group, state.entity_pk)
    period = quote.period
    new_pk = activate_plan(
        conn,
        cat,
        customer=state.customer,
        entity=state.entity,
        plan=plan,
        now=now,
        subscription_id=state.params.subscription_id,
        feature_quantities=floats,
        carried_usage=carried.continuous_usage if carried else None,
        next_reset_overrides=carried.next_resets if carried else None,
        trial_ends_at=quote.trial_ends_at,
        current_period_start=period.start if period else None,
        current_period_end=period.end if period else None,
    )
    save_billing_state(conn, new_pk, quote.anchor, quantities, now, custom)
    if leftovers:
        _carry_over(conn, state, new_pk, leftovers, now)
    if trial is not None:
        record_trial(conn, state.customer, plan.id, now)
    if period is not None:
        schedule_maintenance(conn, state.customer.pk, period.end)
    changes.append(change(conn, "activated", new_pk, one_off=plan.is_one_off))
    if created is not None:
        created.append(new_pk)
    return changes


def group_default(cat: Catalog, group: str, exclude_plan_id: str) -> Plan | None:
    """The group's free auto_enable plan that returns when a paid main plan ends (never the one ending)."""
    for plan in cat.plans.values():
        if (
            plan.auto_enable
            and plan.is_free
            and not plan.archived
            and not plan.add_on
            and plan.group == group
            and plan.id != exclude_plan_id
        ):
            return plan
    return None


def activate_default(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    group: str,
    now: int,
    carried: ExpiredState | None,
    exclude_plan_id: str,
) -> list[dict[str, Any]]:
    """Bring back the group's free default plan now."""
    plan = group_default(cat, group, exclude_plan_id)
    if plan is None:
        return []
    pk = activate_plan(
        conn,
        cat,
        customer=customer,
        entity=entity,
        plan=plan,
        now=now,
        carried_usage=carried.continuous_usage if carried else None,
    )
    return [change(conn, "activated", pk)]


def _entity_of(conn: Connection, entity_pk: int | None) -> EntityRow | None:
    if entity_pk is None:
        return None
    return entity_by_pk(conn, entity_pk)


def charge_draft(
    processor: PaymentProcessor,
    conn: Connection,
    customer: CustomerRow,
    draft: InvoiceDraft,
    reason: str,
    now: int,
    base_url: str,
    entity: EntityRow | None = None,
) -> ChargeOutcome | None:
    """Invoice ``draft`` unless it has no lines (free changes create no invoice)."""
    if not draft.lines:
        return None
    return processor.charge(
        conn, customer_ref(customer), draft, reason, now, base_url, entity_id=entity.id if entity else None
    )


def _with_pending(
    conn: Connection, customer: CustomerRow, inst: Instance, draft: InvoiceDraft, entity: EntityRow | None
) -> InvoiceDraft:
    """``draft`` plus the plan's pending ``*_next_cycle`` prorations, which are due on its next invoice."""
    pending = take_pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
    return InvoiceDraft(draft.lines + pending, draft.currency) if pending else draft


def _activate_scheduled(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    inst: Instance,
    at: int,
    processor: PaymentProcessor,
    base_url: str,
    carried: ExpiredState | None,
) -> list[dict[str, Any]]:
    """Start a scheduled plan at its start time: bill its first period, give it balances."""
    plan = instance_plan(conn, cat, inst)
    if plan is None:
        return []
    entity = _entity_of(conn, inst.entity_pk)
    quantities = instance_quantities(conn, inst)
    eplan = engine_plan(plan, cat)
    values: dict[str, Any] = {"status": "active", "started_at": at}
    past_due = False
    usage = dict(carried.continuous_usage) if carried else {}
    if entity is None:
        usage = with_entity_usage(conn, cat, customer.pk, plan, usage)
    if not plan.is_free:
        # The seats it starts with are billed up front for its first period, like every renewal.
        seats = {fid: to_decimal(u) for fid, u in usage.items()}
        quote = quote_new(eplan, at, quantities, seat_usage=seats)
        outcome = charge_draft(processor, conn, customer, quote.due_now, "renewal", at, base_url, entity)
        past_due = outcome is not None and not outcome.succeeded
        if quote.period is not None:
            values.update(current_period_start=quote.period.start, current_period_end=quote.period.end)
            instance_billing.set_anchor_and_past_due(conn, inst.pk, at, past_due)
            schedule_maintenance(conn, customer.pk, quote.period.end)
    update_instance(conn, inst.pk, values)
    create_item_sources(
        conn,
        cat,
        customer_pk=customer.pk,
        entity_pk=inst.entity_pk,
        instance_pk=inst.pk,
        plan=plan,
        now=at,
        anchor_at=at,
        quantity=inst.quantity,
        feature_quantities={k: float(v) for k, v in quantities.items()},
        carried_usage=usage,
    )
    return [change(conn, "activated", inst.pk)]


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
    ending = inst.expires_at is not None and inst.expires_at <= boundary
    trial_ending = inst.trial_ends_at is not None and inst.trial_ends_at <= boundary
    pm = processor.default_payment_method(conn, customer_ref(customer))
    if trial_ending and not ending:
        tags.append("trial_ended")
        if trial_end_outcome(_trial_of(plan), pm is not None) is not TrialEndOutcome.BILL:
            ending = True
    if ending:
        if not trial_ending:
            final = _with_pending(conn, customer, inst, quote_final_usage(sub), entity)
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
            for successor in successors:
                changes += _activate_scheduled(
                    ctx, conn, cat, customer, successor, boundary, processor, base_url, carried
                )
        elif not plan.add_on:
            changes += activate_default(conn, cat, customer, entity, plan.group, boundary, carried, plan.id)
        emit_billing_updated(ctx, conn, customer, entity, changes, boundary, tags)
        return
    renewal = quote_renewal(sub, boundary)
    invoice = _with_pending(conn, customer, inst, renewal.invoice, entity)
    outcome = charge_draft(processor, conn, customer, invoice, "renewal", boundary, base_url, entity)
    past_due = outcome is not None and not outcome.succeeded
    previous = {
        "current_period_start": inst.current_period_start,
        "current_period_end": inst.current_period_end,
    }
    set_period(conn, inst.pk, renewal.next_period.start, renewal.next_period.end)
    instance_billing.set_past_due(conn, inst.pk, past_due, boundary)
    schedule_maintenance(conn, customer.pk, renewal.next_period.end)
    changes.append(change(conn, "updated", inst.pk, previous))
    emit_billing_updated(ctx, conn, customer, entity, changes, boundary, tags)


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
            changes = _activate_scheduled(
                ctx, conn, cat, customer, first_start, first_start.starts_at, processor, base_url, None
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
