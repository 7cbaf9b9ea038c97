"""``check`` (billing-semantics §2): may the customer use a feature now, with its balance.

Hot path: a plain ``check`` runs in one read transaction and one query for the customer and the
sources of the feature and its credit systems; on PostgreSQL :func:`check_async` sends that query on
the event loop.  With ``send_event`` or ``lock`` the check also deducts, in one write transaction
that locks the customer (:func:`_check_and_deduct`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import CheckPreviewJson, CheckResponseJson
from autumn_sdk._generated.models import CheckLock, CheckParams
from reference_server.engine.balances import derive_flag
from reference_server.engine.check import metered_allowed
from reference_server.engine.deduction import DeductionResult, InsufficientBalance
from reference_server.engine.entitlements import Feature, Source, num, r10
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import feature_not_found, invalid
from reference_server.service.context import Ctx, KeyedCall
from reference_server.service.extra_fields import expands_feature, extra_field
from reference_server.service.lock_settlement import store_lock
from reference_server.service.maintenance import catch_up, load_checked_subject, needs_maintenance
from reference_server.service.plan_controls import PlanDefaults, plan_defaults
from reference_server.service.plans import product_json
from reference_server.service.subscriptions import load_instances
from reference_server.service.usage import (
    balance_of,
    controls_for,
    controls_map,
    deduct_feature,
    involved_feature_ids,
    record_event,
    resolve_subject,
)
from reference_server.service.usage_limits import Gate, armed
from reference_server.service.usage_limits import gate as usage_gate
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    save_sources,
    scoped,
    subject_from_rows,
    subject_query,
)


def _preview(
    cat: Catalog,
    conn: Connection,
    customer: CustomerRow,
    feature: Feature,
    has_balance: bool,
) -> CheckPreviewJson:
    owned = {i.plan_pk for i in load_instances(conn, customer.pk)}
    owned_ids = {cat.plans_by_pk[pk].id for pk in owned if pk in cat.plans_by_pk}
    containing = [
        p
        for p in cat.plans.values()
        if not p.archived and any(i["feature_id"] == feature.id for i in p.items)
    ]
    mains = [p for p in containing if not p.add_on and p.id not in owned_ids]
    addons = [p for p in containing if p.add_on and (p.is_one_off or p.id not in owned_ids)]
    products = mains + addons
    name = feature.name or feature.id
    if products:
        first = products[0]
        if first.free_trial:
            title = f"Start trial for {first.name}"
        elif first.add_on:
            title = f"Purchase {first.name}"
        else:
            title = f"Upgrade to {first.name}"
    else:
        title = "Feature Unavailable"
    target = products[0].name if products else "a plan that includes it"
    if has_balance:
        message = (
            f"You have reached the usage limit for {name.lower()}. "
            f"Please upgrade to {target} to continue using this feature."
        )
    else:
        message = (
            f"Your current plan does not include the {name} feature. "
            f"Please upgrade to {target} to use this feature."
        )
    return {
        "scenario": "usage_limit" if has_balance else "feature_flag",
        "title": title,
        "message": message,
        "feature_id": feature.id,
        "feature_name": name,
        "products": [product_json(p, cat) for p in products],
    }


def _evaluate(
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    required: float,
    customer: CustomerRow,
    entity: EntityRow | None,
    now: int,
    plans: PlanDefaults | None = None,
) -> tuple[Feature, float, bool]:
    """Which feature is evaluated (itself or a credit system), the converted requirement, and the decision."""

    def owns(f: Feature) -> bool:
        return any(s.feature_id == f.id and not s.is_flag and s.is_live(now) for s in subject)

    def allowed(f: Feature, req: float) -> bool:
        return metered_allowed(
            [s for s in subject if s.feature_id == f.id],
            req,
            controls_for(customer, entity, f.id, plans),
            now,
        )

    systems = cat.credit_systems_for.get(feature.id, [])
    if not systems:
        return feature, required, owns(feature) and allowed(feature, required)
    if owns(feature) and allowed(feature, required):
        return feature, required, True

    def conv(cs: Feature) -> float:
        return r10(required * (cs.credit_cost(feature.id) or 0.0))

    owned = [cs for cs in systems if owns(cs)]
    for cs in owned:
        if allowed(cs, conv(cs)):
            return cs, conv(cs), True
    if owned:
        return owned[0], conv(owned[0]), False
    if owns(feature):
        return feature, required, False
    return systems[0], conv(systems[0]), False


def _check_args(params: CheckParams) -> tuple[float, bool]:
    """The units a check requires (``required_quantity`` is the older name, beyond the spec) and expand."""
    required = params.required_balance
    if required is None:
        required = extra_field(params, "required_quantity")
    return 1.0 if required is None else float(required), expands_feature(params)


def check(ctx: Ctx, params: CheckParams) -> CheckResponseJson:
    required, expand = _check_args(params)
    lock = params.lock
    customer_id = params.customer_id
    if params.send_event or lock is not None:
        return _check_and_deduct(ctx, params, required, lock, expand)
    for attempt in range(2):
        with ctx.db.hot_read() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
            feature = cat.features.get(params.feature_id)
            if feature is None:
                raise feature_not_found(params.feature_id)
            customer, sources, now = load_checked_subject(
                ctx, conn, cat, customer_id, involved_feature_ids(cat, [feature]), lock=False
            )
            if attempt == 0 and needs_maintenance(ctx, customer):
                due = True
            else:
                entity = resolve_subject(conn, customer, params.entity_id)
                apply_due_resets(sources, now)
                subject = scoped(sources, entity)
                plans = plan_defaults(cat, subject, now)
                limits = usage_gate(conn, cat, customer, entity, {feature.id}, subject, now, plans)
                return _check_response(
                    ctx,
                    conn,
                    cat,
                    feature,
                    subject,
                    required,
                    customer,
                    entity,
                    now,
                    params,
                    expand,
                    limits=limits,
                )
        if due:  # a plan transition or a lock expiry is due: apply it in a write transaction first
            catch_up(ctx, customer_id)
    raise AssertionError("unreachable: the second attempt always answers")


def _check_response(
    ctx: Ctx,
    conn: Connection | None,
    cat: Catalog,
    feature: Feature,
    subject: list[Source],
    required: float,
    customer: CustomerRow,
    entity: EntityRow | None,
    now: int,
    params: CheckParams,
    expand: bool,
    *,
    forced: bool | None = None,
    limits: Gate | None = None,
) -> CheckResponseJson:
    out: CheckResponseJson = {
        "allowed": False,
        "customer_id": customer.id or params.customer_id,  # the customer was found by that id
        "entity_id": entity.id if entity else None,
        "required_balance": num(required),
        "balance": None,
        "flag": None,
    }
    if feature.type == "boolean":
        flag = derive_flag(feature, [s for s in subject if s.feature_id == feature.id], now, expand)
        out["flag"] = flag
        out["allowed"] = flag is not None
    else:
        plans = plan_defaults(cat, subject, now)
        evaluated, req, allowed = _evaluate(cat, feature, subject, required, customer, entity, now, plans)
        out["required_balance"] = num(req)
        if allowed and limits is not None and not _within_limits(cat, limits, feature, required, params):
            allowed = False
        out["allowed"] = allowed if forced is None else forced
        out["balance"] = balance_of(cat, evaluated.id, subject, now, expand)
    if params.with_preview and not out["allowed"]:
        # Only a denied check has a preview: the spec's ``preview`` is an object, never null.
        assert conn is not None, "previews read the customer's plans"
        out["preview"] = _preview(cat, conn, customer, feature, out["balance"] is not None)
    return out


def _within_limits(
    cat: Catalog, limits: Gate, feature: Feature, required: float, params: CheckParams
) -> bool:
    """Whether ``required`` units fit under every usage limit binding the feature now."""
    room = limits.headroom(cat, feature, params.properties)
    return room is None or required <= 0 or required <= room


def _check_and_deduct(
    ctx: Ctx, params: CheckParams, required: float, lock: CheckLock | None, expand: bool
) -> CheckResponseJson:
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(params.feature_id)
        if feature is None:
            raise feature_not_found(params.feature_id)
        if feature.type == "boolean":
            raise invalid("send_event cannot be used with boolean features; use check without send_event")
        if lock is not None and feature.type == "metered" and not feature.consumable:
            raise invalid("Lock is not supported for allocated features")
        ids = involved_feature_ids(cat, [feature])
        customer, sources, now = load_checked_subject(ctx, conn, cat, params.customer_id, ids, lock=True)
        entity = resolve_subject(conn, customer, params.entity_id)
        apply_due_resets(sources, now)
        subject = scoped(sources, entity)
        plans = plan_defaults(cat, subject, now)
        evaluated, _req, allowed = _evaluate(cat, feature, subject, required, customer, entity, now, plans)
        limits = usage_gate(conn, cat, customer, entity, {feature.id}, subject, now, plans)
        if allowed and limits is not None and not _within_limits(cat, limits, feature, required, params):
            allowed = False
        has_any = any(s.feature_id in ids and s.is_live(now) for s in subject)
        result: DeductionResult | None = None
        if allowed and has_any:
            controls = controls_map(customer, entity, ids, plans)
            try:
                result = deduct_feature(cat, feature, subject, required, controls, now, entity, "reject")
            except InsufficientBalance:
                result = None
        if result is None:
            # Nothing changes: answer with the balance as it was before the request.
            response = _check_response(
                ctx,
                conn,
                cat,
                feature,
                subject,
                required,
                customer,
                entity,
                now,
                params,
                expand,
                forced=False,
            )
            if len(ids) >= 1:
                response["balances"] = {
                    fid: balance_of(cat, fid, subject, now, expand) for fid in sorted(ids)
                }
            save_sources(conn, sources)
            return response
        save_sources(conn, sources)
        if limits is not None:
            limits.count(feature, result.applied, result.touched, params.properties)
            limits.save(conn)
        record_event(
            conn,
            ctx,
            customer,
            entity_id=entity.id if entity else None,
            name=feature.id,
            value=required,
            properties=params.properties,
            deductions=result.deductions,
            timestamp=now,
        )
        if lock is not None:
            store_lock(conn, ctx, customer, entity, feature, lock, required, [(feature, result)], now)
        response = _check_response(
            ctx, conn, cat, feature, subject, required, customer, entity, now, params, expand, forced=True
        )
        chosen = evaluated.id
        for fid in [feature.id] + [cs.id for cs in cat.credit_systems_for.get(feature.id, [])]:
            if result.touched.get(fid, 0) != 0:
                chosen = fid
                break
        response["balance"] = balance_of(cat, chosen, subject, now, expand)
        response["balances"] = {fid: balance_of(cat, fid, subject, now, expand) for fid in sorted(ids)}
        return response


async def check_async(
    ctx: Ctx, params: CheckParams, keyed: KeyedCall | None = None
) -> CheckResponseJson | None:
    """:func:`check` as one statement sent on the event loop (PostgreSQL, plain checks).

    None: serve the request with :func:`check` in a worker thread instead (send_event, locks,
    entities, previews, maintenance due, an unknown customer, a catalogue not cached yet, an
    ``Idempotency-Key``, which only the unit of work in the thread stores).
    """
    pool = ctx.state.async_pool
    cat = ctx.state.catalog_cache.peek(ctx.tenant)
    if pool is None or cat is None or keyed is not None or params.send_event or params.lock is not None:
        return None
    if params.entity_id or params.with_preview:
        return None
    required, expand = _check_args(params)
    feature = cat.features.get(params.feature_id)
    if feature is None:
        raise feature_not_found(params.feature_id)
    stmt, args = subject_query(ctx.tenant, params.customer_id, involved_feature_ids(cat, [feature]))
    loaded = subject_from_rows(await pool.fetch(stmt, args))
    if loaded is None:
        return None
    customer, sources = loaded
    now = ctx.now(customer.clock_offset_ms)
    if needs_maintenance(ctx, customer) or armed(customer, None, plan_defaults(cat, sources, now)):
        return None
    apply_due_resets(sources, now)
    return _check_response(ctx, None, cat, feature, sources, required, customer, None, now, params, expand)
