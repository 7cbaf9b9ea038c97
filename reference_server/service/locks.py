"""``balances.finalize``: confirm or release a balance lock (billing-semantics §4.4); storing and
settling locks is :mod:`.lock_settlement`."""

from __future__ import annotations

from autumn_sdk._generated.json_types import SuccessResponseJson
from autumn_sdk._generated.models import FinalizeBalanceParams
from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.service.lock_settlement import apply_lock_delta
from reference_server.service.maintenance import require_customer
from reference_server.store import locks as locks_repo
from reference_server.store.customers import customer_at


def finalize(ctx: Ctx, params: FinalizeBalanceParams) -> SuccessResponseJson:
    lock_id = params.lock_id
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
            override = params.override_value
            final = (
                0.0 if params.action == "release" else float(override if override is not None else row.value)
            )
            apply_lock_delta(ctx, conn, cat, customer, row, final, now, params.properties)
    if expired:
        raise not_found
    return {"success": True}
