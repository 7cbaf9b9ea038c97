"""``billing.import``: image a customer's plans from another billing system into this server.

As Autumn's import, it is read-only against processors: it writes only this server's database (no
Stripe or RevenueCat call, no charge, no webhook) and the processor that billed a plan keeps billing
it (an imported plan gets no ``subscription_billing`` row, so this server never renews or charges it).

The payload is the customer's desired state at the customer level:

* the customer is created when missing (without the default plans: the import brings its plans) or
  its name, email and fingerprint are updated; a RevenueCat ``app_user_id`` is recorded when the
  customer has none; a Stripe id is set only on a customer created here;
* each billable's plan (latest version, or ``version``) becomes a plan instance with ``status``
  (``active``, ``trialing``, ``past_due``: active; ``canceled``, ``expired``: ended now, with no
  access), ``quantity``, ``feature_quantities`` and per-line ``balances`` (``usage`` taken from the
  line's grant, or an explicit ``balance``; ``next_reset_at``); its resets follow the billing anchor
  (``billing_cycle_anchor``, else the linked subscription's period end, else ``started_at``, else the
  import time).  The processor owns the billing cycle: the instance gets no current period and no
  trial end of its own here (this server would otherwise try to renew or convert it);
* a linked Stripe subscription (``link.subscription_id``) is READ through the customer's Stripe
  processor, when there is one, for what the payload leaves out: the status, the start, the period
  end (the anchor), and a cancellation at period end (the plan then runs until that end);
* a plan already active for the customer from the same processor is left untouched (``skipped``);
* an active customer-level plan absent from the payload is expired (``expired``);
* a plan whose imaged state may be wrong is imaged and flagged (``mismatch``): a resetting plan with
  no billing anchor, a paid recurring Stripe plan with no linked subscription.

``dry_run`` computes the same outcome and persists nothing.  Everything happens in one transaction
under the customer's billing lock: any refusal leaves the customer as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import stripe
from sqlalchemy import Connection

from autumn_sdk._generated.models import DfuFlashBillablePlan, DfuFlashParams
from reference_server.engine.intervals import boundary
from reference_server.errors import ApiError, invalid, plan_not_found
from reference_server.processors.registry import stripe_processor_for
from reference_server.service.context import Ctx
from reference_server.service.customer_controls import controls_json
from reference_server.service.customer_views import customer_json
from reference_server.service.extra_fields import extra_field
from reference_server.service.subscriptions import (
    Instance,
    activate_plan,
    expire_instance,
    load_instances,
    schedule_maintenance,
)
from reference_server.store import imported_billing
from reference_server.store.billing_lock import billing_lock
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow, get_customer

ENDED_STATUSES = ("canceled", "expired")
NO_PROCESSOR = "none"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _unsupported(message: str) -> ApiError:
    return ApiError(400, "unsupported_field", f"billing.import: {message} is not supported")


def _ms(value: Any) -> int | None:
    return int(value) if value is not None else None


@dataclass(frozen=True)
class Hydration:
    """What a linked Stripe subscription says, for the fields the payload left out."""

    now: int = 0
    status: str | None = None
    started_at: int | None = None
    period_end: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None


@dataclass
class _Planned:
    """One billable's plan, resolved and checked before anything is written."""

    plan: Plan
    given: DfuFlashBillablePlan
    processor: str | None
    subscription_id: str | None
    schedule_id: str | None
    anchor: int | None
    started_at: int | None
    status: str | None
    quantities: dict[str, float]
    existing: Instance | None
    hydrated: Hydration = field(default_factory=lambda: Hydration())

    @property
    def effective_status(self) -> str:
        """The payload's status wins; the linked subscription's fills a gap; else active."""
        return self.status or self.hydrated.status or "active"

    @property
    def start(self) -> int | None:
        return self.started_at if self.started_at is not None else self.hydrated.started_at

    @property
    def resolved_anchor(self) -> int | None:
        """The payload's anchor, else the linked subscription's period end, else the plan's start."""
        if self.anchor is not None:
            return self.anchor
        if self.hydrated.period_end is not None:
            return self.hydrated.period_end
        return self.start

    def ends_at(self) -> int | None:
        """A future end of the linked subscription (canceled at its period end) keeps the plan until then;
        a plan imaged as canceled or expired without one ends now."""
        end = self.hydrated.ended_at
        if self.effective_status == "expired":
            return None
        return end if end is not None and end > self.hydrated.now else None


def _is_recurring(plan: Plan) -> bool:
    prices = [plan.price] if plan.price else []
    prices += [i["price"] for i in plan.items if i.get("price")]
    return any(p.get("interval") not in (None, "one_off") for p in prices)


def _resets(plan: Plan, cat: Catalog) -> list[tuple[str, str, int]]:
    """(feature, interval, count) of the plan's resetting balance lines."""
    out = []
    for item in plan.items:
        feature = cat.features.get(item["feature_id"])
        if (
            feature is None
            or feature.type == "boolean"
            or (feature.type == "metered" and not feature.consumable)
        ):
            continue
        reset = item.get("reset") or {}
        interval = reset.get("interval")
        if interval not in (None, "one_off"):
            out.append((feature.id, str(interval), int(reset.get("interval_count") or 1)))
    return out


def _next_after(anchor: int, interval: str, count: int, now: int) -> int:
    """The first boundary ``anchor + k * interval`` (any integer k, so an anchor ahead of now counts too)
    strictly after ``now``."""
    k = 0
    if anchor > now:
        while boundary(anchor, interval, count, k - 1) > now:
            k -= 1
        return boundary(anchor, interval, count, k)
    while boundary(anchor, interval, count, k) <= now:
        k += 1
    return boundary(anchor, interval, count, k)


def _instance_processor(processors: dict[int, str | None], inst: Instance) -> str:
    """The processor an existing instance belongs to (made here: Stripe's, as Autumn counts them)."""
    if inst.pk in processors:
        return processors[inst.pk] or "stripe"
    return "stripe"


def _plan_of(cat: Catalog, given: DfuFlashBillablePlan) -> Plan:
    plan_id = given.plan_id
    version = given.version
    plan = cat.plan_version(plan_id, version)  # a fractional version names no plan, as in billing.attach
    if plan is None:
        raise plan_not_found(plan_id)
    return plan


def _quantities(plan: Plan, given: DfuFlashBillablePlan) -> dict[str, float]:
    out: dict[str, float] = {}
    priced = {
        i["feature_id"] for i in plan.items if (i.get("price") or {}).get("billing_method") == "prepaid"
    }
    for fq in given.feature_quantities or []:
        fid = fq.feature_id
        if fid not in priced:
            raise invalid(
                f"feature_quantities: {fid} is not a prepaid feature of plan {plan.id}", "invalid_inputs"
            )
        quantity = float(fq.quantity)
        if quantity < 0:
            raise invalid(f"feature_quantities: the quantity of {fid} must not be negative", "invalid_inputs")
        out[fid] = quantity
    return out


def _plan_billables(
    cat: Catalog, params: DfuFlashParams, instances: list[Instance], processors: dict[int, str | None]
) -> list[_Planned]:
    planned: list[_Planned] = []
    for position, billable in enumerate(params.billables):
        given = billable.plan
        if given is None:
            raise invalid(f"billables[{position}]: a billable must have a plan", "invalid_inputs")
        if extra_field(billable, "phases"):  # not in the spec's billable: an extra field
            raise _unsupported("phases")
        plan = _plan_of(cat, given)
        processor = billable.processor
        link = billable.link
        existing = next(
            (
                i
                for i in instances
                if i.status == "active"
                and i.entity_pk is None
                and i.plan_pk == plan.pk
                and _instance_processor(processors, i) == (processor or "stripe")
            ),
            None,
        )
        quantity = given.quantity
        if quantity is not None and quantity <= 0:
            raise invalid(f"billables[{position}].plan.quantity: must be positive", "invalid_inputs")
        planned.append(
            _Planned(
                plan=plan,
                given=given,
                processor=processor,
                subscription_id=link.subscription_id if link is not None else None,
                schedule_id=link.schedule_id if link is not None else None,
                anchor=_ms(billable.billing_cycle_anchor),
                started_at=_ms(given.started_at),
                status=given.status,
                quantities=_quantities(plan, given),
                existing=existing,
            )
        )
    recurring_base = {
        p.processor for p in planned if not p.plan.add_on and _is_recurring(p.plan) and p.processor
    }
    if {"stripe", "revenuecat"} <= recurring_base:
        raise ApiError(
            400,
            "cross_processor_conflict",
            "billing.import: a recurring Stripe base plan and a recurring RevenueCat base plan cannot be "
            "imported together",
        )
    return planned


def _line_behavior(source: Any) -> str:
    method = (source.price or {}).get("billing_method") if source.price else None
    if method == "prepaid":
        return "prepaid"
    if method == "usage_based":
        return "usage_based"
    return "included"


def _matches(source: Any, balance: dict[str, Any]) -> bool:
    if source.feature_id != balance["feature_id"]:
        return False
    flt = balance.get("filter") or {}
    if "interval" in flt:
        wanted = flt["interval"]
        line = source.interval if source.interval not in (None, "one_off") else "lifetime"
        if (wanted if wanted is not None else "lifetime") != line:
            return False
    behavior = flt.get("billing_behavior")
    return not (behavior and _line_behavior(source) != behavior)


def _apply_balances(conn: Connection, instance_pk: int, balances: list[dict[str, Any]]) -> None:
    sources = imported_billing.instance_sources(conn, instance_pk)
    for balance in balances:
        fid = balance["feature_id"]
        matches = [s for s in sources if _matches(s, balance)]
        if not matches:
            raise ApiError(
                400,
                "flash_balance_no_match",
                f"billing.import: no entitlement line matched balance for feature '{fid}'",
            )
        if len(matches) > 1:
            raise ApiError(
                400,
                "flash_balance_ambiguous",
                f"billing.import: balance filter for feature '{fid}' matched multiple lines; add a filter "
                "to disambiguate",
            )
        source = matches[0]
        value = float(source.balance)
        if balance.get("balance") is not None:
            value = float(balance["balance"])
        elif balance.get("usage") is not None:
            remaining = value - float(balance["usage"])
            value = remaining if source.usage_allowed else max(0.0, remaining)
        next_reset = balance.get("next_reset_at")
        imported_billing.set_source_balance(
            conn, source.pk, value, int(next_reset) if next_reset is not None else None
        )


def _mismatch(p: _Planned, cat: Catalog) -> str | None:
    if p.resolved_anchor is None and _resets(p.plan, cat):
        return (
            f"plan '{p.plan.id}' has resetting balances but no billing anchor: its resets follow the "
            "import time; provide started_at or billing_cycle_anchor"
        )
    if p.processor == "stripe" and not p.subscription_id and not p.plan.is_free and _is_recurring(p.plan):
        return (
            f"plan '{p.plan.id}' is a paid recurring plan with no linked subscription; provide "
            "link.subscription_id"
        )
    return None


def _image(
    ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, p: _Planned, now: int
) -> Instance:
    """Create the plan instance of one billable."""
    started_at = p.start if p.start is not None else now
    quantity = float(p.given.quantity or 1)
    ends_at = p.ends_at()
    if p.effective_status in ENDED_STATUSES and ends_at is None:
        pk = imported_billing.insert_ended_instance(
            conn, customer.pk, p.plan.pk, p.plan.id, quantity, started_at, now
        )
    else:
        anchor = p.resolved_anchor if p.resolved_anchor is not None else started_at
        overrides: dict[tuple[str, str | None], int] = {
            (fid, interval): _next_after(anchor, interval, count, now)
            for fid, interval, count in _resets(p.plan, cat)
        }
        pk = activate_plan(
            conn,
            cat,
            customer=customer,
            entity=None,
            plan=p.plan,
            now=now,
            quantity=quantity,
            feature_quantities=p.quantities,
            next_reset_overrides=overrides,
        )
        imported_billing.set_started_at(conn, pk, started_at)
        if ends_at is not None:  # canceled at the processor, running until its period ends
            imported_billing.end_later(conn, pk, p.hydrated.canceled_at or now, ends_at)
            schedule_maintenance(conn, customer.pk, ends_at)
        # the balances' filters tell an absent interval from a null one: read as the request's JSON
        balances = [b.model_dump(mode="json", exclude_unset=True) for b in p.given.balances or []]
        _apply_balances(conn, pk, balances)
    imported_billing.record_imported_plan(
        conn,
        pk,
        p.processor,
        p.effective_status,
        p.subscription_id,
        p.schedule_id,
        p.anchor,
        now,
    )
    return next(i for i in load_instances(conn, customer.pk, include_expired=True) if i.pk == pk)


def _upsert_customer(ctx: Ctx, conn: Connection, params: DfuFlashParams) -> CustomerRow:
    customer_id = params.customer_id
    data = params.customer_data.model_dump(exclude_unset=True) if params.customer_data is not None else {}
    email = data.get("email")
    if email is not None and not EMAIL_RE.match(str(email)):
        raise invalid(f"customer_data.email: invalid email address {email}", "invalid_inputs")
    identities = {p.type: p.id for p in params.processors or []}
    now = ctx.now()
    customer = get_customer(conn, ctx.tenant, customer_id, lock=True)
    if customer is None:
        values = {k: data.get(k) for k in ("name", "email", "fingerprint")}
        values["stripe_id"] = identities.get("stripe")
        pk = imported_billing.insert_bare_customer(
            conn, ctx.tenant.org_pk, ctx.tenant.env, customer_id, values, controls_json({}), now
        )
    else:
        pk = customer.pk
        changes = {
            k: data[k]
            for k in ("name", "email", "fingerprint")
            if data.get(k) is not None and data[k] != getattr(customer, k)
        }
        imported_billing.update_customer_fields(conn, pk, changes)
    if "revenuecat" in identities:
        imported_billing.seed_processor_identity(conn, pk, "revenuecat", identities["revenuecat"], now)
    found = get_customer(conn, ctx.tenant, customer_id, lock=True)
    assert found is not None
    return found


STRIPE_STATUS = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "unpaid": "past_due",
    "canceled": "expired",
    "incomplete_expired": "expired",
}


def _seconds(value: Any) -> int | None:
    return int(value) * 1000 if value else None


def _period_end(subscription: dict[str, Any]) -> int | None:
    """The latest period end of a Stripe subscription (on its items since API 2025-03-31)."""
    ends = [item.get("current_period_end") for item in (subscription.get("items") or {}).get("data") or []]
    ends.append(subscription.get("current_period_end"))
    present = [int(e) for e in ends if e]
    return max(present) * 1000 if present else None


def _hydrate(ctx: Ctx, conn: Connection, customer: CustomerRow, planned: list[_Planned], now: int) -> None:
    """Fill what the payload left out from each linked Stripe subscription, read (never written) through
    the customer's Stripe processor.  Without Stripe, or for a subscription Stripe cannot find, the plan
    is imaged from the payload alone, as Autumn does."""
    linked = [p for p in planned if p.processor == "stripe" and p.subscription_id and p.existing is None]
    if not linked:
        return
    from reference_server.billing.processor_choice import processors_of

    stripe_processor = stripe_processor_for(processors_of(ctx.state), conn, customer.pk)
    if stripe_processor is None:
        return
    seen: dict[str, Hydration | None] = {}
    for p in linked:
        sub_id = str(p.subscription_id)
        if sub_id not in seen:
            try:
                sub: dict[str, Any] = stripe_processor.client.v1.subscriptions.retrieve(sub_id).to_dict()
            except stripe.StripeError:
                seen[sub_id] = None
                continue
            cancel_at = _seconds(sub.get("cancel_at"))
            if sub.get("cancel_at_period_end"):
                cancel_at = cancel_at or _period_end(sub)
            seen[sub_id] = Hydration(
                now=now,
                status=STRIPE_STATUS.get(str(sub.get("status"))),
                started_at=_seconds(sub.get("start_date")),
                period_end=_period_end(sub),
                canceled_at=_seconds(sub.get("canceled_at")),
                ended_at=_seconds(sub.get("ended_at")) or cancel_at,
            )
        found = seen[sub_id]
        if found is not None:
            p.hydrated = found


def _flash(ctx: Ctx, conn: Connection, params: DfuFlashParams) -> tuple[CustomerRow, list[dict[str, Any]]]:
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer = _upsert_customer(ctx, conn, params)
    now = ctx.now(customer.clock_offset_ms)
    instances = load_instances(conn, customer.pk)
    processors = imported_billing.processor_of_instances(conn, [i.pk for i in instances])
    planned = _plan_billables(cat, params, instances, processors)
    _hydrate(ctx, conn, customer, planned, now)
    flashed: list[dict[str, Any]] = []
    for p in planned:
        if p.existing is not None:
            flashed.append(
                {
                    "plan_id": p.plan.id,
                    "processor": p.processor or NO_PROCESSOR,
                    "customer_product_id": p.existing.public_id,
                    "status": p.existing.status,
                    "skipped": True,
                    "reason": "already_active",
                }
            )
            continue
        inst = _image(ctx, conn, cat, customer, p, now)
        entry: dict[str, Any] = {
            "plan_id": p.plan.id,
            "processor": p.processor or NO_PROCESSOR,
            "customer_product_id": inst.public_id,
            "status": p.effective_status,
            "skipped": False,
        }
        reason = _mismatch(p, cat)
        if reason is not None:
            entry.update(mismatch=True, reason=reason)
        flashed.append(entry)
    if planned:
        desired = {p.plan.pk for p in planned}
        for inst in instances:
            if inst.status != "active" or inst.entity_pk is not None or inst.plan_pk in desired:
                continue
            expire_instance(conn, inst.pk, now)
            imported_billing.mark_canceled(conn, inst.pk, now)
            flashed.append(
                {
                    "plan_id": inst.plan_id,
                    "processor": _instance_processor(processors, inst),
                    "customer_product_id": inst.public_id,
                    "status": "expired",
                    "skipped": False,
                    "expired": True,
                    "reason": "expired_not_in_desired_state",
                }
            )
    return customer, flashed


def import_billing(ctx: Ctx, params: DfuFlashParams) -> dict[str, Any]:
    customer_id = params.customer_id
    if extra_field(params, "entities"):  # not in the spec's request: an extra field
        raise _unsupported("entities")
    lock = billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
    with lock, ctx.db.write() as conn:
        if params.dry_run:
            savepoint = conn.begin_nested()
            try:
                _, flashed = _flash(ctx, conn, params)
            finally:
                savepoint.rollback()
            return {"customer_id": customer_id, "flashed": flashed, "customer": None}
        customer, flashed = _flash(ctx, conn, params)
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer_out = customer_json(ctx, conn, cat, customer, ctx.now(customer.clock_offset_ms))
    return {"customer_id": customer_id, "flashed": flashed, "customer": customer_out}
