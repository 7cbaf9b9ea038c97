"""Customers: get_or_create, get (with expands), list, update and delete (the object they answer is
:mod:`customer_views`, its controls :mod:`customer_controls`)."""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import CustomerJson, ListCustomersResponseJson, SuccessResponseJson
from autumn_sdk._generated.models import (
    CustomerData,
    DeleteCustomerParams,
    EventsListCustomRange,
    GetCustomerParams,
    GetOrCreateCustomerParams,
    ListCustomersParams,
    UpdateCustomerParams,
)
from reference_server.errors import ApiError, customer_not_found, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.customer_controls import (
    check_customer_controls,
    config_json,
    controls_json,
    controls_part,
    merged_controls,
    save_topup_counts,
    topup_counts,
)
from reference_server.service.customer_views import customer_json, preload_page
from reference_server.service.maintenance import (
    catch_up,
    needs_maintenance,
    require_customer,
    run_maintenance,
)
from reference_server.service.subscriptions import (
    attach_defaults,
)
from reference_server.store import customers as customers_repo
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import (
    CustomerRow,
    get_customer,
)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _clean_email(email: str | None) -> str | None:
    if email is not None and EMAIL_RE.match(email):
        return email
    return None


def create_customer_row(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    data: GetOrCreateCustomerParams | CustomerData,
    customer_id: str | None,
) -> CustomerRow:
    """Insert the customer ``data`` describes (a ``customers.get_or_create`` request, or the
    ``customer_data`` of a request that creates its customer on the fly) and attach its default plans."""
    now = ctx.now()
    only_plan = None
    if data.auto_enable_plan_id:
        only_plan = cat.plans.get(data.auto_enable_plan_id)
        if only_plan is None:
            raise plan_not_found(data.auto_enable_plan_id)
        trial = only_plan.free_trial
        if not (only_plan.is_free or (trial and not trial.get("card_required", True))):
            raise invalid("auto_enable_plan_id must be a free plan or a plan with a trial that needs no card")
    email = data.email
    if email is not None and _clean_email(email) is None:
        raise invalid(f"email: invalid email address {email}", "invalid_inputs")
    controls = controls_json(controls_part(data.billing_controls))
    check_customer_controls(controls)
    counts = topup_counts(data.billing_controls)
    values = {
        "org_pk": ctx.tenant.org_pk,
        "env": ctx.tenant.env,
        "id": customer_id,
        "name": data.name,
        "email": email,
        "fingerprint": data.fingerprint,
        "stripe_id": data.stripe_id,
        "metadata": data.metadata or {},
        "send_email_receipts": bool(data.send_email_receipts),
        "billing_controls": controls,
        "config": config_json(data.config) if data.config is not None else {},
        "clock_offset_ms": 0,
        "created_at": now,
    }
    pk = customers_repo.insert_customer(conn, values)
    save_topup_counts(conn, pk, counts, now)
    customer = customers_repo.customer_at(conn, pk)
    attach_defaults(conn, cat, customer, now, only_plan=only_plan)
    return customer


def get_or_create(ctx: Ctx, params: GetOrCreateCustomerParams) -> CustomerJson:
    customer_id = params.customer_id
    expand: set[str] = set(params.expand or [])
    for _attempt in range(2):
        try:
            with ctx.db.write() as conn:
                cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
                customer = get_customer(conn, ctx.tenant, customer_id, lock=True) if customer_id else None
                if customer is None:
                    customer = create_customer_row(ctx, conn, cat, params, customer_id)
                else:
                    now = ctx.now(customer.clock_offset_ms)
                    run_maintenance(ctx, conn, cat, customer, now)
                    changes: dict[str, Any] = {}
                    if customer.name is None and params.name:
                        changes["name"] = params.name
                    if customer.email is None and _clean_email(params.email):
                        changes["email"] = params.email
                    if params.send_email_receipts is not None:
                        changes["send_email_receipts"] = params.send_email_receipts
                    if changes:
                        customers_repo.update_customer(conn, customer.pk, changes)
                        for k, v in changes.items():
                            setattr(customer, k, v)
                now = ctx.now(customer.clock_offset_ms)
                return customer_json(ctx, conn, cat, customer, now, expand, persist_resets=True)
        except IntegrityError:
            continue  # a concurrent get_or_create created it first: read it on the retry
    raise ApiError(409, "customer_already_exists", f"Customer {customer_id} already exists")


def get(ctx: Ctx, params: GetCustomerParams) -> CustomerJson:
    """A read transaction: due resets are computed in memory (the next write stores them); only due
    plan transitions or lock expiries take a write transaction first."""
    customer_id = params.customer_id
    expand: set[str] = set(params.expand or [])
    for attempt in range(2):
        with ctx.db.read() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
            customer = get_customer(conn, ctx.tenant, customer_id)
            if customer is None:
                raise customer_not_found(customer_id)
            if attempt == 1 or not needs_maintenance(ctx, customer):
                return customer_json(ctx, conn, cat, customer, ctx.now(customer.clock_offset_ms), expand)
        catch_up(ctx, customer_id)
    raise AssertionError("unreachable: the second attempt always answers")


def _encode_cursor(created_at: int, pk: int) -> str:
    return base64.urlsafe_b64encode(f"k:{created_at}:{pk}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    """The (created_at, pk) of the last customer of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, created_at, pk = raw.split(":", 2)
        if kind != "k":
            raise ValueError
        return int(created_at), int(pk)
    except ValueError as exc:
        raise invalid("start_cursor: invalid cursor", "invalid_inputs") from exc


def _created_at_bounds(created_at_range: EventsListCustomRange | None) -> tuple[int | None, int | None]:
    """The (start, end) of ``created_at_range`` in epoch milliseconds, None where unbounded."""
    if created_at_range is None:
        return None, None
    start, end = created_at_range.start, created_at_range.end
    return (None if start is None else int(start)), (None if end is None else int(end))


def list_customers(ctx: Ctx, params: ListCustomersParams) -> ListCustomersResponseJson:
    limit = params.limit or 50
    if not 1 <= limit <= 5000:
        raise invalid("limit: must be between 1 and 5000", "invalid_inputs")
    descending = (params.sort_order or "desc") == "desc"
    after = _decode_cursor(params.start_cursor) if params.start_cursor else None
    start_at, end_at = _created_at_bounds(params.created_at_range)
    if params.processors and "stripe" not in params.processors:
        return {"list": [], "next_cursor": None}  # no customer here is billed by RevenueCat or Vercel
    plan_filters = params.plans or []
    plan_pks: list[list[int]] | None = None
    if plan_filters:
        plan_pks = []
        with ctx.db.read() as conn:
            cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        for pf in plan_filters:
            pks = [p.pk for p in cat.versions(pf.id) if not pf.versions or p.version in pf.versions]
            plan_pks.append(pks)
    query = customers_repo.CustomerQuery(
        descending=descending,
        after=after,
        start_at=start_at,
        end_at=end_at,
        search=params.search or None,
        subscription_status=params.subscription_status or None,
        plan_pks=plan_pks,
        stripe_only=bool(params.processors and "stripe" in params.processors),
    )
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        rows = customers_repo.customer_page(conn, ctx.tenant, query, limit)
        page = rows[:limit]
        loaded = preload_page(ctx, conn, [c.pk for c in page], pools=True)
        out = [
            customer_json(ctx, conn, cat, c, ctx.now(c.clock_offset_ms), preloaded=loaded[c.pk]) for c in page
        ]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].pk) if len(rows) > limit else None
    return {"list": out, "next_cursor": next_cursor}


def update_customer(ctx: Ctx, params: UpdateCustomerParams) -> CustomerJson:
    """Change what the request sends; a field sent as ``null`` is cleared (``metadata`` to ``{}``)."""
    customer_id = params.customer_id
    sent = params.model_fields_set
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, customer_id, lock=True)
        changes: dict[str, Any] = {}
        counts: list[tuple[str, int]] = []
        if "name" in sent:
            changes["name"] = params.name
        if "fingerprint" in sent:
            changes["fingerprint"] = params.fingerprint
        if "metadata" in sent:
            changes["metadata"] = params.metadata or {}
        if "stripe_id" in sent:
            changes["stripe_id"] = params.stripe_id
        if "send_email_receipts" in sent:
            changes["send_email_receipts"] = params.send_email_receipts
        if "config" in sent:
            changes["config"] = config_json(params.config) if params.config is not None else None
        if "email" in sent:
            if params.email is not None and _clean_email(params.email) is None:
                raise invalid(f"email: invalid email address {params.email}", "invalid_inputs")
            changes["email"] = params.email
        if params.billing_controls is not None:
            merged = merged_controls(customer.billing_controls, controls_part(params.billing_controls))
            check_customer_controls(merged)
            counts = topup_counts(params.billing_controls)
            changes["billing_controls"] = merged
        new_id = params.new_customer_id
        if new_id and new_id != customer_id:
            if get_customer(conn, ctx.tenant, new_id) is not None:
                raise ApiError(409, "customer_already_exists", f"Customer {new_id} already exists")
            changes["id"] = new_id
        save_topup_counts(conn, customer.pk, counts, now)
        if changes:
            customers_repo.update_customer(conn, customer.pk, changes)
            customer = customers_repo.customer_at(conn, customer.pk)
        return customer_json(ctx, conn, cat, customer, now, persist_resets=True)


def delete_customer(ctx: Ctx, params: DeleteCustomerParams) -> SuccessResponseJson:
    with ctx.db.write() as conn:
        customer = get_customer(conn, ctx.tenant, params.customer_id, lock=True)
        if customer is None:
            raise customer_not_found(params.customer_id)
        mirror = ctx.state.billing.subscription_mirror
        if mirror is not None:  # its Stripe subscriptions canceled (and customer deleted) after commit
            mirror.before_customer_delete(conn, customer.pk, bool(params.delete_in_stripe))
        customers_repo.delete_customer(conn, customer.pk)
    return {"success": True}
