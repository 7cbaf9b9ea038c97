"""Customers: get_or_create, get (with expands), list, update, delete, and the Customer object."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.models import (
    BillingControlsParams,
    CustomerConfig,
    CustomerData,
    DeleteCustomerParams,
    EntityBillingControlsParams,
    EventsListCustomRange,
    GetCustomerParams,
    GetOrCreateCustomerParams,
    ListCustomersParams,
    UpdateCustomerParams,
)
from reference_server.engine.balances import derive_balance, derive_flag
from reference_server.engine.entitlements import Source, num
from reference_server.engine.plan_controls import overlay
from reference_server.engine.resets import apply_due_resets
from reference_server.errors import ApiError, customer_not_found, invalid, plan_not_found
from reference_server.service.context import Ctx
from reference_server.service.license_pools import customer_licenses, pools_json
from reference_server.service.maintenance import (
    catch_up,
    needs_maintenance,
    require_customer,
    run_maintenance,
)
from reference_server.service.plan_controls import plan_defaults
from reference_server.service.plans import plan_json
from reference_server.service.subscriptions import (
    Instance,
    attach_defaults,
    instance_from_row,
    load_instances,
)
from reference_server.service.usage_limits import check_limits, limits_view
from reference_server.store import customers as customers_repo
from reference_server.store import licenses as licenses_repo
from reference_server.store.catalog import Catalog
from reference_server.store.licenses import Pool
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    get_customer,
    list_entities,
    load_sources,
    load_sources_for,
    save_sources,
    scoped,
)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CONTROL_KEYS = ("auto_topups", "spend_limits", "usage_limits", "usage_alerts", "overage_allowed")


def controls_json(raw: dict[str, Any], *, entity: bool = False) -> dict[str, Any]:
    """Billing controls as stored and answered: every list present, no ``null`` inside an item.

    An item field sent as ``null`` means "not set" (its default applies: ``enabled`` false, ...);
    the spec's response schemas allow none of them to be ``null``.
    """
    keys = CONTROL_KEYS[1:] if entity else CONTROL_KEYS
    return {k: [_without_nulls(item) for item in raw.get(k) or [] if isinstance(item, dict)] for k in keys}


def controls_part(part: BillingControlsParams | EntityBillingControlsParams | None) -> dict[str, Any]:
    """A request's ``billing_controls`` as the JSON it was sent as (absent keys left out), for
    :func:`controls_json` and merging over the stored controls."""
    return part.model_dump(mode="json", exclude_unset=True) if part is not None else {}


def config_json(config: CustomerConfig) -> dict[str, Any]:
    """A request's customer ``config`` as stored (the keys it sent)."""
    return config.model_dump(mode="json", exclude_unset=True)


def controls_view(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    sources: list[Source],
    now: int,
) -> dict[str, Any]:
    """The subject's controls as answered: its own entries (``source: customer``) over its current
    plans' defaults (``source: plan``), each usage limit with its window's ``usage``."""
    own = controls_json(
        entity.billing_controls if entity else customer.billing_controls, entity=entity is not None
    )
    seen = scoped(sources, entity) if entity is not None else [s for s in sources if s.entity_pk is None]
    merged = overlay(plan_defaults(cat, seen, now) or {}, own, tag=True)
    out = {key: merged[key] for key in own}
    out["usage_limits"] = limits_view(conn, customer, entity, out["usage_limits"], seen, now)
    return out


def take_topup_counts(controls: dict[str, Any]) -> list[tuple[str, int]]:
    """Take ``auto_topups[].purchase_limit.count`` out of controls about to be stored.

    The count is runtime state (top-ups bought in the current window), not a setting: as in Autumn
    it is never stored with the controls, and one above the limit is refused.
    """
    counts: list[tuple[str, int]] = []
    for topup in controls.get("auto_topups") or []:
        limit = topup.get("purchase_limit")
        if not isinstance(limit, dict) or "count" not in limit:
            continue
        count = limit.pop("count")
        if count > limit["limit"]:
            raise invalid(
                f"purchase_limit.count ({num(count)}) cannot exceed purchase_limit.limit "
                f"({num(limit['limit'])}) for feature {topup['feature_id']}",
                "invalid_request",
            )
        counts.append((str(topup["feature_id"]), int(count)))
    return counts


def save_topup_counts(conn: Connection, customer_pk: int, counts: list[tuple[str, int]], now: int) -> None:
    """From ``now`` on, that many top-ups of each feature count as bought in the current window."""
    for feature_id, count in counts:
        customers_repo.replace_topup_count(conn, customer_pk, feature_id, count, now)


def _without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else value
        for key, value in item.items()
        if value is not None
    }


def subscription_json(
    inst: Instance, cat: Catalog, expand_plan: bool, past_due: bool = False
) -> dict[str, Any]:
    plan = cat.plans_by_pk.get(inst.plan_pk)
    out: dict[str, Any] = {
        "id": inst.public_id,
        "plan_id": inst.plan_id,
        "auto_enable": bool(plan.auto_enable) if plan else False,
        "add_on": bool(plan.add_on) if plan else False,
        "status": "scheduled" if inst.status == "scheduled" else "active",
        "past_due": past_due,
        "canceled_at": inst.canceled_at,
        "expires_at": inst.expires_at,
        "trial_ends_at": inst.trial_ends_at,
        "started_at": inst.started_at,
        "current_period_start": inst.current_period_start,
        "current_period_end": inst.current_period_end,
        "quantity": num(inst.quantity),
    }
    if expand_plan and plan is not None:
        out["plan"] = plan_json(plan, cat)
    return out


def purchase_json(inst: Instance, cat: Catalog, expand_plan: bool) -> dict[str, Any]:
    plan = cat.plans_by_pk.get(inst.plan_pk)
    out: dict[str, Any] = {
        "plan_id": inst.plan_id,
        "expires_at": inst.expires_at,
        "started_at": inst.started_at,
        "quantity": num(inst.quantity),
    }
    if expand_plan and plan is not None:
        out["plan"] = plan_json(plan, cat)
    return out


def plans_json(
    instances: list[Instance],
    cat: Catalog,
    entity_pk: int | None,
    expand: set[str],
    past_due: frozenset[int] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One subject's subscriptions and purchases; ``past_due``: instances whose renewal charge failed."""
    subs, purchases = [], []
    for inst in instances:
        if inst.status == "expired":
            continue
        if entity_pk is not None and inst.entity_pk != entity_pk:
            continue
        if entity_pk is None and inst.entity_pk is not None:
            continue
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if plan is not None and plan.is_one_off:
            purchases.append(purchase_json(inst, cat, "purchases.plan" in expand))
        else:
            subs.append(subscription_json(inst, cat, "subscriptions.plan" in expand, inst.pk in past_due))
    return subs, purchases


def balances_and_flags(
    cat: Catalog, sources: list[Source], now: int, expand: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    by_feature: dict[str, list[Source]] = {}
    for s in sources:
        by_feature.setdefault(s.feature_id, []).append(s)
    balances: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    for fid, group in by_feature.items():
        feature = cat.features.get(fid)
        if feature is None:
            continue
        if feature.type == "boolean":
            flag = derive_flag(feature, group, now, "flags.feature" in expand)
            if flag is not None:
                flags[fid] = flag
        else:
            bal = derive_balance(feature, group, now, "balances.feature" in expand)
            if bal is not None:
                balances[fid] = bal
    return balances, flags


@dataclass
class Preloaded:
    """What :func:`customer_json` would read for one customer, read for a whole list page."""

    sources: list[Source] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    past_due: frozenset[int] = frozenset()


def customer_json(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    now: int,
    expand: set[str] | None = None,
    *,
    persist_resets: bool = False,
    preloaded: Preloaded | None = None,
) -> dict[str, Any]:
    """The Customer object; ``preloaded`` saves the reads a list page makes for all its customers at once."""
    expand = expand or set()
    if preloaded is not None:
        sources, instances = preloaded.sources, preloaded.instances
        apply_due_resets(sources, now)
    else:
        sources = load_sources(conn, customer.pk)
        if apply_due_resets(sources, now) and persist_resets:
            save_sources(conn, sources)
        instances = load_instances(conn, customer.pk)
    past_due = preloaded.past_due if preloaded is not None else past_due_instances(ctx, conn, [customer.pk])
    subs, purchases = plans_json(instances, cat, None, expand, past_due)
    balances, flags = balances_and_flags(cat, sources, now, expand)
    out: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "created_at": customer.created_at,
        "fingerprint": customer.fingerprint,
        "stripe_id": customer.stripe_id,
        "env": ctx.tenant.env,
        "metadata": customer.metadata,
        "send_email_receipts": customer.send_email_receipts,
        "billing_controls": controls_view(conn, cat, customer, None, sources, now),
        "subscriptions": subs,
        "purchases": purchases,
        "licenses": (
            pools_json(cat, preloaded.pools)
            if preloaded is not None
            else customer_licenses(conn, cat, customer.pk)
        ),
        "balances": balances,
        "flags": flags,
        "config": {"disable_pooled_balance": bool(customer.config.get("disable_pooled_balance", False))},
    }
    if customer.config.get("disable_overage_billing") is not None:  # echoed once set, as it overrides
        out["config"]["disable_overage_billing"] = bool(customer.config["disable_overage_billing"])
    if customer.stripe_id:
        out["processors"] = {"stripe": {"id": customer.stripe_id}}
    if "invoices" in expand:
        out["invoices"] = list((ctx.state.billing.invoice_lister or _no_invoices)(conn, customer))
    if "entities" in expand:
        out["entities"] = [
            {
                "id": e.id,
                "name": e.name,
                "customer_id": customer.id,
                "feature_id": e.feature_id,
                "created_at": e.created_at,
                "env": ctx.tenant.env,
            }
            for e in list_entities(conn, customer.pk)
        ]
    if "trials_used" in expand:
        out["trials_used"] = _trials_used(conn, cat, customer)
    if "rewards" in expand:
        out["rewards"] = {"discounts": []}
    if "referrals" in expand:
        out["referrals"] = _referrals(conn, customer)
    if "payment_method" in expand:
        # Paid billing stores cards; it can answer through this hook (None without a card on file).
        lookup = ctx.state.billing.payment_method
        out["payment_method"] = lookup(conn, customer) if lookup is not None else None
    return out


def past_due_instances(ctx: Ctx, conn: Connection, customer_pks: Sequence[int]) -> frozenset[int]:
    """The customers' plan instances whose renewal charge failed; paid billing knows them (none
    without it)."""
    lookup = ctx.state.billing.past_due
    return frozenset(lookup(conn, customer_pks)) if lookup is not None and customer_pks else frozenset()


def _no_invoices(conn: Connection, customer: CustomerRow) -> list[dict[str, Any]]:
    return []


def _trials_used(conn: Connection, cat: Catalog, customer: CustomerRow) -> list[dict[str, Any]]:
    return [
        {"plan_id": plan_id, "customer_id": customer.id, "fingerprint": customer.fingerprint}
        for plan_id in customers_repo.trial_plan_ids(conn, customer.pk)
    ]


def _referrals(conn: Connection, customer: CustomerRow) -> list[dict[str, Any]]:
    rows = customers_repo.referrals_by(conn, customer.pk)
    return [
        {
            "program_id": r.program_id,
            "customer": {"id": r.cid, "name": r.cname, "email": r.cemail},
            "reward_applied": bool(r.applied),
            "created_at": r.created_at,
        }
        for r in rows
    ]


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
    check_limits(controls)
    counts = take_topup_counts(controls)
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


def get_or_create(ctx: Ctx, params: GetOrCreateCustomerParams) -> dict[str, Any]:
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


def get(ctx: Ctx, params: GetCustomerParams) -> dict[str, Any]:
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


def list_customers(ctx: Ctx, params: ListCustomersParams) -> dict[str, Any]:
    limit = params.limit or 50
    if not 1 <= limit <= 5000:
        raise invalid("limit: must be between 1 and 5000", "invalid_inputs")
    descending = (params.sort_order or "desc") == "desc"
    after = _decode_cursor(params.start_cursor) if params.start_cursor else None
    start_at, end_at = _created_at_bounds(params.created_at_range)
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
        # A fixed number of queries for the whole page (sources, plan instances, license pools)
        # instead of a few per customer.
        pks = [c.pk for c in page]
        loaded = {pk: Preloaded() for pk in pks}
        for s in load_sources_for(conn, pks):
            loaded[s.customer_pk].sources.append(s)
        if pks:
            for r in customers_repo.live_instance_rows(conn, pks):
                loaded[r.customer_pk].instances.append(instance_from_row(r))
        for pk, pools in licenses_repo.pools_for(conn, pks).items():
            loaded[pk].pools = pools
        past_due = past_due_instances(ctx, conn, pks)
        for preloaded in loaded.values():
            preloaded.past_due = past_due
        out = [
            customer_json(ctx, conn, cat, c, ctx.now(c.clock_offset_ms), preloaded=loaded[c.pk]) for c in page
        ]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].pk) if len(rows) > limit else None
    return {"list": out, "next_cursor": next_cursor}


def update_customer(ctx: Ctx, params: UpdateCustomerParams) -> dict[str, Any]:
    """Change what the request sends; a field sent as ``null`` is cleared (``metadata`` to ``{}``)."""
    customer_id = params.customer_id
    sent = params.model_fields_set
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, customer_id, lock=True)
        changes: dict[str, Any] = {}
        topup_counts: list[tuple[str, int]] = []
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
            sent_controls = controls_part(params.billing_controls)
            merged = controls_json(customer.billing_controls)
            for key in CONTROL_KEYS:
                if sent_controls.get(key) is not None:
                    merged[key] = sent_controls[key]
            merged = controls_json(merged)
            check_limits(merged)
            topup_counts = take_topup_counts(merged)
            ids = [s.get("feature_id") for s in merged["spend_limits"]]
            if len(ids) != len(set(ids)):
                raise invalid("billing_controls.spend_limits: duplicate feature_id", "invalid_inputs")
            changes["billing_controls"] = merged
        new_id = params.new_customer_id
        if new_id and new_id != customer_id:
            if get_customer(conn, ctx.tenant, new_id) is not None:
                raise ApiError(409, "customer_already_exists", f"Customer {new_id} already exists")
            changes["id"] = new_id
        save_topup_counts(conn, customer.pk, topup_counts, now)
        if changes:
            customers_repo.update_customer(conn, customer.pk, changes)
            customer = customers_repo.customer_at(conn, customer.pk)
        return customer_json(ctx, conn, cat, customer, now, persist_resets=True)


def delete_customer(ctx: Ctx, params: DeleteCustomerParams) -> dict[str, Any]:
    with ctx.db.write() as conn:
        customer = get_customer(conn, ctx.tenant, params.customer_id, lock=True)
        if customer is None:
            raise customer_not_found(params.customer_id)
        mirror = ctx.state.billing.subscription_mirror
        if mirror is not None:  # its Stripe subscriptions canceled (and customer deleted) after commit
            mirror.before_customer_delete(conn, customer.pk, bool(params.delete_in_stripe))
        customers_repo.delete_customer(conn, customer.pk)
    return {"success": True}


def entity_subject_json(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow,
    now: int,
    expand: set[str] | None = None,
) -> dict[str, Any]:
    expand = expand or set()
    sources = scoped(load_sources(conn, customer.pk), entity)
    apply_due_resets(sources, now)
    instances = load_instances(conn, customer.pk)
    subs, purchases = plans_json(
        instances, cat, entity.pk, expand, past_due_instances(ctx, conn, [customer.pk])
    )
    balances, flags = balances_and_flags(cat, sources, now, expand)
    out: dict[str, Any] = {
        "id": entity.id,
        "name": entity.name,
        "customer_id": customer.id,
        "feature_id": entity.feature_id,
        "created_at": entity.created_at,
        "env": ctx.tenant.env,
        "subscriptions": subs,
        "purchases": purchases,
        "balances": balances,
        "flags": flags,
        "billing_controls": controls_view(conn, cat, customer, entity, sources, now),
    }
    if "invoices" in expand:
        out["invoices"] = []
    return out
