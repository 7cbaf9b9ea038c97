"""Operations the official ``autumn-sdk`` has beyond the spec: Autumn's cross-customer lists,
``billing.verify`` and the platform's Stripe connection.

``balances.list``, ``subscriptions.list`` (``customers.list_subscriptions``) and ``purchases.list``
(``customers.list_purchases``) page over every customer of the key's environment, or one customer
(and one of its entities), newest customer first, then newest row first, as Autumn walks them.  A
page holds at most ``limit`` rows and ``has_more`` says whether another follows; ``next_cursor`` is
opaque.  A ``past_due`` filter narrows the active rows after the page is cut, so a page can hold
fewer rows than ``limit`` while ``has_more`` is true (Autumn documents the same).

``billing.verify`` compares a customer's billing with its Stripe subscriptions; this server verifies
what it can know without asking Stripe (see :func:`verify`).  ``platform.get_stripe_connection`` and
``platform.disconnect_stripe`` report and revoke an organization's Stripe OAuth connection: this
server has no Stripe OAuth (an organization's account is configured through
``platform.update_stripe_config``), so no organization is ever OAuth-connected here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    BalanceBreakdownPriceJson,
    BalanceBreakdownPriceTierJson,
    BalanceBreakdownResetJson,
    DisconnectStripeResponseJson,
    GetStripeConnectionResponseJson,
    ListBalancesItemJson,
    ListBalancesItemPriceJson,
    ListBalancesItemPriceTierJson,
    ListBalancesItemResetJson,
    ListBalancesResponseJson,
    ListPurchasesItemJson,
    ListPurchasesResponseJson,
    ListSubscriptionsItemJson,
    ListSubscriptionsResponseJson,
    VerifyResponseJson,
)
from autumn_sdk._generated.models import (
    DisconnectStripeParams,
    GetStripeConnectionParams,
    ListBalancesParams,
    ListPurchasesParams,
    ListSubscriptionsParams,
    VerifyParams,
)
from reference_server.engine.balances import breakdown_json
from reference_server.engine.entitlements import num
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, customer_not_found, entity_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.customer_views import past_due_instances, subscription_json
from reference_server.service.platform import _tenant_org
from reference_server.service.subscriptions import Instance, instance_from_row
from reference_server.store import listings
from reference_server.store.catalog import Catalog
from reference_server.store.org_stripe import connected_account_id
from reference_server.store.subjects import (
    CustomerRow,
    customer_by_pk,
    get_customer,
    get_entity,
    load_sources_for,
)

# ---------------------------------------------------------------------------------------------
# Paging: (customer pk, created_at, row pk), all descending.


ListPageParams = ListBalancesParams | ListSubscriptionsParams | ListPurchasesParams
"""The requests of Autumn's cross-customer lists: ``customer_id``, ``entity_id``, and the paging."""
DEFAULT_LIMIT = 50
"""A page's rows when ``limit`` is left out (the most is 200, which the spec's models enforce)."""


@dataclass(frozen=True)
class _Scope:
    customer_pk: int | None
    entity_pk: int | None


def _resolve_scope(ctx: Ctx, conn: Connection, params: ListPageParams) -> _Scope:
    """The customer (and entity) a list is narrowed to; 404 for one that does not exist."""
    customer_id, entity_id = params.customer_id, params.entity_id
    if entity_id is not None and customer_id is None:
        raise invalid("entity_id requires customer_id", "invalid_inputs")
    if customer_id is None:
        return _Scope(None, None)
    customer = get_customer(conn, ctx.tenant, customer_id)
    if customer is None:
        raise customer_not_found(customer_id)
    if entity_id is None:
        return _Scope(customer.pk, None)
    entity = get_entity(conn, customer.pk, entity_id)
    if entity is None:
        raise entity_not_found(entity_id)
    return _Scope(customer.pk, entity.pk)


def _encode_cursor(kind: str, customer_pk: int, created_at: int, pk: int) -> str:
    raw = f"{kind}:{customer_pk}:{created_at}:{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str | None) -> tuple[int, int, int] | None:
    """The (customer pk, created_at, pk) of the previous page's last row; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, customer_pk, created_at, pk = raw.split(":")
        if tag != kind:
            raise ValueError(tag)
        return int(customer_pk), int(created_at), int(pk)
    except ValueError as exc:
        raise invalid("start_cursor: invalid cursor", "invalid_inputs") from exc


def _page(
    rows: list[Any], limit: int, kind: str, created_attr: str = "created_at"
) -> tuple[list[Any], str | None]:
    """The first ``limit`` rows and the cursor after them (None when no row follows)."""
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    last = page[-1]
    return page, _encode_cursor(kind, int(last.cpk), int(getattr(last, created_attr)), int(last.pk))


def _customer_id(row: Any) -> str:
    return str(row.cid) if row.cid is not None else f"cus_{row.cpk}"


# ---------------------------------------------------------------------------------------------
# balances.list


def list_balances(ctx: Ctx, params: ListBalancesParams) -> ListBalancesResponseJson:
    """Balances (one row per grant: a plan item's or a standalone one) across customers.

    ``statuses`` defaults to active; a balance is expired once its ``expires_at`` passed (a plan's
    balances leave with the plan).  ``plan_id`` null lists the standalone balances only.
    """
    limit = params.limit or DEFAULT_LIMIT
    statuses: set[str] = set(params.statuses or ["active"])
    cursor = _decode_cursor("bal", params.start_cursor)
    base_now = ctx.now()
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        scope = _resolve_scope(ctx, conn, params)
        page = listings.balance_page(
            conn,
            ctx.tenant,
            now=base_now,
            statuses=statuses,
            customer_pk=scope.customer_pk,
            entity_pk=scope.entity_pk,
            plan_filter="plan_id" in params.model_fields_set,
            plan_id=params.plan_id,
            feature_id=params.feature_id,
            cursor=cursor,
            limit=limit,
        )
        rows, next_cursor = _page(page, limit, "bal")
        wanted = {r.pk for r in rows}
        page_customers = {r.cpk: _customer_row(conn, r.cpk) for r in rows}
        sources = {src.pk: src for src in load_sources_for(conn, list(page_customers)) if src.pk in wanted}
    out: list[ListBalancesItemJson] = []
    for r in rows:
        src = sources.get(r.pk)
        owner = page_customers[r.cpk]
        if src is None or owner is None or cat.features.get(src.feature_id) is None:
            continue
        now = base_now + owner.clock_offset_ms
        apply_due_resets([src], now)  # what a read of the customer shows; nothing is written
        row = breakdown_json(src)
        item: ListBalancesItemJson = {
            "plan_id": row["plan_id"],
            "included_grant": row["included_grant"],
            "prepaid_grant": row["prepaid_grant"],
            "remaining": row["remaining"],
            "usage": row["usage"],
            "unlimited": row["unlimited"],
            "reset": _listed_reset(row["reset"]),
            "price": _listed_price(row["price"]),
            "expires_at": row["expires_at"],
            "feature_id": src.feature_id,
            "status": "active" if src.is_live(now) else "expired",
            "rollovers": [
                {
                    "granted": num(ro.balance + ro.usage),
                    "balance": num(ro.balance),
                    "expires_at": ro.expires_at or 0,
                }
                for ro in src.live_rollovers(now)
            ],
            "customer_id": _customer_id(r),
            "entity_id": r.eid,
            "created_at": src.created_at,
        }
        if "id" in row:
            item["id"] = row["id"]
        out.append(item)
    return {"list": out, "has_more": next_cursor is not None, "next_cursor": next_cursor}


def _listed_reset(reset: BalanceBreakdownResetJson | None) -> ListBalancesItemResetJson | None:
    """A breakdown row's reset as balances.list's item types it (its interval a plain string)."""
    if reset is None:
        return None
    out: ListBalancesItemResetJson = {"interval": reset["interval"], "resets_at": reset["resets_at"]}
    if "interval_count" in reset:
        out["interval_count"] = reset["interval_count"]
    return out


def _listed_price(price: BalanceBreakdownPriceJson | None) -> ListBalancesItemPriceJson | None:
    """A breakdown row's price as balances.list's item types it (its enums plain strings)."""
    if price is None:
        return None
    out: ListBalancesItemPriceJson = {
        "billing_units": price["billing_units"],
        "billing_method": price["billing_method"],
        "max_purchase": price["max_purchase"],
    }
    if "amount" in price:
        out["amount"] = price["amount"]
    if "tiers" in price:
        out["tiers"] = [_listed_tier(tier) for tier in price["tiers"]]
    if "tier_behavior" in price:
        out["tier_behavior"] = price["tier_behavior"]
    return out


def _listed_tier(tier: BalanceBreakdownPriceTierJson) -> ListBalancesItemPriceTierJson:
    out: ListBalancesItemPriceTierJson = {"to": tier["to"], "amount": tier["amount"]}
    if "flat_amount" in tier:
        out["flat_amount"] = tier["flat_amount"]
    return out


def _customer_row(conn: Connection, customer_pk: int) -> CustomerRow | None:
    return customer_by_pk(conn, customer_pk)


# ---------------------------------------------------------------------------------------------
# subscriptions.list / purchases.list

_DB_STATUSES = {
    "active": {"active"},
    "scheduled": {"scheduled"},
    "past_due": {"active"},
    "expired": {"expired"},
}
"""A requested status -> the stored plan statuses it reads (past_due narrows active rows)."""


def list_subscriptions(ctx: Ctx, params: ListSubscriptionsParams) -> ListSubscriptionsResponseJson:
    """Recurring plans (subscriptions) across customers; active and scheduled by default."""
    listed, next_cursor = _list_customer_plans(ctx, params, purchases=False)
    out: list[ListSubscriptionsItemJson] = []
    for plan in listed:
        sub = subscription_json(plan.inst, plan.cat, False, plan.past_due)
        out.append(
            {
                "id": sub["id"],
                "plan_id": sub["plan_id"],
                "auto_enable": sub["auto_enable"],
                "add_on": sub["add_on"],
                "past_due": sub["past_due"],
                "canceled_at": sub["canceled_at"],
                "expires_at": sub["expires_at"],
                "trial_ends_at": sub["trial_ends_at"],
                "started_at": sub["started_at"],
                "current_period_start": sub["current_period_start"],
                "current_period_end": sub["current_period_end"],
                "quantity": sub["quantity"],
                "status": plan.status,
                "customer_id": plan.customer_id,
                "entity_id": plan.entity_id,
                "created_at": plan.inst.created_at,
            }
        )
    return {"list": out, "has_more": next_cursor is not None, "next_cursor": next_cursor}


def list_purchases(ctx: Ctx, params: ListPurchasesParams) -> ListPurchasesResponseJson:
    """One-off plans (purchases) across customers; active and scheduled by default."""
    listed, next_cursor = _list_customer_plans(ctx, params, purchases=True)
    out: list[ListPurchasesItemJson] = [
        {
            "id": plan.inst.public_id,
            "plan_id": plan.inst.plan_id,
            "expires_at": plan.inst.expires_at,
            "started_at": plan.inst.started_at,
            "quantity": num(plan.inst.quantity),
            "status": plan.status,
            "customer_id": plan.customer_id,
            "entity_id": plan.entity_id,
            "created_at": plan.inst.created_at,
        }
        for plan in listed
    ]
    return {"list": out, "has_more": next_cursor is not None, "next_cursor": next_cursor}


@dataclass(frozen=True)
class _ListedPlan:
    """A customer plan of a subscriptions.list / purchases.list page, with what its row answers."""

    inst: Instance
    cat: Catalog
    past_due: bool
    status: str
    customer_id: str
    entity_id: str | None


def _list_customer_plans(
    ctx: Ctx, params: ListSubscriptionsParams | ListPurchasesParams, *, purchases: bool
) -> tuple[list[_ListedPlan], str | None]:
    limit = params.limit or DEFAULT_LIMIT
    statuses: list[str] = list(params.statuses or ["active", "scheduled"])
    db_statuses = sorted({db for status in statuses for db in _DB_STATUSES[status]})
    # past_due without active: of the active rows, only those whose renewal charge failed.
    only_past_due = "past_due" in statuses and "active" not in statuses
    kind = "pur" if purchases else "sub"
    cursor = _decode_cursor(kind, params.start_cursor)
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        scope = _resolve_scope(ctx, conn, params)
        one_off = [pk for pk, plan in cat.plans_by_pk.items() if plan.is_one_off]
        page = listings.customer_plan_page(
            conn,
            ctx.tenant,
            db_statuses=db_statuses,
            one_off_pks=one_off,
            purchases=purchases,
            customer_pk=scope.customer_pk,
            entity_pk=scope.entity_pk,
            plan_id=params.plan_id,
            cursor=cursor,
            limit=limit,
        )
        rows, next_cursor = _page(page, limit, kind)
        past_due: frozenset[int] = frozenset()
        if not purchases:
            past_due = past_due_instances(ctx, conn, sorted({r.cpk for r in rows if r.status == "active"}))
    out: list[_ListedPlan] = []
    for r in rows:
        inst = instance_from_row(r)
        is_past_due = inst.status == "active" and inst.pk in past_due
        if inst.status == "active" and only_past_due and not is_past_due:
            continue
        status = inst.status if inst.status in ("scheduled", "expired") else "active"
        out.append(_ListedPlan(inst, cat, is_past_due, status, _customer_id(r), r.eid))
    return out, next_cursor


# ---------------------------------------------------------------------------------------------
# billing.verify


def verify(ctx: Ctx, params: VerifyParams) -> VerifyResponseJson:
    """A customer's billing checked against its Stripe subscriptions.

    A customer with no Stripe customer has no Stripe subscription to disagree with: it verifies clean
    (no mismatch, no subscription).  A customer with a Stripe customer would need its Stripe
    subscriptions read and compared item by item, which this server does not do: it refuses (400)
    rather than answer a verification it did not make.
    """
    customer_id = params.customer_id
    with ctx.db.read() as conn:
        customer = get_customer(conn, ctx.tenant, customer_id)
        if customer is None:
            raise customer_not_found(customer_id)
    if customer.stripe_id is not None:
        raise ApiError(
            400,
            "unsupported_operation",
            f"Customer {customer_id} is billed through Stripe ({customer.stripe_id}); this server does "
            "not compare Stripe subscriptions with its records, so it cannot verify this customer",
        )
    return {"customer_id": customer.id or customer_id, "customer_mismatches": [], "subscriptions": []}


# ---------------------------------------------------------------------------------------------
# platform.get_stripe_connection / platform.disconnect_stripe


def _org_env(params: GetStripeConnectionParams | DisconnectStripeParams) -> str:
    return "live" if params.env == "live" else "sandbox"


def get_stripe_connection(ctx: Ctx, params: GetStripeConnectionParams) -> GetStripeConnectionResponseJson:
    """A managed organization's Stripe OAuth connection: never one here (no Stripe OAuth)."""
    with ctx.db.read() as conn:
        _tenant_org(ctx, conn, params.organization_slug)
    return {"connected": False, "account_id": None, "connected_at": None}


def disconnect_stripe(ctx: Ctx, params: DisconnectStripeParams) -> DisconnectStripeResponseJson:
    """Revoke a managed organization's Stripe OAuth connection.

    As in Autumn, a connected account the platform set (``platform.update_stripe_config`` with an
    account id) is not an OAuth connection and is refused (400); with no OAuth connection there is
    nothing to revoke and the answer is success.  The organization's own Stripe keys stay.
    """
    with ctx.db.read() as conn:
        org = _tenant_org(ctx, conn, params.organization_slug)
        account_id = connected_account_id(conn, org.pk, _org_env(params))
    if account_id:
        raise ApiError(400, "invalid_request", "Platform-managed Stripe accounts are not OAuth connections")
    return {"success": True}
