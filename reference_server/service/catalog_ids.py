"""Ours, beyond Autumn's spec: what the ``autumn`` CLI needs to push and pull a config faithfully.

``catalog.internal_ids`` gives each feature and plan of the key's environment a stable internal id
(a feature's row, a plan's first version row), which survives renames and new versions; the CLI
writes it into ``autumn_config.py`` as ``atmn`` writes ``internalId``, so a renamed object is
renamed on the server instead of archived and recreated. ``organizations.current`` names the
organization and environment a key belongs to (``autumn env``).
"""

from __future__ import annotations

from typing import TypedDict

from reference_server.service.context import Ctx
from reference_server.service.extra_params import NoParams
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.tenancy import org_names


class FeatureInternalIdJson(TypedDict):
    feature_id: str
    internal_id: str


class PlanInternalIdJson(TypedDict):
    plan_id: str
    internal_id: str


class InternalIdsJson(TypedDict):
    """``catalog.internal_ids``'s answer."""

    features: list[FeatureInternalIdJson]
    plans: list[PlanInternalIdJson]


class OrganizationJson(TypedDict):
    """``organizations.current``'s answer."""

    id: str
    name: str
    slug: str
    env: str


def internal_ids(ctx: Ctx, params: NoParams) -> InternalIdsJson:
    """Stable internal ids of the environment's features and plans (archived included)."""
    t = ctx.tenant
    with ctx.db.read() as conn:
        frows = catalog_repo.feature_internal_ids(conn, t)
        prows = catalog_repo.plan_internal_ids(conn, t)
    return {
        "features": [{"feature_id": fid, "internal_id": f"fe_{pk}"} for fid, pk in frows],
        "plans": [{"plan_id": pid, "internal_id": f"pl_{pk}"} for pid, pk in prows],
    }


def current_organization(ctx: Ctx, params: NoParams) -> OrganizationJson:
    """The organization and environment of the key in use."""
    with ctx.db.read() as conn:
        org_id, name, slug = org_names(conn, ctx.tenant.org_pk)
    return {"id": org_id, "name": name, "slug": slug, "env": ctx.tenant.env}
