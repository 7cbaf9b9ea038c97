"""Licenses: seat pools a plan offers, assigned to a customer's entities (Autumn's ``licenses.*``).

A plan's ``licenses`` links (``plans.create`` / ``plans.update``) offer another plan, the license
plan, ``included`` times.  A customer holding the parent plan has one pool per link; assigning a seat
to an entity (``licenses.attach``) provisions the license plan on that entity, so the entity gets the
license plan's features, and takes a seat; ``licenses.release`` ends the entity's plan instance and
gives the seat back.  When the parent plan ends, its seats end with it (at once, in
``expire_instance``; each license operation also converges stranded seats first, as Autumn does).
"""

from __future__ import annotations

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    ListLicenseAssignmentsResponseJson,
    ListLicensesResponseJson,
    SuccessResponseJson,
)
from autumn_sdk._generated.models import (
    AttachLicenseEntity,
    AttachLicenseParams,
    ListLicenseAssignmentsParams,
    ListLicensesParams,
    ReleaseLicenseParams,
)
from reference_server.errors import (
    entity_not_found,
    feature_not_found,
    invalid,
    plan_not_found,
)
from reference_server.service.context import Ctx
from reference_server.service.license_pools import customer_licenses
from reference_server.service.maintenance import require_customer
from reference_server.service.subscriptions import activate_plan, expire_instance
from reference_server.store import licenses as store
from reference_server.store.catalog import Catalog
from reference_server.store.entities import insert_entity
from reference_server.store.ids import new_id
from reference_server.store.subjects import CustomerRow, EntityRow, get_entity

# --- pools -----------------------------------------------------------------------------------------


def _reconcile(conn: Connection, customer_pk: int, now: int) -> None:
    """End the seats whose parent plan (or whose own plan instance) is no longer active."""
    for seat in store.stranded(conn, customer_pk):
        if seat.instance_pk is not None and seat.instance_active:
            expire_instance(conn, seat.instance_pk, now)
        ended = seat.ended_at if seat.ended_at is not None and seat.ended_at <= now else now
        store.end_assignment(conn, seat.assignment_pk, ended)


# --- operations ------------------------------------------------------------------------------------


def _target_pool(pools: list[store.Pool], license_plan_id: str) -> store.Pool:
    candidates = [p for p in pools if p.license_plan_id == license_plan_id and p.granted > 0]
    if not candidates:
        raise invalid(f"No plan on this customer offers license {license_plan_id}.")
    if len(candidates) > 1:
        raise invalid(f"Multiple plans offer license {license_plan_id}.")
    return candidates[0]


def _all_pools(conn: Connection, customer_pk: int) -> list[store.Pool]:
    """Every active pool of the customer, from customer-level and entity-level parents alike."""
    entity_pks: list[int | None] = [None, *sorted(store.active_parent_entity_pks(conn, customer_pk))]
    keyed: dict[tuple[int, str], store.Pool] = {}
    for entity_pk in entity_pks:
        for p in store.pools(conn, customer_pk, entity_pk):
            keyed[(p.parent_instance_pk, p.license_plan_id)] = p
    return list(keyed.values())


def _new_entity(
    conn: Connection, cat: Catalog, customer: CustomerRow, spec: AttachLicenseEntity, now: int
) -> EntityRow:
    """Create the entity of ``spec`` (its ``feature_id`` is set: :func:`attach_license` checks)."""
    feature_id = str(spec.feature_id)
    feature = cat.features.get(feature_id)
    if feature is None:
        raise feature_not_found(feature_id)
    return insert_entity(
        conn,
        customer.pk,
        entity_id=spec.entity_id,
        name=spec.name,
        feature_id=feature_id,
        billing_controls={},
        created_at=now,
    )


def attach_license(ctx: Ctx, params: AttachLicenseParams) -> SuccessResponseJson:
    """Assign a seat of the customer's pool of ``plan_id`` to each entity (unknown ones are created)."""
    license_plan_id = params.plan_id
    specs = params.entities
    if not specs:
        raise invalid("entities: must contain at least 1 item", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        _reconcile(conn, customer.pk, now)
        pool = _target_pool(_all_pools(conn, customer.pk), license_plan_id)
        license_plan = cat.plans.get(license_plan_id)
        if license_plan is None:
            raise invalid(f"No plan on this customer offers license {license_plan_id}.")
        if license_plan.archived:
            raise invalid(f"License plan {license_plan_id} is archived and cannot be assigned.")
        ids = [s.entity_id for s in specs]
        duplicate = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
        if duplicate is not None:
            raise invalid(f"Duplicate entity {duplicate} in entities.")
        existing = {i: get_entity(conn, customer.pk, i) for i in ids}
        missing = next((s for s in specs if existing[s.entity_id] is None and not s.feature_id), None)
        if missing is not None:
            raise invalid(f"Entity {missing.entity_id} does not exist. Pass feature_id to create it.")
        held = {
            a.entity_pk
            for a in store.assignments(conn, customer.pk, license_plan_id=license_plan_id)
            if a.parent_instance_pk == pool.parent_instance_pk
        }
        needed = [s for s in specs if (e := existing[s.entity_id]) is None or e.pk not in held]
        if pool.granted - pool.assigned < len(needed):
            raise invalid("No available licenses for this plan.")
        for spec in needed:
            entity = existing[spec.entity_id] or _new_entity(conn, cat, customer, spec, now)
            instance_pk = activate_plan(
                conn, cat, customer=customer, entity=entity, plan=license_plan, now=now
            )
            store.insert_assignment(
                conn,
                assignment_id=new_id("lic_asn"),
                customer_pk=customer.pk,
                entity_pk=entity.pk,
                parent_instance_pk=pool.parent_instance_pk,
                license_plan_id=license_plan_id,
                instance_pk=instance_pk,
                now=now,
            )
    return {"success": True}


def release_license(ctx: Ctx, params: ReleaseLicenseParams) -> SuccessResponseJson:
    """End each entity's seat (of ``license_plan_id`` when given) and return it to its pool."""
    entity_ids = params.entity_ids
    license_plan_id = params.license_plan_id
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        _reconcile(conn, customer.pk, now)
        found: list[EntityRow] = []
        for entity_id in entity_ids:
            entity = get_entity(conn, customer.pk, entity_id)
            if entity is None:
                raise entity_not_found(entity_id)
            found.append(entity)
        duplicate = next((i for n, i in enumerate(entity_ids) if i in entity_ids[:n]), None)
        if duplicate is not None:
            raise invalid(f"Duplicate entity {duplicate} in entity_ids.")
        releases: list[store.Assignment] = []
        for entity in found:
            held = store.assignments(
                conn, customer.pk, entity_pks=[entity.pk], license_plan_id=license_plan_id
            )
            name = entity.id or str(entity.pk)
            if not held:
                raise invalid(
                    f"Entity {name} has no license {license_plan_id} to release."
                    if license_plan_id
                    else f"Entity {name} has no license to release."
                )
            if len(held) > 1:
                raise invalid(
                    f"Entity {name} holds multiple assignments of license {license_plan_id}."
                    if license_plan_id
                    else f"Entity {name} holds multiple licenses. Provide license_plan_id."
                )
            releases.append(held[0])
        for seat in releases:
            if seat.instance_pk is not None and store.instance_status(conn, seat.instance_pk) == "active":
                expire_instance(conn, seat.instance_pk, now)
            store.end_assignment(conn, seat.pk, now)
    return {"success": True}


def list_licenses(ctx: Ctx, params: ListLicensesParams) -> ListLicensesResponseJson:
    """The customer's pools (with ``entity_id``: also those of plans attached to that entity)."""
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        entity_pk = None
        if params.entity_id is not None:
            entity = get_entity(conn, customer.pk, params.entity_id)
            if entity is None:
                raise entity_not_found(params.entity_id)
            entity_pk = entity.pk
        _reconcile(conn, customer.pk, now)
        return {"list": customer_licenses(conn, cat, customer.pk, entity_pk)}


def list_license_assignments(
    ctx: Ctx, params: ListLicenseAssignmentsParams
) -> ListLicenseAssignmentsResponseJson:
    """The customer's seat assignments, newest last; ``active`` (default true) keeps the live ones."""
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        entity_pks = None
        if params.entity_id is not None:
            entity = get_entity(conn, customer.pk, params.entity_id)
            if entity is None:
                raise entity_not_found(params.entity_id)
            entity_pks = [entity.pk]
        plan_id = params.plan_id
        if plan_id is not None and cat.plans.get(plan_id) is None:
            raise plan_not_found(plan_id)
        _reconcile(conn, customer.pk, now)
        rows = store.assignments(
            conn,
            customer.pk,
            entity_pks=entity_pks,
            license_plan_id=plan_id,
            active_only=params.active is not False,
        )
    return {
        "list": [
            {
                "id": a.id,
                "entity_id": a.entity_id or "",
                "license_plan_id": a.license_plan_id,
                "started_at": a.started_at,
                "ended_at": a.ended_at,
            }
            for a in rows
        ]
    }
