"""Plan instances on a customer or entity: activation, expiry, defaults and scheduled transitions.

A plan instance (``customer_plans`` row) owns one balance source per metered item and one flag
per boolean item.  These functions are shared with the paid-billing code, which decides *when*
to call them (after payment, at period end); this module decides *what* the balances become.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from reference_server.engine.intervals import FIXED_MS, add_months, next_boundary_after
from reference_server.store import plan_instances
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.licenses import end_seats_of
from reference_server.store.plan_records import PlanItemRecord
from reference_server.store.subjects import CustomerRow, EntityRow, insert_source, load_sources


@dataclass
class Instance:
    pk: int
    customer_pk: int
    entity_pk: int | None
    plan_pk: int
    plan_id: str
    subscription_id: str | None
    status: str
    quantity: float
    started_at: int
    starts_at: int | None
    canceled_at: int | None
    expires_at: int | None
    trial_ends_at: int | None
    current_period_start: int | None
    current_period_end: int | None
    created_at: int

    @property
    def public_id(self) -> str:
        return self.subscription_id or f"sub_{self.pk}"


def expire_scheduled_switches(
    conn: Connection, cat: Catalog, instances: list[Instance], group: str, entity_pk: int | None
) -> list[Instance]:
    """Drop the plan switch scheduled in ``group`` for this scope (customer or entity).

    An immediate change, a new downgrade or an uncancel replaces it; add-ons are never switches.
    Returns the instances it expired.
    """
    expired = []
    for inst in instances:
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if (
            inst.status == "scheduled"
            and inst.entity_pk == entity_pk
            and plan is not None
            and plan.group == group
            and not plan.add_on
        ):
            plan_instances.set_status(conn, inst.pk, "expired")
            expired.append(inst)
    return expired


def instance_from_row(r: Any) -> Instance:
    return Instance(**{k: getattr(r, k) for k in Instance.__dataclass_fields__})


def load_instances(conn: Connection, customer_pk: int, *, include_expired: bool = False) -> list[Instance]:
    rows = plan_instances.instance_rows(conn, customer_pk, include_expired=include_expired)
    return [instance_from_row(r) for r in rows]


def schedule_maintenance(conn: Connection, customer_pk: int, at: int) -> None:
    """Remember that something (a plan transition, a lock expiry) is due for this customer at ``at``."""
    plan_instances.schedule_maintenance(conn, customer_pk, at)


def _item_interval(item: PlanItemRecord, continuous: bool) -> tuple[str | None, int]:
    if continuous:
        return None, 1
    reset = item.get("reset")
    if reset and reset.get("interval") not in (None, "one_off"):
        return str(reset["interval"]), int(reset.get("interval_count") or 1)
    return "one_off", 1


def create_item_sources(
    conn: Connection,
    cat: Catalog,
    *,
    customer_pk: int,
    entity_pk: int | None,
    instance_pk: int | None,
    plan: Plan,
    now: int,
    anchor_at: int,
    quantity: float = 1,
    feature_quantities: dict[str, float] | None = None,
    carried_usage: dict[str, float] | None = None,
    next_reset_overrides: dict[tuple[str, str | None], int] | None = None,
    expires_at: int | None = None,
) -> None:
    """Insert the balance sources and flags of one plan instance."""
    feature_quantities = feature_quantities or {}
    carried_usage = dict(carried_usage or {})
    for item in plan.items:
        feature = cat.features.get(item["feature_id"])
        if feature is None:
            continue
        if feature.type == "boolean":
            insert_source(
                conn,
                {
                    "customer_pk": customer_pk,
                    "entity_pk": entity_pk,
                    "customer_plan_pk": instance_pk,
                    "feature_id": feature.id,
                    "plan_id": plan.id,
                    "is_flag": True,
                    "created_at": now,
                    "is_addon": plan.add_on,
                    "expires_at": expires_at,
                },
            )
            continue
        continuous = feature.type == "metered" and not feature.consumable
        interval, count = _item_interval(item, continuous)
        price = item.get("price")
        allowance = float(item.get("included") or 0) * quantity
        prepaid = 0.0
        if price and price.get("billing_method") == "prepaid":
            wanted = feature_quantities.get(feature.id)
            if wanted is not None:
                units = float(price.get("billing_units") or 1)
                packs = -(-max(0.0, wanted - allowance) // units)
                prepaid = packs * units
        used = carried_usage.pop(feature.id, 0.0) if continuous else 0.0
        next_reset = None
        if interval not in (None, "one_off"):
            assert interval is not None
            override = (next_reset_overrides or {}).get((feature.id, interval))
            next_reset = override or next_boundary_after(anchor_at, interval, count, now)
        insert_source(
            conn,
            {
                "customer_pk": customer_pk,
                "entity_pk": entity_pk,
                "customer_plan_pk": instance_pk,
                "feature_id": feature.id,
                "plan_id": plan.id,
                "allowance": allowance,
                "prepaid": prepaid,
                "balance": allowance + prepaid - used,
                "unlimited": bool(item.get("unlimited")),
                "usage_allowed": bool(price and price.get("billing_method") == "usage_based"),
                "max_purchase": price.get("max_purchase") if price else None,
                "interval": interval,
                "interval_count": count,
                "anchor_at": anchor_at,
                "next_reset_at": next_reset,
                "expires_at": expires_at,
                "rollover_config": item.get("rollover"),
                "price": price,
                "is_addon": plan.add_on,
                "continuous": continuous,
                "created_at": now,
            },
        )


def entity_usage(conn: Connection, customer_pk: int, feature_id: str) -> float:
    return float(plan_instances.entity_count(conn, customer_pk, feature_id))


def with_entity_usage(
    conn: Connection, cat: Catalog, customer_pk: int, plan: Plan, carried: dict[str, float] | None = None
) -> dict[str, float]:
    """``carried`` usage plus, for each continuous item not in it, the customer's entities of that
    feature: a customer-level plan starts with its seats already in use (§5.2.6)."""
    usage = dict(carried or {})
    for item in plan.items:
        f = cat.features.get(item["feature_id"])
        if f is not None and f.type == "metered" and not f.consumable and f.id not in usage:
            usage[f.id] = entity_usage(conn, customer_pk, f.id)
    return usage


def activate_plan(
    conn: Connection,
    cat: Catalog,
    *,
    customer: CustomerRow,
    entity: EntityRow | None,
    plan: Plan,
    now: int,
    status: str = "active",
    starts_at: int | None = None,
    subscription_id: str | None = None,
    quantity: float = 1,
    feature_quantities: dict[str, float] | None = None,
    carried_usage: dict[str, float] | None = None,
    next_reset_overrides: dict[tuple[str, str | None], int] | None = None,
    trial_ends_at: int | None = None,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    backdated_from: int | None = None,
) -> int:
    """Create a plan instance; an ``active`` one gets its balances now, a ``scheduled`` one later.

    ``backdated_from``: an active instance started in the past (its start and its balances' reset anchor)."""
    instance_pk = plan_instances.insert_instance(
        conn,
        {
            "customer_pk": customer.pk,
            "entity_pk": entity.pk if entity else None,
            "plan_pk": plan.pk,
            "plan_id": plan.id,
            "subscription_id": subscription_id,
            "status": status,
            "quantity": quantity,
            "started_at": starts_at if starts_at is not None else backdated_from or now,
            "starts_at": starts_at,
            "trial_ends_at": trial_ends_at,
            "current_period_start": current_period_start,
            "current_period_end": current_period_end,
            "created_at": now,
        },
    )
    if status == "scheduled":
        if starts_at is not None:
            schedule_maintenance(conn, customer.pk, starts_at)
        return instance_pk
    carried = dict(carried_usage or {})
    if entity is None:
        carried = with_entity_usage(conn, cat, customer.pk, plan, carried)
    create_item_sources(
        conn,
        cat,
        customer_pk=customer.pk,
        entity_pk=entity.pk if entity else None,
        instance_pk=instance_pk,
        plan=plan,
        now=now,
        anchor_at=backdated_from if backdated_from is not None else now,
        quantity=quantity,
        feature_quantities=feature_quantities,
        carried_usage=carried,
        next_reset_overrides=next_reset_overrides,
    )
    return instance_pk


def start_scheduled(
    conn: Connection,
    cat: Catalog,
    inst: Instance,
    plan: Plan,
    at: int,
    *,
    columns: dict[str, Any] | None = None,
    feature_quantities: dict[str, float] | None = None,
    carried_usage: dict[str, float] | None = None,
) -> None:
    """Start a scheduled instance at ``at``: mark it active (with ``columns``) and give it balances.

    The one activation both the core's maintenance and paid billing's boundaries use; paid billing
    bills the first period and sets the period columns before calling it.  A customer-level plan
    starts with its entities' seats in use, on top of the usage ``carried_usage`` hands over from the
    plan it replaces.
    """
    usage = dict(carried_usage or {})
    if inst.entity_pk is None:
        usage = with_entity_usage(conn, cat, inst.customer_pk, plan, usage)
    plan_instances.update_instance(conn, inst.pk, {"status": "active", "started_at": at, **(columns or {})})
    create_item_sources(
        conn,
        cat,
        customer_pk=inst.customer_pk,
        entity_pk=inst.entity_pk,
        instance_pk=inst.pk,
        plan=plan,
        now=at,
        anchor_at=at,
        quantity=inst.quantity,
        feature_quantities=feature_quantities,
        carried_usage=usage,
    )


@dataclass
class ExpiredState:
    """What a switched-out instance leaves behind for its successor."""

    continuous_usage: dict[str, float]
    next_resets: dict[tuple[str, str | None], int]


def expire_instance(conn: Connection, instance_pk: int, now: int) -> ExpiredState:
    """End a plan instance now: its balances disappear; continuous usage is handed to the successor."""
    row = plan_instances.instance_row(conn, instance_pk)
    state = ExpiredState({}, {})
    for s in load_sources(conn, row.customer_pk):
        if s.customer_plan_pk != instance_pk or s.is_flag:
            continue
        if s.continuous:
            state.continuous_usage[s.feature_id] = state.continuous_usage.get(s.feature_id, 0.0) + s.usage
        elif s.next_reset_at is not None and s.interval is not None:
            state.next_resets[(s.feature_id, s.interval)] = s.next_reset_at
    plan_instances.end_instance(
        conn, instance_pk, row.expires_at if row.expires_at and row.expires_at <= now else now
    )
    for seat_pk in end_seats_of(conn, instance_pk, now):  # license seats end with the plan giving them
        expire_instance(conn, seat_pk, now)
    return state


def default_plans(cat: Catalog) -> list[Plan]:
    """One auto_enable plan per group (a trial or paid candidate preferred within the group)."""
    by_group: dict[str, Plan] = {}
    for p in cat.plans.values():
        if not p.auto_enable or p.archived:
            continue
        current = by_group.get(p.group)
        if current is None or (current.is_free and not p.is_free):
            by_group[p.group] = p
    return list(by_group.values())


def trial_end(plan: Plan, now: int) -> int | None:
    trial = plan.free_trial
    if not trial or trial.get("card_required", True):
        return None
    length = int(trial.get("duration_length") or 0)
    kind = trial.get("duration_type") or "month"
    if kind == "day":
        return now + FIXED_MS["day"] * length
    return add_months(now, length * (12 if kind == "year" else 1))


def attach_defaults(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    now: int,
    entity: EntityRow | None = None,
    only_plan: Plan | None = None,
) -> None:
    """Give a new customer its default plans (billing-semantics §5.1)."""
    for plan in [only_plan] if only_plan is not None else default_plans(cat):
        ends = trial_end(plan, now)
        activate_plan(conn, cat, customer=customer, entity=entity, plan=plan, now=now, trial_ends_at=ends)
        if ends is not None:  # paid billing bills or reverts the trial when it ends
            schedule_maintenance(conn, customer.pk, ends)


def activate_group_default(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    group: str,
    now: int,
    carried: ExpiredState | None = None,
) -> None:
    """Re-enable the group's auto_enable plan when the main plan of the group ends."""
    for plan in default_plans(cat):
        if plan.group == group and not plan.add_on:
            activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=plan,
                now=now,
                carried_usage=carried.continuous_usage if carried else None,
            )
