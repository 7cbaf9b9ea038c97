"""The maintenance hook the services run before free-plan transitions: renewals (charging the next
period), trial ends and period-end switches, then the processor's subscriptions checked."""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.billing.plan_changes import run_billing_maintenance
from reference_server.billing.processor_choice import processor_for
from reference_server.service.context import AppState, Ctx, Maintenance
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import CustomerRow


def maintenance_hook(state: AppState) -> Maintenance:
    def run(ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int) -> None:
        base = state.background_url
        processor = processor_for(state, conn, customer.pk)
        run_billing_maintenance(ctx, conn, cat, customer, now, processor, base)
        mirror = state.billing.subscription_mirror
        if mirror is not None:  # renewals: Stripe subscriptions checked after
            mirror.after_change(conn, customer.pk)

    return run
