"""``balances.finalize``: confirm or release a balance lock (billing-semantics §4.4); storing and
settling locks is :mod:`.lock_settlement`."""

from __future__ import annotations

from typing import Any

from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.service.lock_settlement import apply_lock_delta
from reference_server.service.maintenance import require_customer
from reference_server.store import locks as locks_repo
from reference_server.store.customers import customer_at


def finalize(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    lock_id = str(body["lock_id"])
    action = body["action"]
    if action not in ("confirm", "release"):
        raise invalid("action: must be one of: confirm, release", "invalid_inputs")
    not_found = invalid(f"Lock not found for ID: {lock_id}")
    with ctx.db.write() as conn:
        row = locks_repo.find_lock(conn, ctx.tenant, lock_id)
        if row is None:
            raise not_found
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        owner = customer_at(conn, row.customer_pk)
        customer, now = require_customer(ctx, conn, cat, owner.id or "", lock=True)
        row = locks_repo.find_lock(conn, ctx.tenant, lock_id, lock=True)
        expired = row is None or row.expires_at <= now
        if row is not None and not expired:
            final = (
                0.0
                if action == "release"
                else float(body["override_value"] if body.get("override_value") is not None else row.value)
            )
            apply_lock_delta(ctx, conn, cat, customer, row, final, now, body.get("properties"))
    if expired:
        raise not_found
    return {"success": True}
