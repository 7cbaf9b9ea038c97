"""The Customer (and entity subject) object as the API shows it: subscriptions, purchases, balances
and flags, billing controls, invoices, trials used and referrals, read in a fixed number of
statements per page (:mod:`reference_server.store.customers`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    BalanceJson,
    BillingControlsJson,
    CustomerConfigJson,
    CustomerEntityJson,
    CustomerFlagJson,
    CustomerJson,
    CustomerPurchaseJson,
    CustomerReferralJson,
    CustomerRewardsDiscountJson,
    CustomerSubscriptionJson,
    CustomerTrialsUsedJson,
    EntityBillingControlsJson,
    EntityJson,
)
from reference_server.engine.balances import derive_balance, derive_flag
from reference_server.engine.billing.money import minor_to_json
from reference_server.engine.entitlements import Source, num
from reference_server.engine.plan_controls import KEYS, overlay
from reference_server.engine.resets import apply_due_resets
from reference_server.service.context import Ctx
from reference_server.service.customer_controls import controls_json
from reference_server.service.invoices import customer_invoice_json
from reference_server.service.license_pools import customer_licenses, pools_json
from reference_server.service.plan_controls import plan_defaults
from reference_server.service.plans import plan_json
from reference_server.service.subscriptions import (
    Instance,
    instance_from_row,
    load_instances,
)
from reference_server.service.usage_limits import PageWindows, limits_view
from reference_server.store import customers as customers_repo
from reference_server.store import licenses as licenses_repo
from reference_server.store.catalog import Catalog
from reference_server.store.licenses import Pool
from reference_server.store.subjects import (
    CustomerRow,
    EntityRow,
    list_entities,
    load_sources,
    load_sources_for,
    save_sources,
    scoped,
)
from reference_server.store.subscription_discounts import customer_discounts


def controls_view(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    sources: list[Source],
    now: int,
    windows: PageWindows | None = None,
) -> dict[str, Any]:
    """The subject's controls as answered: its own entries (``source: customer``) over its current
    plans' defaults (``source: plan``), each usage limit with its window's ``usage`` (``windows``:
    those of a list page's customers, read once for the page)."""
    own = controls_json(
        entity.billing_controls if entity else customer.billing_controls, entity=entity is not None
    )
    seen = scoped(sources, entity) if entity is not None else [s for s in sources if s.entity_pk is None]
    merged = overlay(plan_defaults(cat, seen, now) or {}, own, tag=True)
    out: dict[str, Any] = {key: merged[key] for key in KEYS if key in own}
    out["usage_limits"] = limits_view(conn, customer, entity, out["usage_limits"], seen, now, windows)
    return out


def env_json(env: str) -> Literal["sandbox", "live"]:
    """A tenant's environment as answers name it."""
    return "live" if env == "live" else "sandbox"


def entity_controls_json(controls: Mapping[str, Any]) -> EntityBillingControlsJson:
    """An entity's :func:`controls_view` as its answer types it (an entity has no auto top-ups)."""
    out: EntityBillingControlsJson = {}
    if "spend_limits" in controls:
        out["spend_limits"] = controls["spend_limits"]
    if "usage_limits" in controls:
        out["usage_limits"] = controls["usage_limits"]
    if "usage_alerts" in controls:
        out["usage_alerts"] = controls["usage_alerts"]
    if "overage_allowed" in controls:
        out["overage_allowed"] = controls["overage_allowed"]
    return out


def customer_controls_json(controls: Mapping[str, Any]) -> BillingControlsJson:
    """A customer's :func:`controls_view` as its answer types it."""
    out: BillingControlsJson = {}
    if "auto_topups" in controls:
        out["auto_topups"] = controls["auto_topups"]
    if "spend_limits" in controls:
        out["spend_limits"] = controls["spend_limits"]
    if "usage_limits" in controls:
        out["usage_limits"] = controls["usage_limits"]
    if "usage_alerts" in controls:
        out["usage_alerts"] = controls["usage_alerts"]
    if "overage_allowed" in controls:
        out["overage_allowed"] = controls["overage_allowed"]
    return out


def subscription_json(
    inst: Instance, cat: Catalog, expand_plan: bool, past_due: bool = False
) -> CustomerSubscriptionJson:
    plan = cat.plans_by_pk.get(inst.plan_pk)
    out: CustomerSubscriptionJson = {
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


def purchase_json(inst: Instance, cat: Catalog, expand_plan: bool) -> CustomerPurchaseJson:
    plan = cat.plans_by_pk.get(inst.plan_pk)
    out: CustomerPurchaseJson = {
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
) -> tuple[list[CustomerSubscriptionJson], list[CustomerPurchaseJson]]:
    """One subject's subscriptions and purchases; ``past_due``: instances whose renewal charge failed."""
    subs: list[CustomerSubscriptionJson] = []
    purchases: list[CustomerPurchaseJson] = []
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
) -> tuple[dict[str, BalanceJson], dict[str, CustomerFlagJson]]:
    by_feature: dict[str, list[Source]] = {}
    for s in sources:
        by_feature.setdefault(s.feature_id, []).append(s)
    balances: dict[str, BalanceJson] = {}
    flags: dict[str, CustomerFlagJson] = {}
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
    """What :func:`customer_json` (or :func:`entity_subject_json`) would read for one customer, read
    for a whole list page."""

    sources: list[Source] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    past_due: frozenset[int] = frozenset()
    windows: PageWindows | None = None  # the page's usage-limit windows (None: read for this customer)


def preload_page(ctx: Ctx, conn: Connection, pks: list[int], *, pools: bool = False) -> dict[int, Preloaded]:
    """What a list page's customers (``pks``) would each read, in a fixed number of queries for the
    whole page (their sources and plan instances, the past-due set, with ``pools`` their license
    pools; usage-limit windows once the first of them with usage limits asks) instead of a few each."""
    windows = PageWindows(pks)
    loaded = {pk: Preloaded(windows=windows) for pk in pks}
    for s in load_sources_for(conn, pks):
        loaded[s.customer_pk].sources.append(s)
    if pks:
        for r in customers_repo.live_instance_rows(conn, pks):
            loaded[r.customer_pk].instances.append(instance_from_row(r))
    if pools:
        for pk, customer_pools in licenses_repo.pools_for(conn, pks).items():
            loaded[pk].pools = customer_pools
    past_due = past_due_instances(ctx, conn, pks)
    for preloaded in loaded.values():
        preloaded.past_due = past_due
    return loaded


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
) -> CustomerJson:
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
    windows = preloaded.windows if preloaded is not None else None
    subs, purchases = plans_json(instances, cat, None, expand, past_due)
    balances, flags = balances_and_flags(cat, sources, now, expand)
    config: CustomerConfigJson = {
        "disable_pooled_balance": bool(customer.config.get("disable_pooled_balance", False))
    }
    if customer.config.get("disable_overage_billing") is not None:  # echoed once set, as it overrides
        config["disable_overage_billing"] = bool(customer.config["disable_overage_billing"])
    out: CustomerJson = {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "created_at": customer.created_at,
        "fingerprint": customer.fingerprint,
        "stripe_id": customer.stripe_id,
        "env": env_json(ctx.tenant.env),
        "metadata": customer.metadata,
        "send_email_receipts": customer.send_email_receipts,
        "billing_controls": customer_controls_json(
            controls_view(conn, cat, customer, None, sources, now, windows)
        ),
        "subscriptions": subs,
        "purchases": purchases,
        "licenses": (
            pools_json(cat, preloaded.pools)
            if preloaded is not None
            else customer_licenses(conn, cat, customer.pk)
        ),
        "balances": balances,
        "flags": flags,
        "config": config,
    }
    if customer.stripe_id:
        out["processors"] = {"stripe": {"id": customer.stripe_id}}
    if "invoices" in expand:
        lister = ctx.state.billing.invoice_lister
        out["invoices"] = (
            [customer_invoice_json(row) for row in lister(conn, customer)] if lister is not None else []
        )
    if "entities" in expand:
        out["entities"] = [
            CustomerEntityJson(
                id=e.id,
                name=e.name,
                customer_id=customer.id,
                feature_id=e.feature_id,
                created_at=e.created_at,
                env=env_json(ctx.tenant.env),
            )
            for e in list_entities(conn, customer.pk)
        ]
    if "trials_used" in expand:
        out["trials_used"] = _trials_used(conn, cat, customer)
    if "rewards" in expand:
        out["rewards"] = {"discounts": _discounts(conn, customer)}
    if "referrals" in expand:
        out["referrals"] = _referrals(conn, customer)
    if "payment_method" in expand:
        # Paid billing stores cards; it can answer through this hook (None without a card on file).
        lookup = ctx.state.billing.payment_method
        out["payment_method"] = lookup(conn, customer) if lookup is not None else None
    return out


_DiscountType = Literal[
    "percentage_discount", "fixed_discount", "free_product", "invoice_credits", "feature_grant"
]
_DISCOUNT_TYPES: dict[str, _DiscountType] = {
    "percentage_discount": "percentage_discount",
    "fixed_discount": "fixed_discount",
    "free_product": "free_product",
    "invoice_credits": "invoice_credits",
    "feature_grant": "feature_grant",
}
"""A stored discount's reward type (rewards.create writes only these) as the answer types it."""

_DURATION_TYPES: dict[str, Literal["one_off", "months", "forever"]] = {
    "one_off": "one_off",
    "months": "months",
    "forever": "forever",
}
"""A stored coupon's duration type (rewards.create writes only these) as the answer types it."""


def _discounts(conn: Connection, customer: CustomerRow) -> list[CustomerRewardsDiscountJson]:
    """The coupons in force on the customer's subscriptions (``discounts`` of billing changes)."""
    return [
        {
            "id": d.reward_id,
            "name": d.name,
            "type": _DISCOUNT_TYPES[d.type],
            "discount_value": num(float(d.value)),
            "duration_type": _DURATION_TYPES[d.duration_type],
            "duration_value": d.duration_length,
            "currency": d.currency if d.type != "percentage_discount" else None,
            "start": d.started_at,
            "end": d.ended_at,
            "subscription_id": d.subscription_id,
            "total_discount_amount": minor_to_json(d.total_discount, d.currency),
        }
        for d in customer_discounts(conn, customer.pk)
    ]


def past_due_instances(ctx: Ctx, conn: Connection, customer_pks: Sequence[int]) -> frozenset[int]:
    """The customers' plan instances whose renewal charge failed; paid billing knows them (none
    without it)."""
    lookup = ctx.state.billing.past_due
    return frozenset(lookup(conn, customer_pks)) if lookup is not None and customer_pks else frozenset()


def _trials_used(conn: Connection, cat: Catalog, customer: CustomerRow) -> list[CustomerTrialsUsedJson]:
    if customer.id is None:  # only a customer with an id is attached to, so only it has had trials
        return []
    return [
        {"plan_id": plan_id, "customer_id": customer.id, "fingerprint": customer.fingerprint}
        for plan_id in customers_repo.trial_plan_ids(conn, customer.pk)
    ]


def _referrals(conn: Connection, customer: CustomerRow) -> list[CustomerReferralJson]:
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


def entity_subject_json(
    ctx: Ctx,
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow,
    now: int,
    expand: set[str] | None = None,
    *,
    preloaded: Preloaded | None = None,
) -> EntityJson:
    """The entity as a subject; ``preloaded``: its customer's sources, plan instances, the past-due
    set and usage-limit windows, read once for a whole list page (``pools`` is not used)."""
    expand = expand or set()
    if preloaded is not None:
        sources = scoped(preloaded.sources, entity)
        instances = preloaded.instances
        past_due = preloaded.past_due
    else:
        sources = scoped(load_sources(conn, customer.pk), entity)
        instances = load_instances(conn, customer.pk)
        past_due = past_due_instances(ctx, conn, [customer.pk])
    apply_due_resets(sources, now)
    windows = preloaded.windows if preloaded is not None else None
    subs, purchases = plans_json(instances, cat, entity.pk, expand, past_due)
    balances, flags = balances_and_flags(cat, sources, now, expand)
    out: EntityJson = {
        "id": entity.id,
        "name": entity.name,
        "customer_id": customer.id,
        "feature_id": entity.feature_id,
        "created_at": entity.created_at,
        "env": env_json(ctx.tenant.env),
        "subscriptions": subs,
        "purchases": purchases,
        "balances": balances,
        "flags": flags,
        "billing_controls": entity_controls_json(
            controls_view(conn, cat, customer, entity, sources, now, windows)
        ),
    }
    if "invoices" in expand:
        out["invoices"] = []
    return out
