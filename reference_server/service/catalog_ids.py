"""Ours, beyond Autumn's spec: what the ``autumn`` CLI needs to push and pull a config faithfully.

``catalog.internal_ids`` gives each feature and plan of the key's environment a stable internal id
(a feature's row, a plan's first version row), which survives renames and new versions; the CLI
writes it into ``autumn_config.py`` as ``atmn`` writes ``internalId``, so a renamed object is
renamed on the server instead of archived and recreated. ``organizations.current`` names the
organization and environment a key belongs to (``autumn env``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from reference_server.service.context import Ctx
from reference_server.store.tables import features, organizations, plans


def internal_ids(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """Stable internal ids of the environment's features and plans (archived included)."""
    t = ctx.tenant
    with ctx.db.read() as conn:
        frows = conn.execute(
            select(features.c.id, features.c.pk)
            .where(features.c.org_pk == t.org_pk, features.c.env == t.env)
            .order_by(features.c.pk)
        ).all()
        prows = conn.execute(
            select(plans.c.id, func.min(plans.c.pk))
            .where(plans.c.org_pk == t.org_pk, plans.c.env == t.env)
            .group_by(plans.c.id)
            .order_by(func.min(plans.c.pk))
        ).all()
    return {
        "features": [{"feature_id": fid, "internal_id": f"fe_{pk}"} for fid, pk in frows],
        "plans": [{"plan_id": pid, "internal_id": f"pl_{pk}"} for pid, pk in prows],
    }


def current_organization(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """The organization and environment of the key in use."""
    with ctx.db.read() as conn:
        row = conn.execute(
            select(organizations.c.id, organizations.c.name, organizations.c.slug).where(
                organizations.c.pk == ctx.tenant.org_pk
            )
        ).one()
    return {"id": row.id, "name": row.name, "slug": row.slug, "env": ctx.tenant.env}
