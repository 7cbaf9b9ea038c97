"""Due maintenance of a customer (plan expiries, scheduled starts, expired locks, paid billing's
renewals), and loading a customer or subject with it applied first.

Above plan instances (:mod:`.subscriptions`) and lock settlement (:mod:`.lock_settlement`), below
every operation that reads or writes a customer; it is what keeps those imports pointing one way.
"""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.engine.entitlements import Source
from reference_server.errors import customer_not_found
from reference_server.service.context import Ctx
from reference_server.service.lock_settlement import release_expired_locks
from reference_server.service.subscriptions import expire_instance, load_instances, start_scheduled
from reference_server.store import plan_instances
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import CustomerRow, get_customer, load_sources, load_subject


def run_maintenance(ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int) -> None:
    """Apply everything that became due: plan expiries, scheduled activations, expired locks."""
    due = customer.maintenance_due_at
    if due is None or due > now:
        return
    billing = ctx.state.billing.maintenance
    if billing is not None:  # paid billing: renewals, trial ends, period-end switches (billing.renewals)
        billing(ctx, conn, cat, customer, now)
    instances = load_instances(conn, customer.pk)
    # Expire ended instances first, then start scheduled ones, in time order.
    for inst in sorted(instances, key=lambda i: i.expires_at or 0):
        if inst.status == "active" and inst.expires_at is not None and inst.expires_at <= now:
            expire_instance(conn, inst.pk, now)
    for inst in sorted(instances, key=lambda i: i.starts_at or 0):
        if inst.status == "scheduled" and inst.starts_at is not None and inst.starts_at <= now:
            plan = cat.plans_by_pk.get(inst.plan_pk)
            if plan is None:  # its plan was deleted: nothing to give balances from
                plan_instances.set_status(conn, inst.pk, "active")
            else:
                start_scheduled(conn, cat, inst, plan, inst.starts_at)
    release_expired_locks(ctx, conn, customer, now)
    next_due = plan_instances.next_due(conn, customer.pk)
    plan_instances.set_maintenance_due(conn, customer.pk, next_due)
    customer.maintenance_due_at = next_due


def require_customer(
    ctx: Ctx, conn: Connection, cat: Catalog, customer_id: str, *, lock: bool = False
) -> tuple[CustomerRow, int]:
    """The customer (locked for writing when asked) after due maintenance, and its current time."""
    customer = get_customer(conn, ctx.tenant, customer_id, lock=lock)
    if customer is None:
        raise customer_not_found(customer_id)
    now = ctx.now(customer.clock_offset_ms)
    if lock and customer.maintenance_due_at is not None and customer.maintenance_due_at <= now:
        run_maintenance(ctx, conn, cat, customer, now)
    return customer, now


def needs_maintenance(ctx: Ctx, customer: CustomerRow) -> bool:
    due = customer.maintenance_due_at
    return due is not None and due <= ctx.now(customer.clock_offset_ms)


def catch_up(ctx: Ctx, customer_id: str) -> None:
    """Run due maintenance in its own write transaction (used before read-only paths)."""
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        require_customer(ctx, conn, cat, customer_id, lock=True)


def load_checked_subject(
    ctx: Ctx, conn: Connection, cat: Catalog, customer_id: str, ids: set[str], *, lock: bool
) -> tuple[CustomerRow, list[Source], int]:
    """Customer + sources in one query; on write paths, due maintenance first (then a reload)."""
    loaded = load_subject(conn, ctx.tenant, customer_id, ids, lock=lock)
    if loaded is None:
        raise customer_not_found(customer_id)
    customer, sources = loaded
    now = ctx.now(customer.clock_offset_ms)
    if lock and customer.maintenance_due_at is not None and customer.maintenance_due_at <= now:
        run_maintenance(ctx, conn, cat, customer, now)
        sources = load_sources(conn, customer.pk, ids)
    return customer, sources, now
