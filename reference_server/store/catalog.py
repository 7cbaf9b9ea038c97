"""The organization's catalogue (features and plans), with a per-process cache.

Check and track need the feature table (event names, credit schemas) on every call; reading it
from the database each time would double their cost.  The cache is keyed by org env and validated
against ``organizations.catalog_version``, which every catalogue write bumps in the same
transaction, so a change made by another process is seen on that process's next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from autumn_sdk._generated.json_types import PlanConfigJson
from reference_server.engine.entitlements import Feature
from reference_server.store.plan_records import (
    BasePriceRecord,
    FreeTrialRecord,
    PlanControlsRecord,
    PlanItemRecord,
)
from reference_server.store.tables.core import features, organizations, plans
from reference_server.store.tenancy import Tenant


@dataclass
class Plan:
    pk: int
    id: str
    version: int
    name: str
    description: str | None
    group: str
    add_on: bool
    auto_enable: bool
    price: BasePriceRecord | None
    items: list[PlanItemRecord]
    free_trial: FreeTrialRecord | None
    config: PlanConfigJson
    archived: bool
    is_latest: bool
    created_at: int
    env: str
    metadata: dict[str, Any] = field(default_factory=dict)
    """The user's key-values; shared by every version of the plan."""
    base_plan_id: str | None = None
    """A variant's base plan (its id); None for a plan that is not a variant."""
    billing_controls: PlanControlsRecord | None = None
    """Billing controls the plan gives its customers as defaults (engine.plan_controls); None: none."""

    @property
    def is_free(self) -> bool:
        """No base price and no priced item: the part of attach this server handles itself."""
        return self.price is None and not any(item.get("price") for item in self.items)

    @property
    def is_one_off(self) -> bool:
        intervals = [self.price.get("interval")] if self.price else []
        intervals += [price.get("interval") for i in self.items if (price := i.get("price"))]
        return bool(intervals) and all(interval == "one_off" for interval in intervals)


@dataclass
class Catalog:
    features: dict[str, Feature] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)  # latest version by plan id
    plans_by_pk: dict[int, Plan] = field(default_factory=dict)
    credit_systems_for: dict[str, list[Feature]] = field(default_factory=dict)
    features_for_event: dict[str, list[Feature]] = field(default_factory=dict)

    def plan_version(self, plan_id: str, version: float | None) -> Plan | None:
        """The plan's latest version (``version`` None), or the one ``version`` names.

        A request types ``version`` as a number: a whole one (``2`` or ``2.0``) names that version, a
        fractional one (``1.5``) names none.
        """
        if version is None:
            return self.plans.get(plan_id)
        if not float(version).is_integer():
            return None
        for p in self.plans_by_pk.values():
            if p.id == plan_id and p.version == version:
                return p
        return None

    def versions(self, plan_id: str) -> list[Plan]:
        return sorted((p for p in self.plans_by_pk.values() if p.id == plan_id), key=lambda p: p.version)


def feature_from_row(r: Any) -> Feature:
    return Feature(
        id=r.id,
        name=r.name,
        type=r.type,
        consumable=bool(r.consumable),
        event_names=list(r.event_names or []),
        credit_schema=list(r.credit_schema or []),
        display=r.display,
        archived=bool(r.archived),
        created_at=int(r.created_at),
        markups=r.markups,
    )


def plan_from_row(r: Any) -> Plan:
    config: PlanConfigJson = r.config or PlanConfigJson()
    return Plan(
        pk=r.pk,
        id=r.id,
        version=r.version,
        name=r.name,
        description=r.description,
        group=r.group or "",
        add_on=bool(r.add_on),
        auto_enable=bool(r.auto_enable),
        price=r.price,
        items=list(r.items or []),
        free_trial=r.free_trial,
        config=config,
        archived=bool(r.archived),
        is_latest=bool(r.is_latest),
        created_at=int(r.created_at),
        env=r.env,
        metadata=dict(r._mapping["metadata"] or {}),
        base_plan_id=r._mapping["base_plan_id"],
        billing_controls=r._mapping["billing_controls"] or None,
    )


def load_catalog(conn: Connection, org_pk: int, env: str) -> Catalog:
    cat = Catalog()
    for r in conn.execute(
        select(features).where(features.c.org_pk == org_pk, features.c.env == env).order_by(features.c.pk)
    ):
        f = feature_from_row(r)
        cat.features[f.id] = f
    for f in cat.features.values():
        for entry in f.credit_schema if f.type == "credit_system" else []:
            cat.credit_systems_for.setdefault(entry["metered_feature_id"], []).append(f)
        for name in f.event_names:
            cat.features_for_event.setdefault(name, []).append(f)
    for r in conn.execute(
        select(plans).where(plans.c.org_pk == org_pk, plans.c.env == env).order_by(plans.c.pk)
    ):
        p = plan_from_row(r)
        cat.plans_by_pk[p.pk] = p
        if p.is_latest:
            cat.plans[p.id] = p
    return cat


class CatalogCache:
    """Per-process cache of catalogues, validated by the org's catalogue version."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[int, Catalog]] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Bumped on every local change; per-process caches derived from tenants check it."""

    def get(self, conn: Connection, tenant: Tenant) -> Catalog:
        key = (tenant.org_pk, tenant.env)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == tenant.catalog_version:
            return entry[1]
        version = conn.execute(
            select(organizations.c.catalog_version).where(organizations.c.pk == tenant.org_pk)
        ).scalar_one()
        cat = load_catalog(conn, tenant.org_pk, tenant.env)
        with self._lock:
            self._entries[key] = (int(version), cat)
        return cat

    def peek(self, tenant: Tenant) -> Catalog | None:
        """The cached catalogue if it is current for ``tenant``, without touching the database."""
        entry = self._entries.get((tenant.org_pk, tenant.env))
        return entry[1] if entry is not None and entry[0] == tenant.catalog_version else None

    def fresh(self, conn: Connection, tenant: Tenant) -> Catalog:
        """The catalogue as the current transaction sees it (for writes to the catalogue itself)."""
        return load_catalog(conn, tenant.org_pk, tenant.env)

    def invalidate(self, org_pk: int, env: str) -> None:
        with self._lock:
            self._entries.pop((org_pk, env), None)
            self.generation += 1


def bump_catalog_version(conn: Connection, cache: CatalogCache, tenant: Tenant) -> None:
    conn.execute(
        update(organizations)
        .where(organizations.c.pk == tenant.org_pk)
        .values(catalog_version=organizations.c.catalog_version + 1)
    )
    cache.invalidate(tenant.org_pk, tenant.env)
