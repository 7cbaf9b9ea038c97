"""Reading an attach or update request: the customer, entity, plan, current plan and the plans it
removes, checked against the catalogue and the customer's plans (shared by every billing change)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from autumn_sdk._generated.models import (
    AttachParams,
    PreviewAttachParams,
    PreviewUpdateParams,
    UpdateSubscriptionParams,
)
from reference_server.errors import ApiError, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.service.plans_read import current_main, requested_entity
from reference_server.service.subscriptions import (
    Instance,
    load_instances,
)
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow, EntityRow

AttachRequest = AttachParams | PreviewAttachParams
"""The request of one plan attached (``billing.attach`` or its preview; multi-attach and schedules
build one :class:`AttachParams` per plan)."""

UpdateRequest = UpdateSubscriptionParams | PreviewUpdateParams
"""The request of one plan updated (``billing.update`` or its preview; multi-update builds one per item)."""


M = TypeVar("M", bound=BaseModel)


def built_params(model: type[M], data: dict[str, Any]) -> M:
    """A request built from parts of another (a multi-attach's plan, a schedule's first phase), validated
    as a request of its own; a part the other request took but this one refuses is a 400, not a 500."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise invalid(f"{where}: {first['msg']}", "invalid_inputs") from exc


def needs_paid_billing(plan: Plan, current: Plan | None) -> bool:
    return not plan.is_free or (current is not None and not current.is_free)


def resolve_attach(
    ctx: Ctx, conn: Connection, params: AttachRequest
) -> tuple[Catalog, CustomerRow, EntityRow | None, Plan, Instance | None, list[Instance], int]:
    """Load everything an attach needs (shared by the free path and the paid handlers)."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
    plan = cat.plan_version(params.plan_id, params.version)
    if plan is None:
        raise plan_not_found(params.plan_id)
    entity = requested_entity(conn, customer, params.entity_id)
    instances = load_instances(conn, customer.pk)
    current = None
    if not plan.add_on and not plan.is_one_off:
        current = current_main(instances, cat, plan.group, entity.pk if entity else None)
    plans_to_remove(cat, params, plan, current, instances, entity.pk if entity else None)  # validates
    return cat, customer, entity, plan, current, instances, now


def plans_to_remove(
    cat: Catalog,
    params: AttachRequest,
    plan: Plan,
    current: Instance | None,
    instances: list[Instance],
    entity_pk: int | None,
) -> list[Instance]:
    """The active plans ``remove_plan_ids`` names, which the attach expires alongside (Autumn's rules).

    The plan the attach replaces is skipped (it ends anyway); the attached plan itself, a plan the
    customer (or the entity attached to) does not have active, or two removals with a carry-over
    and nothing replaced are refused.  Autumn also removes a paid plan billed on the attach's own
    subscription; this server removes plans without a price only and refuses paid ones.
    """
    out: list[Instance] = []
    for plan_id in dict.fromkeys(params.remove_plan_ids or []):
        if current is not None and plan_id == current.plan_id:
            continue
        if plan_id == plan.id:
            raise ApiError(
                400, "invalid_request", f"Cannot remove plan '{plan_id}' in the same attach that adds it"
            )
        inst = next(
            (
                i
                for i in instances
                if i.plan_id == plan_id and i.status == "active" and i.entity_pk == entity_pk
            ),
            None,
        )
        if inst is None:
            raise ApiError(
                404, "product_not_found", f"No active plan '{plan_id}' found on the customer to remove"
            )
        removed = cat.plans_by_pk.get(inst.plan_pk)
        if removed is None or not removed.is_free:
            raise ApiError(
                400,
                "unsupported_field",
                f"remove_plan_ids: plan '{plan_id}' has a price; the reference server removes only plans "
                "without a price in an attach",
            )
        out.append(inst)
    carry = any(c is not None and c.enabled for c in (params.carry_over_usages, params.carry_over_balances))
    if current is None and carry and len(out) > 1:
        raise ApiError(
            400,
            "invalid_request",
            "Cannot carry over usage when removing multiple plans. Remove them one at a time.",
        )
    return out


def find_instance(
    instances: list[Instance], cat: Catalog, params: UpdateRequest, entity_pk: int | None, customer_id: str
) -> Instance:
    for inst in instances:
        if inst.entity_pk != entity_pk:
            continue
        if params.subscription_id and inst.public_id == params.subscription_id:
            return inst
        if params.plan_id and inst.plan_id == params.plan_id and not params.subscription_id:
            return inst
    target = params.plan_id or params.subscription_id
    raise ApiError(
        404,
        "cus_product_not_found",
        f"No active subscription found for plan '{target}' on customer '{customer_id}'",
    )


def resolve_update(
    ctx: Ctx, conn: Connection, params: UpdateRequest
) -> tuple[Catalog, CustomerRow, EntityRow | None, Instance, list[Instance], int]:
    if not params.plan_id and not params.subscription_id:
        raise invalid("Either plan_id or subscription_id must be provided", "invalid_inputs")
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
    entity = requested_entity(conn, customer, params.entity_id)
    instances = load_instances(conn, customer.pk)
    inst = find_instance(instances, cat, params, entity.pk if entity else None, customer.id or "")
    return cat, customer, entity, inst, instances, now
