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

This module runs the import; the billables are resolved by :mod:`.import_billables`, the linked Stripe
subscriptions read by :mod:`.import_stripe` and the plan instances imaged by :mod:`.import_instances`.
"""

from __future__ import annotations

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import DfuFlashResultFlashedJson, DfuFlashResultJson
from autumn_sdk._generated.models import DfuFlashParams
from reference_server.billing.import_billables import (
    PlannedImport,
    instance_processor,
    plan_billables,
    unsupported,
)
from reference_server.billing.import_instances import image_plan, mismatch
from reference_server.billing.import_stripe import read_subscriptions
from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.service.customer_controls import controls_json
from reference_server.service.customer_views import customer_json
from reference_server.service.customers import EMAIL_RE
from reference_server.service.extra_fields import extra_field
from reference_server.service.subscriptions import expire_instance, load_instances
from reference_server.store import imported_billing
from reference_server.store.billing_lock import billing_lock
from reference_server.store.subjects import CustomerRow, get_customer

NO_PROCESSOR = "none"


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


def _hydrate(
    ctx: Ctx, conn: Connection, customer: CustomerRow, planned: list[PlannedImport], now: int
) -> None:
    """Fill what the payload left out from each linked Stripe subscription (:mod:`.import_stripe`)."""
    linked = [p for p in planned if p.processor == "stripe" and p.subscription_id and p.existing is None]
    found = read_subscriptions(
        ctx, conn, customer.pk, list(dict.fromkeys(str(p.subscription_id) for p in linked)), now
    )
    for p in linked:
        hydrated = found.get(str(p.subscription_id))
        if hydrated is not None:
            p.hydrated = hydrated


def _flash(
    ctx: Ctx, conn: Connection, params: DfuFlashParams
) -> tuple[CustomerRow, list[DfuFlashResultFlashedJson]]:
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer = _upsert_customer(ctx, conn, params)
    now = ctx.now(customer.clock_offset_ms)
    instances = load_instances(conn, customer.pk)
    processors = imported_billing.processor_of_instances(conn, [i.pk for i in instances])
    planned = plan_billables(cat, params, instances, processors)
    _hydrate(ctx, conn, customer, planned, now)
    flashed: list[DfuFlashResultFlashedJson] = []
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
        inst = image_plan(conn, cat, customer, p, now)
        entry: DfuFlashResultFlashedJson = {
            "plan_id": p.plan.id,
            "processor": p.processor or NO_PROCESSOR,
            "customer_product_id": inst.public_id,
            "status": p.effective_status,
            "skipped": False,
        }
        reason = mismatch(p, cat)
        if reason is not None:
            entry["mismatch"] = True
            entry["reason"] = reason
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
                    "processor": instance_processor(processors, inst),
                    "customer_product_id": inst.public_id,
                    "status": "expired",
                    "skipped": False,
                    "expired": True,
                    "reason": "expired_not_in_desired_state",
                }
            )
    return customer, flashed


def import_billing(ctx: Ctx, params: DfuFlashParams) -> DfuFlashResultJson:
    customer_id = params.customer_id
    if extra_field(params, "entities"):  # not in the spec's request: an extra field
        raise unsupported("entities")
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
