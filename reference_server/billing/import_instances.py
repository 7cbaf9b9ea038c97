"""``billing.import``'s plan instances: each billable imaged as a plan instance with its status,
quantities and balances, its resets on the billing anchor, and flagged when the imaged state may be
wrong (``mismatch``).  The processor owns the billing cycle: the instance gets no current period and no
trial end of its own here (this server would otherwise try to renew or convert it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from reference_server.billing.import_billables import PlannedImport, is_recurring
from reference_server.engine.intervals import boundary
from reference_server.errors import ApiError
from reference_server.service.subscriptions import (
    Instance,
    activate_plan,
    load_instances,
    schedule_maintenance,
)
from reference_server.store import imported_billing
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow

ENDED_STATUSES = ("canceled", "expired")


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
        reset = item.get("reset")
        interval = reset.get("interval") if reset else None
        if reset and interval not in (None, "one_off"):
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


def mismatch(p: PlannedImport, cat: Catalog) -> str | None:
    if p.resolved_anchor is None and _resets(p.plan, cat):
        return (
            f"plan '{p.plan.id}' has resetting balances but no billing anchor: its resets follow the "
            "import time; provide started_at or billing_cycle_anchor"
        )
    if p.processor == "stripe" and not p.subscription_id and not p.plan.is_free and is_recurring(p.plan):
        return (
            f"plan '{p.plan.id}' is a paid recurring plan with no linked subscription; provide "
            "link.subscription_id"
        )
    return None


def image_plan(conn: Connection, cat: Catalog, customer: CustomerRow, p: PlannedImport, now: int) -> Instance:
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
