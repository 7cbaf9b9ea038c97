"""Endpoints beyond the spec: test clocks and ``invoices.finalize``.

The official SDK has ``/v1/customers.advance_test_clock`` (not in the spec);
``/v1/test_clocks.advance`` moves the whole sandbox env at once.
Test clocks only exist in sandbox.  ``/v1/invoices.finalize`` (the official SDK's, beyond Autumn's spec)
finalizes an ``invoice_mode.finalize: false`` draft, in either env and on either processor (see
:mod:`reference_server.billing.invoice_mode`).
"""

from __future__ import annotations

from typing import TypedDict

from autumn_sdk._generated.json_types import AdvanceTestClockResponseJson, FinalizeInvoiceResponseJson
from autumn_sdk._generated.models import FinalizeInvoiceParams
from reference_server.api.request_guard import MAX_SCHEDULE_MS
from reference_server.errors import ApiError, customer_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.extra_params import AdvanceClockParams
from reference_server.store.customers import advance_clock
from reference_server.store.subjects import get_customer
from reference_server.store.tenancy import advance_sandbox_clock

STEPS = ("advance_to", "advance_by_ms", "days", "hours")


def _delta(params: AdvanceClockParams, current_now: int) -> int:
    if params.frozen_time is not None:  # the official SDK's advance_test_clock
        if any(getattr(params, k) is not None for k in STEPS):
            raise invalid("frozen_time: cannot be combined with " + ", ".join(STEPS), "invalid_inputs")
        target = params.frozen_time // 1000 * 1000  # whole seconds, as Stripe's clocks keep
        if target <= current_now:
            raise invalid("frozen_time: must be later than the current clock time", "invalid_inputs")
        ms = target - current_now
    elif params.advance_to is not None:
        target = params.advance_to
        if target < current_now:
            raise invalid("advance_to: a test clock only moves forward", "invalid_inputs")
        ms = target - current_now
    else:
        ms = params.advance_by_ms or 0
        ms += int(float(params.days or 0) * 86_400_000)
        ms += int(float(params.hours or 0) * 3_600_000)
    if ms < 0:
        raise invalid("a test clock only moves forward", "invalid_inputs")
    if current_now + ms > MAX_SCHEDULE_MS:  # periods counted from the clock must stay calendar dates
        raise invalid(f"a test clock cannot move past {MAX_SCHEDULE_MS} (3000-01-01)", "invalid_inputs")
    return ms


def _sandbox_only(ctx: Ctx) -> None:
    if ctx.tenant.env != "sandbox":
        raise invalid("Test clocks are only available in sandbox", "test_clock_not_allowed", 403)


class AdvanceOrgClockJson(TypedDict):
    """``test_clocks.advance``'s answer (beyond Autumn's spec): the env's time and clock offset."""

    now: int
    offset_ms: int


def advance_org_clock(ctx: Ctx, params: AdvanceClockParams) -> AdvanceOrgClockJson:
    """Move the sandbox env's time forward for every customer of the organization."""
    _sandbox_only(ctx)
    delta = _delta(params, ctx.now())
    with ctx.db.write() as conn:
        advance_sandbox_clock(conn, ctx.tenant.org_pk, delta)
    ctx.state.catalog_cache.invalidate(ctx.tenant.org_pk, ctx.tenant.env)  # cached tenants hold the offset
    return {"now": ctx.now() + delta, "offset_ms": ctx.tenant.clock_offset_ms + delta}


def advance_customer_clock(ctx: Ctx, params: AdvanceClockParams) -> AdvanceTestClockResponseJson:
    """Move one customer's time forward (resets, expiries and transitions follow lazily).

    The official SDK sends ``{customer_id, frozen_time}`` (the target in ms) and reads
    ``{customer_id, frozen_time, status}``; this clock moves at once, so ``status`` is ``ready``.
    The steps of ``test_clocks.advance`` are taken too, and ``now`` repeats ``frozen_time``.
    """
    _sandbox_only(ctx)
    with ctx.db.write() as conn:
        customer_id = params.customer_id or ""
        customer = get_customer(conn, ctx.tenant, customer_id, lock=True)
        if customer is None:
            raise customer_not_found(str(params.customer_id))
        current = ctx.now(customer.clock_offset_ms)
        delta = _delta(params, current)
        advance_clock(conn, customer.pk, delta)
    now = current + delta
    return {"customer_id": customer_id, "frozen_time": now, "status": "ready", "now": now}


def finalize_invoice(ctx: Ctx, params: FinalizeInvoiceParams) -> FinalizeInvoiceResponseJson:
    """Finalize an invoice-mode draft: ``{invoice_id}`` (its ``stripe_id``) -> ``{customer_id, invoice}``."""
    finalizer = ctx.state.billing.invoice_finalizer
    if finalizer is None:
        raise ApiError(501, "not_implemented", "invoices.finalize needs the paid billing module")
    return finalizer(ctx, params)
