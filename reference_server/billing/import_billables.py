"""``billing.import``'s billables resolved and checked before anything is written: each one's plan
(latest version, or ``version``), quantities, link to its processor's subscription, and the active plan
it would duplicate (then left untouched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autumn_sdk._generated.models import DfuFlashBillablePlan, DfuFlashParams
from reference_server.billing.import_stripe import Hydration
from reference_server.errors import ApiError, invalid, plan_not_found
from reference_server.service.extra_fields import extra_field
from reference_server.service.subscriptions import Instance
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.plan_records import BasePriceRecord, ItemPriceRecord


def unsupported(message: str) -> ApiError:
    """400 for a part of the import this server does not support."""
    return ApiError(400, "unsupported_field", f"billing.import: {message} is not supported")


def _ms(value: Any) -> int | None:
    return int(value) if value is not None else None


@dataclass
class PlannedImport:
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


def is_recurring(plan: Plan) -> bool:
    prices: list[BasePriceRecord | ItemPriceRecord] = [plan.price] if plan.price else []
    prices += [p for i in plan.items if (p := i.get("price"))]
    return any(p.get("interval") not in (None, "one_off") for p in prices)


def instance_processor(processors: dict[int, str | None], inst: Instance) -> str:
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
        i["feature_id"]
        for i in plan.items
        if (price := i.get("price")) and price.get("billing_method") == "prepaid"
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


def plan_billables(
    cat: Catalog, params: DfuFlashParams, instances: list[Instance], processors: dict[int, str | None]
) -> list[PlannedImport]:
    planned: list[PlannedImport] = []
    for position, billable in enumerate(params.billables):
        given = billable.plan
        if given is None:
            raise invalid(f"billables[{position}]: a billable must have a plan", "invalid_inputs")
        if extra_field(billable, "phases"):  # not in the spec's billable: an extra field
            raise unsupported("phases")
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
                and instance_processor(processors, i) == (processor or "stripe")
            ),
            None,
        )
        quantity = given.quantity
        if quantity is not None and quantity <= 0:
            raise invalid(f"billables[{position}].plan.quantity: must be positive", "invalid_inputs")
        planned.append(
            PlannedImport(
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
        p.processor for p in planned if not p.plan.add_on and is_recurring(p.plan) and p.processor
    }
    if {"stripe", "revenuecat"} <= recurring_base:
        raise ApiError(
            400,
            "cross_processor_conflict",
            "billing.import: a recurring Stripe base plan and a recurring RevenueCat base plan cannot be "
            "imported together",
        )
    return planned
