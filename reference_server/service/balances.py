"""The balances API: ``balances.create``, ``balances.update`` and ``balances.delete`` (§4.1-4.3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import SuccessResponseJson
from autumn_sdk._generated.models import CreateBalanceParams, DeleteBalanceParams, UpdateBalanceParams
from reference_server.engine.deduction import (
    Target,
    deduct,
    order_targets,
)
from reference_server.engine.entitlements import Source, r10
from reference_server.engine.intervals import next_boundary_after
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.extra_fields import extra_field
from reference_server.service.maintenance import require_customer
from reference_server.service.usage import (
    resolve_subject,
)
from reference_server.store.subjects import (
    EntityRow,
    delete_sources,
    insert_source,
    load_sources,
    save_sources,
    scoped,
    set_anchor,
)

# ---------------------------------------------------------------- balances.create / update / delete


def create_balance(ctx: Ctx, params: CreateBalanceParams) -> SuccessResponseJson:
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(params.feature_id)
        if feature is None:
            raise feature_not_found(params.feature_id)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        entity = resolve_subject(conn, customer, params.entity_id)
        grant = (
            params.included_grant
            if params.included_grant is not None
            else extra_field(params, "granted_balance")
        )
        unlimited = bool(params.unlimited)
        reset = params.reset
        rollover = params.rollover
        expires_at = params.expires_at
        next_reset = params.next_reset_at
        if entity is not None and entity.feature_id == feature.id:
            raise invalid("An entity cannot receive a balance of its own feature")
        if expires_at is not None and expires_at <= now:
            raise invalid("expires_at must be in the future")
        if feature.type == "boolean":
            if grant is not None or unlimited:
                raise invalid("Boolean features take neither included_grant nor unlimited")
            existing = [
                s
                for s in scoped(load_sources(conn, customer.pk, {feature.id}), entity)
                if s.is_flag and s.is_live(now)
            ]
            if existing:
                raise ApiError(409, "invalid_request", f"Customer already has feature {feature.id}")
            values: dict[str, Any] = {"is_flag": True}
        else:
            if (grant is None) == (not unlimited):
                raise invalid("Exactly one of included_grant or unlimited must be given")
            continuous = feature.type == "metered" and not feature.consumable
            interval, count = None, 1
            if not continuous:
                interval = "one_off"
                if reset is not None and reset.interval != "one_off":
                    interval, count = reset.interval, int(reset.interval_count or 1)
            if unlimited and interval not in (None, "one_off"):
                raise invalid("An unlimited balance cannot have a reset")
            if rollover is not None and (continuous or interval in (None, "one_off")):
                raise invalid("A rollover needs a reset interval on a consumable feature")
            if next_reset is not None and interval in (None, "one_off"):
                raise invalid("next_reset_at needs a reset interval")
            first_reset = None
            if interval not in (None, "one_off"):
                assert interval is not None
                if next_reset is not None:
                    if next_reset <= now or (expires_at is not None and next_reset >= expires_at):
                        raise invalid("next_reset_at must be in the future and before expires_at")
                    first_reset = int(next_reset)
                else:
                    first_reset = next_boundary_after(now, interval, count, now)
            amount = float(grant or 0)
            values = {
                "allowance": amount,
                "balance": amount,
                "unlimited": unlimited,
                "interval": interval,
                "interval_count": count,
                "anchor_at": now if first_reset is None or next_reset is None else first_reset,
                "next_reset_at": first_reset,
                "continuous": continuous,
                "rollover_config": (
                    {
                        "max": rollover.max,
                        "max_percentage": rollover.max_percentage,
                        "expiry_duration_type": rollover.duration or "month",
                        "expiry_duration_length": rollover.length,
                    }
                    if rollover is not None
                    else None
                ),
            }
        try:
            with conn.begin_nested():
                insert_source(
                    conn,
                    {
                        "customer_pk": customer.pk,
                        "entity_pk": entity.pk if entity else None,
                        "feature_id": feature.id,
                        "balance_id": params.balance_id,
                        "expires_at": expires_at,
                        "created_at": now,
                        **values,
                    },
                )
        except IntegrityError as exc:
            raise ApiError(
                409,
                "invalid_request",
                f"Balance with id {params.balance_id} already exists for this customer",
            ) from exc
    return {"success": True}


def _matching(
    sources: list[Source], feature_id: str, entity: EntityRow | None, params: UpdateBalanceParams, now: int
) -> list[Source]:
    out = []
    for s in sources:
        if s.feature_id != feature_id or not s.is_live(now):
            continue
        if entity is not None and s.entity_pk != entity.pk:
            continue
        if params.interval and (s.interval or "one_off") != params.interval:
            continue
        if params.balance_id and s.id != params.balance_id:
            continue
        out.append(s)
    return out


def update_balance(ctx: Ctx, params: UpdateBalanceParams) -> SuccessResponseJson:
    remaining = params.remaining if params.remaining is not None else extra_field(params, "current_balance")
    if remaining is not None and params.add_to_balance is not None:
        raise invalid("remaining and add_to_balance cannot be used together", "invalid_inputs")
    if remaining is not None and params.usage is not None:
        raise invalid("remaining and usage cannot be used together", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        feature = cat.features.get(params.feature_id)
        if feature is None:
            raise feature_not_found(params.feature_id)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        entity = resolve_subject(conn, customer, params.entity_id)
        if params.expires_at is not None and params.expires_at <= now:
            raise invalid("expires_at must be in the future")
        sources = load_sources(conn, customer.pk, {feature.id})
        apply_due_resets(sources, now)
        matching = _matching(sources, feature.id, entity, params, now)
        if not matching:
            raise ApiError(
                404,
                "balance_not_found",
                f"No balances to update for feature {feature.id} on customer {customer.id}",
            )
        if params.included_grant is not None:
            s = matching[0]
            s.adjustment = r10(float(params.included_grant) - s.allowance)
            # The balance (remaining) is untouched, so usage becomes grant - remaining.
            s.dirty = True
        ordered = order_targets([Target(s, 1.0, True) for s in matching], entity.id if entity else None)

        def total_remaining() -> float:
            return r10(
                sum(s.balance for s in matching)
                + sum(r.balance for s in matching for r in s.live_rollovers(now))
            )

        target: float | None = None
        if remaining is not None:
            target = float(remaining)
        elif params.add_to_balance is not None:
            target = total_remaining() + float(params.add_to_balance)
        elif params.usage is not None:
            granted = sum(s.included_grant + s.prepaid for s in matching)
            target = granted - float(params.usage)
        if target is not None:
            delta = r10(total_remaining() - target)
            if delta != 0:
                deduct(ordered, delta, {}, now, "allow", feature.id)
        for s in matching:
            if params.next_reset_at is not None:
                s.next_reset_at = int(params.next_reset_at)
                s.anchor_at = int(params.next_reset_at)
                s.dirty = True
            if params.expires_at is not None:
                s.expires_at = int(params.expires_at)
                s.dirty = True
        save_sources(conn, sources)
        if params.next_reset_at is not None:
            set_anchor(conn, [s.pk for s in matching], int(params.next_reset_at))
    return {"success": True}


def delete_balance(ctx: Ctx, params: DeleteBalanceParams) -> SuccessResponseJson:
    feature_id = params.feature_id
    if params.recalculate_balances and not feature_id:
        raise invalid("recalculate_balances requires feature_id", "invalid_inputs")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        if feature_id and feature_id not in cat.features:
            raise feature_not_found(feature_id)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        entity = resolve_subject(conn, customer, params.entity_id)
        sources = load_sources(conn, customer.pk)
        apply_due_resets(sources, now)
        matching = []
        for s in sources:
            if feature_id and s.feature_id != feature_id:
                continue
            if not s.is_live(now):
                continue
            if (entity.pk if entity else None) != s.entity_pk:
                continue
            if params.interval and (s.interval or "one_off") != params.interval:
                continue
            if params.balance_id and s.id != params.balance_id:
                continue
            matching.append(s)
        if not matching:
            raise ApiError(404, "balance_not_found", "No balances found to delete")
        if any(s.price for s in matching):
            raise ApiError(409, "invalid_request", "Cannot delete paid balance; cancel the plan instead")
        used = sum(s.usage for s in matching if not s.is_flag)
        delete_sources(conn, [s.pk for s in matching])
        if params.recalculate_balances and feature_id and used > 0:  # feature_id: required above
            gone = {s.pk for s in matching}
            rest = [s for s in sources if s.pk not in gone and s.feature_id == feature_id]
            rest_subject = scoped(rest, entity)
            ordered = order_targets(
                [Target(s, 1.0, True) for s in rest_subject], entity.id if entity else None
            )
            deduct(ordered, used, {}, now, "cap", feature_id)
            save_sources(conn, rest)
        else:
            save_sources(conn, [s for s in sources if s not in matching])
    return {"success": True}
