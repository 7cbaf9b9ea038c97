"""A customer's license seat pools as the Customer object and ``licenses.list`` show them.

Kept apart from :mod:`reference_server.service.license_ops` so the customer serializer can use it
without importing the license operations (which use the customer service).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import CustomerLicenseJson
from reference_server.store import licenses as store
from reference_server.store.catalog import Catalog


def _pool_json(pool: store.Pool, cat: Catalog) -> CustomerLicenseJson | None:
    license_plan = cat.plans.get(pool.license_plan_id)
    if license_plan is None or pool.granted <= 0:  # a broken or zero-capacity pool lists nothing
        return None
    return {
        "license_plan_id": pool.license_plan_id,
        "parent_plan_id": pool.parent_plan_id,
        "license_plan_name": license_plan.name or "",
        "granted": pool.granted,
        "usage": pool.assigned,
        "remaining": max(pool.granted - pool.assigned, 0),
        "paid_quantity": pool.paid,
    }


def customer_licenses(
    conn: Connection, cat: Catalog, customer_pk: int, entity_pk: int | None = None
) -> list[CustomerLicenseJson]:
    """The Customer object's ``licenses``: its seat pools, ordered by parent then license plan."""
    return pools_json(cat, store.pools(conn, customer_pk, entity_pk))


def pools_json(cat: Catalog, pools: Iterable[store.Pool]) -> list[CustomerLicenseJson]:
    """:func:`customer_licenses` of pools already read (list pages read every customer's at once)."""
    out = [p for p in (_pool_json(pool, cat) for pool in pools) if p]
    return sorted(out, key=lambda p: (p["parent_plan_id"], p["license_plan_id"]))
