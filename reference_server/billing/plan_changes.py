"""Paid plan changes applied to the core's plan instances: attach, downgrade, cancel and switch back.

The engine prices a change (:mod:`reference_server.engine.billing.attach_quotes`); these functions make it
happen in the caller's transaction: charge through the processor, create, schedule or expire plan
instances through :mod:`reference_server.service.subscriptions`, keep the billing state
(``subscription_billing``) and write ``billing.updated`` to the webhook outbox.  What happens later
at a period boundary (renewals, trial ends, scheduled switches) is :mod:`reference_server.billing.renewals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import AttachCarryOverBalances
from reference_server.billing.convert import plan_snapshot
from reference_server.billing.discounts import DiscountedChange, record_discounts
from reference_server.billing.resolve import AttachRequest, plans_to_remove
from reference_server.engine.billing import AttachQuote, ChangeKind, TrialChoice
from reference_server.engine.billing.invoice import InvoiceDraft, LineKind
from reference_server.processors.contract import ChargeOutcome, PaymentProcessor
from reference_server.service.context import Ctx
from reference_server.service.subscriptions import (
    ExpiredState,
    Instance,
    activate_plan,
    expire_instance,
    expire_scheduled_switches,
    load_instances,
    schedule_maintenance,
)
from reference_server.store import instance_billing
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.customer_lookup import CustomerRef, customer_owner
from reference_server.store.customers import has_trial_record, insert_trial_record, trial_used_by_fingerprint
from reference_server.store.pending_lines import carry_pending_lines, take_pending_lines
from reference_server.store.plan_instances import (
    consumable_sources,
    instance_row,
    set_balance,
    set_cancellation,
)
from reference_server.store.subjects import CustomerRow, EntityRow, insert_source
from reference_server.webhooks import BILLING_UPDATED, billing_updated, enqueue, plan_change


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
    sync_processor: bool = True,
) -> None:
    """Write ``billing.updated`` for ``changes`` and, with ``sync_processor``, sync the customer's Stripe
    subscriptions to them (a ``no_billing_changes`` change leaves Stripe as it is: billing/no_billing.py)."""
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
    if mirror is not None and sync_processor:
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
    no_billing: bool = False
    """``no_billing_changes``: the change is made without billing it (billing/no_billing.py)."""
    discounts: DiscountedChange | None = None
    """The coupons as its quote applied them (the replaced instance's, then the request's ``discounts``),
    kept on the instance the attach leaves (billing/discounts.py)."""

    @property
    def entity_pk(self) -> int | None:
        return self.entity.pk if self.entity else None


def consumable_leftovers(conn: Connection, instance_pk: int) -> dict[str, tuple[float, float]]:
    """(usage, remaining) per consumable feature of an instance, read before it expires."""
    rows = consumable_sources(conn, instance_pk)
    out: dict[str, tuple[float, float]] = {}
    for row in rows:
        start = float(row.allowance) + float(row.adjustment) + float(row.prepaid)
        usage, remaining = out.get(row.feature_id, (0.0, 0.0))
        out[row.feature_id] = (usage + start - float(row.balance), remaining + max(0.0, float(row.balance)))
    return out


def carry_over(
    conn: Connection,
    customer_pk: int,
    entity_pk: int | None,
    new_pk: int,
    leftovers: dict[str, tuple[float, float]],
    now: int,
    usages: AttachCarryOverBalances | None,
    balances: AttachCarryOverBalances | None = None,
) -> None:
    """``carry_over_usages`` deducts the old usage (``leftovers``, see :func:`consumable_leftovers`) from
    the new instance's grant; ``carry_over_balances`` keeps the old remaining as a one-off balance that
    expires at the new plan's next reset (consumable features only; ``feature_ids`` narrows either)."""
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
            and (usages.feature_ids is None or feature_id in usages.feature_ids)
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
                    "customer_pk": customer_pk,
                    "entity_pk": entity_pk,
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
        _keep_discounts(state, quote, current.pk)
        return changes
    if quote.kind is ChangeKind.DOWNGRADE or quote.scheduled:
        # A downgrade at the period end, or a plan asked to start later (``starts_at``): the plan it
        # replaces ends then, unless it already ends before.
        if not plan.add_on and not plan.is_one_off:
            changes += expire_scheduled_in_group(conn, cat, state.instances, plan.group, state.entity_pk)
        if current is not None and (current.expires_at is None or current.expires_at >= quote.starts_at):
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
        _set_end(conn, state.customer.pk, new_pk, quote.ends_at)
        changes.append(change(conn, "scheduled", new_pk))
        _keep_discounts(state, quote, new_pk)
        if created is not None:
            created.append(new_pk)
        return changes
    carried: ExpiredState | None = None
    leftovers: dict[str, tuple[float, float]] = {}
    if quote.kind is ChangeKind.UPGRADE and current is not None:
        entity_id = state.entity.id if state.entity else None
        if not state.no_billing or plan.is_free:
            # Its pending next-cycle prorations went on the switch's invoice (attach.prepare_attach);
            # without billing, into a plan with no invoice to come, they are dropped (no_billing.py).
            take_pending_lines(conn, state.customer.pk, current.plan_id, entity_id)
        else:  # without billing: the next invoice of the plan replacing it takes them (no_billing.py)
            carry_pending_lines(conn, state.customer.pk, current.plan_id, plan.id, entity_id)
        leftovers = consumable_leftovers(conn, current.pk)
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
        backdated_from=quote.backdated_from,
    )
    save_billing_state(conn, new_pk, quote.anchor, quantities, now, custom)
    if leftovers:
        params = state.params
        carry_over(
            conn,
            state.customer.pk,
            state.entity_pk,
            new_pk,
            leftovers,
            now,
            params.carry_over_usages,
            params.carry_over_balances,
        )
    if trial is not None:
        record_trial(conn, state.customer, plan.id, now)
    if period is not None:
        schedule_maintenance(conn, state.customer.pk, period.end)
    _set_end(conn, state.customer.pk, new_pk, quote.ends_at)
    changes.append(change(conn, "activated", new_pk, one_off=plan.is_one_off))
    _keep_discounts(state, quote, new_pk)
    if created is not None:
        created.append(new_pk)
    return changes


def _keep_discounts(state: AttachState, quote: AttachQuote, instance_pk: int) -> None:
    if state.discounts is not None:
        record_discounts(
            state.ctx,
            state.conn,
            state.customer.pk,
            instance_pk,
            state.discounts,
            quote.due_now.currency,
            state.now,
        )


def _set_end(conn: Connection, customer_pk: int, instance_pk: int, ends_at: int | None) -> None:
    """``ends_at``: the new instance expires then, without being cancelled (Autumn's ``canceled: false``);
    the renewals bill the period it ends in only up to it (:mod:`.renewals`)."""
    if ends_at is not None:
        set_cancellation(conn, instance_pk, None, ends_at)
        schedule_maintenance(conn, customer_pk, ends_at)


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


def charge_draft(
    processor: PaymentProcessor,
    conn: Connection,
    customer: CustomerRow,
    draft: InvoiceDraft,
    reason: str,
    now: int,
    base_url: str,
    entity: EntityRow | None = None,
    metadata: dict[str, str] | None = None,
) -> ChargeOutcome | None:
    """Invoice ``draft`` unless it has no lines (free changes create no invoice); ``metadata``: the
    caller's keys for the processor's invoice."""
    if not draft.lines:
        return None
    return processor.charge(
        conn,
        customer_ref(customer),
        draft,
        reason,
        now,
        base_url,
        entity_id=entity.id if entity else None,
        metadata=metadata,
    )


def carries(carry: AttachCarryOverBalances, feature_id: str | None) -> bool:
    """Whether ``carry_over_usages`` carries ``feature_id``'s usage onto what replaces the plan."""
    ids = carry.feature_ids  # left out: every consumable feature; [] none
    return carry.enabled and feature_id is not None and (ids is None or feature_id in ids)


def without_carried_usage(draft: InvoiceDraft, plan_id: str, carry: AttachCarryOverBalances) -> InvoiceDraft:
    """The switch's invoice without the outgoing version's overage of features whose usage carries over:
    that usage is billed with the new version's, at its renewal, not twice."""
    return InvoiceDraft(
        tuple(
            line
            for line in draft.lines
            if not (
                line.kind is LineKind.USAGE and line.plan_id == plan_id and carries(carry, line.feature_id)
            )
        ),
        draft.currency,
    )
