"""Paid seats: units of a priced continuous feature added or removed are billed (§6.2).

Seats change two ways, billed alike (Autumn runs both through one allowance adjustment:
``server/src/internal/balances/track/trackUtils/runDeductionTx.ts`` and the entity handlers both call
``server/src/trigger/adjustAllowance.ts``):

* creating or deleting an entity uses or gives back one unit at customer level (the core does that and
  calls the ``seat_billing`` hook installed here);
* ``balances.track`` on the feature, positive or negative (the track watcher calls :func:`bill_seat_changes`).

When the units land on a plan instance whose item for the feature has a usage-based recurring price, the
units in use beyond ``included`` change, and the difference is billed per the item's proration
(:func:`reference_server.engine.billing.seats.quote_seat_change`). One change that moves several plans'
seats is charged as **one** invoice with every plan's lines, so a failed payment leaves nothing collected
(``*_next_cycle`` lines wait on each plan's own pending draft). An unpaid charge raises
:class:`~reference_server.service.entities.SeatChargeFailed` and the change does not happen. Prepaid
seats need nothing here: the purchased quantity is the balance, and the core refuses a unit beyond it.

Paid seats released with ``on_decrease: none`` (nothing credited) are kept per plan instance and feature
as *replaceables* until their period ends (Autumn: ``handleProratedDowngrade`` creates them,
``handleProratedUpgrade`` uses them first, the new period's invoice deletes them): re-adding seats in the
same period reuses them for free. The renewal bills the seats in use, so they simply lapse at the period
end. Unlike Autumn, the balance shows the seats in use (Autumn keeps the released units counted in the
balance until the period ends); the replaceables are billing state only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from sqlalchemy import Connection

from reference_server.billing.convert import engine_subscription
from reference_server.billing.plan_changes import charge_draft
from reference_server.engine.billing.invoice import InvoiceDraft, LineItem
from reference_server.engine.billing.model import PlanItem, Subscription
from reference_server.engine.billing.money import to_decimal
from reference_server.engine.billing.periods import period_at
from reference_server.engine.billing.seats import quote_seat_change, seat_levels
from reference_server.errors import ApiError
from reference_server.processors.contract import ChargeOutcome, PaymentProcessor
from reference_server.service.context import Ctx
from reference_server.service.entities import SeatChargeFailed
from reference_server.service.subscriptions import load_instances, with_entity_usage
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.instance_billing import (
    delete_replaceable_seats,
    replaceable_seats,
    save_replaceable_seats,
)
from reference_server.store.invoices import restore_voided, snapshot_invoice
from reference_server.store.pending_lines import add_pending_lines
from reference_server.store.plan_instances import continuous_usage_sources
from reference_server.store.subjects import CustomerRow, EntityRow, entity_by_pk

SeatBilling = Callable[
    [Ctx, Connection, Catalog, CustomerRow, str, Mapping[int, tuple[float, float]], int], None
]

# feature id -> plan instance pk -> (balance before, balance after) of its source of that feature
SeatChanges = Mapping[str, Mapping[int, tuple[float, float]]]


def _usage(included: Decimal, quantity: int, balance: float) -> Decimal:
    """Units in use of a usage-based source: its included units plus what went below zero."""
    return included * quantity + max(Decimal(0), -to_decimal(float(balance)))


def instance_seat_usage(conn: Connection, instance_pk: int) -> dict[str, Decimal]:
    """Units in use of each continuous feature of a plan instance (what a successor takes over)."""
    rows = continuous_usage_sources(conn, instance_pk)
    usage: dict[str, Decimal] = {}
    for r in rows:
        granted = sum((to_decimal(float(v)) for v in (r.allowance, r.adjustment, r.prepaid)), Decimal(0))
        usage[r.feature_id] = usage.get(r.feature_id, Decimal(0)) + granted - to_decimal(float(r.balance))
    return usage


def starting_seat_usage(
    conn: Connection,
    cat: Catalog,
    customer_pk: int,
    plan: Plan,
    entity: EntityRow | None,
    replaces: int | None,
) -> dict[str, Decimal]:
    """The units in use a plan starts with: carried from the instance it replaces, plus (customer level)
    the customer's entities of its other continuous features, as the plan's balances will be created."""
    carried = instance_seat_usage(conn, replaces) if replaces is not None else {}
    if entity is not None:
        return carried
    floats = with_entity_usage(conn, cat, customer_pk, plan, {k: float(v) for k, v in carried.items()})
    return {fid: carried[fid] if fid in carried else to_decimal(u) for fid, u in floats.items()}


def _charge_failed(conn: Connection, feature_id: str, outcome: ChargeOutcome) -> SeatChargeFailed:
    """The 402 for an unpaid seat charge; its invoice is written back voided after the rollback.

    Off-session there is nobody to authenticate a charge, so "requires action" fails like a decline
    (Autumn voids the invoice and answers ``invoice_payment_failed`` with the required action's reason).
    """
    assert outcome.invoice is not None
    snapshot = snapshot_invoice(conn, outcome.invoice.pk)
    action = outcome.required_action()
    reason = action["reason"] if action else "the payment failed"
    message = (
        f"Failed to pay invoice {outcome.invoice.id} for feature {feature_id}: {reason}. "
        "The invoice was voided and nothing changed; check the customer's payment method and retry"
    )
    return SeatChargeFailed(message, lambda c: restore_voided(c, snapshot))


def _entity(conn: Connection, entity_pk: int | None) -> EntityRow | None:
    if entity_pk is None:
        return None
    return entity_by_pk(conn, entity_pk)


def _replaceables(conn: Connection, instance_pk: int, feature_id: str, now: int) -> Decimal:
    """Released paid seats of the instance's feature still reusable at ``now`` (their period not over)."""
    row = replaceable_seats(conn, instance_pk, feature_id)
    if row is None or int(row.period_end) <= now:
        return Decimal(0)
    return Decimal(row.units)


def _keep_replaceables(
    conn: Connection,
    instance_pk: int,
    feature_id: str,
    units: Decimal,
    subscription: Subscription,
    item: PlanItem,
    now: int,
) -> None:
    if units <= 0:
        delete_replaceable_seats(conn, instance_pk, feature_id)
        return
    assert item.price is not None
    period_end = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count).end
    save_replaceable_seats(conn, instance_pk, feature_id, f"{units.normalize():f}", period_end, now)


def bill_seat_changes(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    changes: SeatChanges,
    now: int,
    processor: PaymentProcessor,
    base_url: str,
) -> None:
    """Invoice the seat changes of every plan instance they touched, all due lines on one invoice.

    ``*_next_cycle`` lines wait on each instance's own pending draft (its renewal takes them). Raises
    :class:`SeatChargeFailed` when the one charge is not paid; the caller rolls the change back.
    """
    due: list[LineItem] = []
    currencies: set[str] = set()
    scopes: set[int | None] = set()
    for inst in load_instances(conn, customer.pk):
        moved = [(fid, per[inst.pk]) for fid, per in changes.items() if inst.pk in per]
        if not moved or inst.status != "active":
            continue
        subscription = engine_subscription(conn, cat, inst)
        if subscription is None:
            continue
        deferred: list[LineItem] = []
        for feature_id, (before, after) in moved:
            item = subscription.plan.item_for(feature_id)
            if item is None:
                continue
            kept = _replaceables(conn, inst.pk, feature_id, now)
            levels = seat_levels(
                item,
                _usage(item.included, subscription.quantity, before),
                _usage(item.included, subscription.quantity, after),
                kept,
                subscription.trialing_at(now),
            )
            if levels.replaceables != kept:
                _keep_replaceables(conn, inst.pk, feature_id, levels.replaceables, subscription, item, now)
            quote = quote_seat_change(subscription, feature_id, levels.old_paid, levels.new_paid, now)
            due += quote.due_now.lines
            deferred += quote.deferred.lines
            if quote.due_now.lines:
                currencies.add(subscription.plan.currency)
                scopes.add(inst.entity_pk)
        entity = _entity(conn, inst.entity_pk)
        add_pending_lines(
            conn,
            customer.pk,
            InvoiceDraft(tuple(deferred), subscription.plan.currency),
            processor.name,
            now,
            base_url,
            entity.id if entity else None,
        )
    if not due:
        return
    if len(currencies) > 1:
        raise ApiError(400, "currency_mismatch", "The seat change moves plans billed in different currencies")
    entity = _entity(conn, scopes.pop()) if len(scopes) == 1 else None
    draft = InvoiceDraft(tuple(due), currencies.pop())
    outcome = charge_draft(processor, conn, customer, draft, "seats", now, base_url, entity)
    if outcome is not None and not outcome.succeeded and outcome.invoice is not None:
        features = ", ".join(sorted({line.feature_id or "" for line in due}))
        raise _charge_failed(conn, features, outcome)


def make_seat_billing(
    processor_of: Callable[[Connection, int], PaymentProcessor], base_url: Callable[[], str]
) -> SeatBilling:
    """The hook installed as ``AppState.billing.seat_billing`` (entities created or deleted).

    ``changes`` maps each plan instance whose source moved to its balance before and after.
    """

    def bill(
        ctx: Ctx,
        conn: Connection,
        cat: Catalog,
        customer: CustomerRow,
        feature_id: str,
        changes: Mapping[int, tuple[float, float]],
        now: int,
    ) -> None:
        processor = processor_of(conn, customer.pk)
        bill_seat_changes(conn, cat, customer, {feature_id: changes}, now, processor, base_url())

    return bill
