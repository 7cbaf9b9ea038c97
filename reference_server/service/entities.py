"""Entities (seats, workspaces): each one uses a unit of its non-consumable feature (§6)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import EntityJson, ListEntitiesResponseJson, SuccessResponseJson
from autumn_sdk._generated.models import (
    CreateEntityParams,
    CustomerData,
    DeleteEntityParams,
    EntityData,
    GetEntityParams,
    ListEntitiesParams,
    UpdateEntityParams,
)
from reference_server.engine.deduction import InsufficientBalance, Target, deduct, order_targets
from reference_server.engine.plan_controls import ControlsRecord
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import (
    ApiError,
    customer_not_found,
    entity_not_found,
    feature_not_found,
    invalid,
)
from reference_server.service.context import Ctx
from reference_server.service.customer_controls import controls_json, controls_part, merged_controls
from reference_server.service.customer_views import entity_subject_json, preload_page
from reference_server.service.customers import create_customer_row
from reference_server.service.extra_fields import extra_field
from reference_server.service.maintenance import catch_up, needs_maintenance, require_customer
from reference_server.service.usage import controls_for
from reference_server.service.usage_limits import check_limits
from reference_server.store import customers as customers_repo
from reference_server.store import entities as entities_repo
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    entity_from_row,
    get_customer,
    get_entity,
    load_sources,
    save_sources,
)


def _use_seats(
    conn: Any, customer: Any, feature_id: str, amount: float, now: int
) -> dict[int, tuple[float, float]]:
    """Count ``amount`` entities as usage of the customer-level sources of their feature.

    Returns, per plan instance whose source moved, its balance before and after (for paid seats).
    """
    sources = load_sources(conn, customer.pk, {feature_id})
    apply_due_resets(sources, now)
    own = [s for s in sources if s.entity_pk is None and not s.is_flag and s.is_live(now)]
    if not own:
        return {}
    before = {s.pk: s.balance for s in own}
    priced = any(s.price for s in own)
    ordered = order_targets([Target(s, 1.0, True) for s in own], None)
    controls = {feature_id: controls_for(customer, None, feature_id)}
    try:
        deduct(ordered, amount, controls, now, "reject" if priced and amount > 0 else "overflow", feature_id)
    except InsufficientBalance as exc:
        raise ApiError(
            400,
            "feature_limit_reached",
            f"Cannot create {int(amount)} entities: the limit for feature {feature_id} has been reached",
        ) from exc
    save_sources(conn, sources)
    return {
        s.customer_plan_pk: (before[s.pk], s.balance)
        for s in own
        if s.customer_plan_pk is not None and s.balance != before[s.pk]
    }


class SeatChargeFailed(ApiError):
    """The seat charge of an entity change was not paid (declined, or it needs the customer present).

    Raised by the paid-seat hook; the seat change is rolled back and ``keep_record`` writes the
    voided invoice back so the failed attempt stays visible (Autumn: 402 ``invoice_payment_failed``).
    """

    def __init__(self, message: str, keep_record: Callable[[Connection], object]) -> None:
        super().__init__(402, "invoice_payment_failed", message)
        self.keep_record = keep_record


T = TypeVar("T")


def with_seat_charge(ctx: Ctx, change: Callable[[], T]) -> T:
    """Run ``change`` (its own write transaction) and keep a failed seat charge's voided invoice.

    When the seat charge fails, ``change``'s transaction has rolled back (usage, event, idempotency key,
    invoice); the voided invoice alone is written back in a new transaction and the 402 is answered.
    ``balances.track`` and ``entities.delete`` use it; ``entities.create`` keeps the record in its own
    transaction (:func:`_change_seats`) because that transaction may also create the customer.
    """
    try:
        return change()
    except SeatChargeFailed as failure:
        with ctx.db.write() as conn:
            failure.keep_record(conn)
        raise


def _bill_seats(
    ctx: Ctx, conn: Any, customer: Any, feature_id: str, changes: dict[int, tuple[float, float]], now: int
) -> None:
    """Paid billing invoices seats beyond the included ones (per the item's proration), if installed."""
    hook = ctx.state.billing.seat_billing
    if hook is not None and changes:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        hook(ctx, conn, cat, customer, feature_id, changes, now)


def _change_seats(
    ctx: Ctx, conn: Connection, customer: Any, feature_id: str, amount: float, now: int
) -> SeatChargeFailed | None:
    """Use (or give back) seats and bill them as one all-or-nothing step.

    When the seat charge fails, the usage change and its invoice are rolled back to a savepoint and
    only the voided invoice is written back; the caller then changes nothing else and answers the error
    after committing that record.
    """
    try:
        with conn.begin_nested():
            _bill_seats(
                ctx, conn, customer, feature_id, _use_seats(conn, customer, feature_id, amount, now), now
            )
    except SeatChargeFailed as failure:
        failure.keep_record(conn)
        return failure
    return None


def create_entity(ctx: Ctx, params: CreateEntityParams) -> EntityJson:
    """The entity, its customer created from ``customer_data`` first when there is none yet."""
    customer_id = params.customer_id
    entity_id = params.entity_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        _seat_feature(cat, params.feature_id)
        ensure_customer(ctx, conn, cat, customer_id, params.customer_data or CustomerData())
        customer, now = require_customer(ctx, conn, cat, customer_id, lock=True)
        if get_entity(conn, customer.pk, entity_id) is not None:
            raise ApiError(409, "entity_already_exists", f"Entity {entity_id} already exists")
        failure = _change_seats(ctx, conn, customer, params.feature_id, 1.0, now)
        if failure is None:
            entity = _insert_entity(conn, customer, params, now)
            return entity_subject_json(ctx, conn, cat, customer, entity, now)
    raise failure


def ensure_customer(ctx: Ctx, conn: Connection, cat: Catalog, customer_id: str, data: CustomerData) -> None:
    """Create customer ``customer_id`` from ``data`` unless it exists (a concurrent creation wins)."""
    if get_customer(conn, ctx.tenant, customer_id, lock=True) is None:
        try:
            with conn.begin_nested():
                create_customer_row(ctx, conn, cat, data, customer_id)
        except IntegrityError:
            pass


def ensure_entity(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity_id: str,
    data: EntityData,
    now: int,
    *,
    bill_seats: bool = True,
) -> None:
    """Create entity ``entity_id`` from a billing request's ``entity_data`` unless it exists, inside the
    caller's transaction: its seat is used and billed as ``entities.create`` does, and a failed seat
    charge raises :class:`SeatChargeFailed`, rolling the whole call back (nothing was charged).
    ``bill_seats=False`` (a preview, rolled back afterwards) uses the seat without charging for it."""
    if get_entity(conn, customer.pk, entity_id) is not None:
        return
    _seat_feature(cat, data.feature_id)
    with conn.begin_nested():
        used = _use_seats(conn, customer, data.feature_id, 1.0, now)
        if bill_seats:
            _bill_seats(ctx, conn, customer, data.feature_id, used, now)
    params = CreateEntityParams(
        customer_id=str(customer.id),
        entity_id=entity_id,
        feature_id=data.feature_id,
        name=data.name,
        billing_controls=data.billing_controls,
    )
    _insert_entity(conn, customer, params, now)


def _seat_feature(cat: Catalog, feature_id: str) -> None:
    """Refuse an entity feature that is not a non-consumable (continuous) metered one."""
    feature = cat.features.get(feature_id)
    if feature is None:
        raise feature_not_found(feature_id)
    if feature.type != "metered" or feature.consumable:
        raise invalid(f"Feature {feature_id} must be a non-consumable (continuous) metered feature")


def checked_controls(raw: Mapping[str, Any]) -> ControlsRecord:
    """An entity's controls as stored, its usage limits validated."""
    controls = controls_json(raw, entity=True)
    check_limits(controls)
    return controls


def _insert_entity(
    conn: Connection, customer: CustomerRow, params: CreateEntityParams, now: int
) -> EntityRow:
    """The entity row, once its seat (if any) is used and paid for."""
    return entities_repo.insert_entity(
        conn,
        customer.pk,
        entity_id=params.entity_id,
        name=params.name,
        feature_id=params.feature_id,
        billing_controls=checked_controls(controls_part(params.billing_controls)),
        created_at=now,
    )


def _load(
    ctx: Ctx, conn: Any, customer_id: str | None, entity_id: str, lock: bool
) -> tuple[Any, Any, Any, int]:
    """The catalogue, customer, entity and customer's time; without ``customer_id``, the entity's owner."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    if customer_id:
        customer, now = require_customer(ctx, conn, cat, customer_id, lock=lock)
        entity = get_entity(conn, customer.pk, entity_id)
    else:
        row = entities_repo.entity_with_owner(conn, ctx.tenant, entity_id)
        if row is None:
            raise entity_not_found(entity_id)
        customer, now = require_customer(ctx, conn, cat, row.cid, lock=lock)
        entity = get_entity(conn, customer.pk, entity_id)
    if entity is None:
        raise entity_not_found(entity_id)
    return cat, customer, entity, now


def get_entity_op(ctx: Ctx, params: GetEntityParams) -> EntityJson:
    """A read transaction, after any due maintenance of the customer (as customers.get).

    ``expand`` is not in the spec's request; it is read as sent (``invoices``)."""
    expand = set(extra_field(params, "expand") or [])
    for attempt in range(2):
        with ctx.db.read() as conn:
            cat, customer, entity, now = _load(ctx, conn, params.customer_id, params.entity_id, False)
            if attempt == 1 or not needs_maintenance(ctx, customer):
                return entity_subject_json(ctx, conn, cat, customer, entity, now, expand)
        catch_up(ctx, customer.id or "")
    raise AssertionError("unreachable: the second attempt always answers")


def list_entities_op(ctx: Ctx, params: ListEntitiesParams) -> ListEntitiesResponseJson:
    """A read transaction, each entity as ``entities.get`` answers it: when a customer on the page has
    maintenance due (renewals, expiries, scheduled starts), it is run once per such customer in its own
    write transaction (as ``entities.get`` and ``customers.get`` run it) and the page is read again."""
    limit = params.limit or 50
    if not 1 <= limit <= 5000:
        raise invalid("limit: must be between 1 and 5000", "invalid_inputs")
    cursor = params.start_cursor
    start = int(cursor) if cursor is not None and cursor.isdigit() else 0
    if params.processors and "stripe" not in params.processors:
        return {"list": [], "next_cursor": None}  # no customer here is billed by RevenueCat or Vercel
    for attempt in range(2):
        with ctx.db.read() as conn:
            due, answer = _entity_page(ctx, conn, params, start, limit, check_due=attempt == 0)
        if answer is not None:
            return answer
        for customer_id in due:
            catch_up(ctx, customer_id)
    raise AssertionError("unreachable: the second attempt always answers")


def _entity_page(
    ctx: Ctx, conn: Connection, params: ListEntitiesParams, start: int, limit: int, *, check_due: bool
) -> tuple[list[str], ListEntitiesResponseJson | None]:
    """The page of entities after ``start``; with ``check_due``, instead the ids of its customers that
    have maintenance due (and no answer) when there are any."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer_pk = None
    if params.customer_id:
        customer = get_customer(conn, ctx.tenant, params.customer_id)
        if customer is None:
            raise customer_not_found(params.customer_id)
        customer_pk = customer.pk
    plan_pks = (
        [
            [p.pk for p in cat.versions(f.id) if not f.versions or p.version in f.versions]
            for f in params.plans
        ]
        if params.plans
        else None
    )
    rows = entities_repo.entity_page(
        conn,
        ctx.tenant,
        after_pk=start,
        customer_pk=customer_pk,
        limit=limit,
        search=params.search or None,
        plan_pks=plan_pks,
        subscription_status=params.subscription_status or None,
        stripe_only=bool(params.processors),
    )
    page = rows[:limit]
    # A fixed number of queries for the whole page (its entities' customers, their sources and
    # plan instances, the past-due set, usage-limit windows) instead of a few per entity.
    pks = sorted({r.customer_pk for r in page})
    owners = customers_repo.customers_at(conn, pks)
    if check_due:
        due = [c.id for c in (owners[pk] for pk in pks) if c.id is not None and needs_maintenance(ctx, c)]
        if due:
            return due, None
    loaded = preload_page(ctx, conn, pks)
    out: list[EntityJson] = []
    for r in page:
        cust = owners[r.customer_pk]
        now = ctx.now(cust.clock_offset_ms)
        entity = entity_from_row(r)
        out.append(entity_subject_json(ctx, conn, cat, cust, entity, now, preloaded=loaded[cust.pk]))
    return [], {"list": out, "next_cursor": str(page[-1].pk) if len(rows) > limit else None}


def update_entity(ctx: Ctx, params: UpdateEntityParams) -> EntityJson:
    """Merge the sent ``billing_controls`` over the entity's; ``name`` (not in the spec's request)
    is read as sent."""
    name = extra_field(params, "name")
    with ctx.db.write() as conn:
        cat, customer, entity, now = _load(ctx, conn, params.customer_id, params.entity_id, True)
        if params.billing_controls is not None:
            sent = controls_part(params.billing_controls)
            merged = checked_controls(merged_controls(entity.billing_controls, sent, entity=True))
            entities_repo.update_entity(conn, entity.pk, {"billing_controls": merged})
            entity.billing_controls = merged
        if name is not None:
            entities_repo.update_entity(conn, entity.pk, {"name": name})
            entity.name = name
        return entity_subject_json(ctx, conn, cat, customer, entity, now)


def delete_entity(ctx: Ctx, params: DeleteEntityParams) -> SuccessResponseJson:
    def change() -> SuccessResponseJson:
        with ctx.db.write() as conn:
            _cat, customer, entity, now = _load(ctx, conn, params.customer_id, params.entity_id, True)
            if entity.feature_id:
                changes = _use_seats(conn, customer, entity.feature_id, -1.0, now)
                _bill_seats(ctx, conn, customer, entity.feature_id, changes, now)
            entities_repo.delete_entity(conn, entity.pk)
            mirror = ctx.state.billing.subscription_mirror
            if mirror is not None:  # the entity's Stripe subscriptions canceled once this commits
                mirror.after_change(conn, customer.pk)
            return {"success": True}

    return with_seat_charge(ctx, change)
