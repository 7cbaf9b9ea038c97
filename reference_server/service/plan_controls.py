"""The billing controls a subject inherits from its current plans (engine.plan_controls).

Read from the catalogue through the plans of the subject's live balances, so check and track find them
without a statement.
"""

from __future__ import annotations

from reference_server.engine.entitlements import Source
from reference_server.engine.plan_controls import ControlsRecord, merge_plans
from reference_server.store.catalog import Catalog

PlanDefaults = ControlsRecord
"""The plans' merged controls: every list."""


def plan_defaults(cat: Catalog, sources: list[Source], now: int) -> PlanDefaults | None:
    """The merged controls of the plans behind ``sources`` (None when none has any)."""
    started: dict[str, int] = {}
    for s in sources:
        if s.plan_id and s.customer_plan_pk is not None and s.is_live(now):
            started[s.plan_id] = max(started.get(s.plan_id, 0), s.created_at)
    layers: list[ControlsRecord] = []
    for plan_id in sorted(started, key=lambda p: (-started[p], p)):
        plan = cat.plans.get(plan_id)
        if plan is not None and plan.billing_controls:
            layers.append(plan.billing_controls)
    return merge_plans(layers) if layers else None


def instance_defaults(cat: Catalog, plan_pks: list[int]) -> PlanDefaults | None:
    """The merged controls of some plan versions (a customer's current instances, most recent first)."""
    layers: list[ControlsRecord] = []
    for pk in plan_pks:
        plan = cat.plans_by_pk.get(pk)
        if plan is not None and plan.billing_controls:
            layers.append(plan.billing_controls)
    return merge_plans(layers) if layers else None
