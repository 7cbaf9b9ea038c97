"""The paid billing operations: attach/update/previews/multi-attach/schedules, setup-payment and
portal sessions, and the invoice list for ``expand: ["invoices"]``."""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, or_, select, update

from reference_server.billing.convert import customized_plan, engine_plan, engine_subscription, instance_plan
from reference_server.billing.free_plans import resolve_attach, resolve_update
from reference_server.billing.invoice_mode import (
    HOSTED_URL_KEY,
    INVOICE_REASON,
    check_attach,
    check_update,
    enabled_mode,
    plan_starts_now,
)
from reference_server.billing.license_seats import (
    attach_seats,
    hide_seats,
    keep_links,
    park_seats,
    save_attach_links,
    unpark_seats,
    update_seats,
)
from reference_server.billing.plan_changes import (
    AttachState,
    activate_default,
    apply_attach,
    change,
    charge_draft,
    customer_ref,
    emit_billing_updated,
    expire_active,
    expire_scheduled_in_group,
    group_default,
    save_billing_state,
    trial_used,
)
from reference_server.billing.records import (
    InvoiceRecord,
    add_pending_lines,
    create_invoice,
    invoice_record,
    load_session,
    pending_lines,
    take_pending_lines,
    update_session,
)
from reference_server.billing.seats import starting_seat_usage
from reference_server.billing.sessions import (
    PAYMENT_RETRY_TTL_MS,
    create_checkout_session,
    create_portal_session,
    create_setup_session,
)
from reference_server.engine.billing import (
    AttachQuote,
    BillingRuleError,
    ChangeKind,
    FreeTrial,
    TrialChoice,
    choose_trial,
    quantities_from_api,
    quote_attach,
    quote_cancel,
    quote_new,
    quote_quantity_change,
    quote_upgrade,
)
from reference_server.engine.billing.checkout import checkout_type, needs_checkout
from reference_server.engine.billing.invoice import InvoiceDraft, LineItem, NextCycle
from reference_server.engine.billing.preview import (
    attach_preview_body,
    outgoing_json,
    preview_body,
)
from reference_server.engine.billing.quotes import check_multi_attach, combine_due
from reference_server.errors import AutumnError, invalid
from reference_server.processors.contract import ChargeOutcome, PaymentProcessor
from reference_server.processors.registry import Processors, processors_from_env
from reference_server.processors.registry import processor_for as choose_processor
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.service.context import AppState, Ctx
from reference_server.service.customers import catch_up, require_customer
from reference_server.service.subscriptions import (
    activate_plan,
    load_instances,
    schedule_maintenance,
)
from reference_server.store.billing_tables import invoices, subscription_billing
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import CustomerRow, EntityRow, get_entity
from reference_server.store.tables import balance_sources, customer_plans

# -- configuration ---------------------------------------------------------------------------------------


def processors_of(state: AppState) -> Processors:
    """The server's payment processors (made from the environment on first use)."""
    if state.processors is None:
        state.processors = processors_from_env()
    return state.processors


def processor_for(state: AppState, conn: Connection, customer_pk: int) -> PaymentProcessor:
    """The processor acting for the customer: its organization's own Stripe account, else the default
    (:func:`reference_server.processors.registry.processor_for`)."""
    return choose_processor(processors_of(state), conn, customer_pk)


def _rule(exc: BillingRuleError) -> AutumnError:
    return AutumnError(exc.status, exc.code, exc.message)


def _response(customer: CustomerRow, entity_id: str | None, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"customer_id": customer.id}
    if entity_id is not None:
        out["entity_id"] = entity_id
    out.update(values)
    return out


def _settle(ctx: Ctx, body: dict[str, Any]) -> None:
    """Commit due maintenance (renewals may charge a card) before a preview that is rolled back."""
    if body.get("customer_id"):
        catch_up(ctx, str(body["customer_id"]))


# -- attach ----------------------------------------------------------------------------------------------


def _trial_for(conn: Connection, state: AttachState) -> TrialChoice | None:
    customize = state.body.get("customize") or {}
    skip = "free_trial" in customize and customize["free_trial"] is None
    eplan = engine_plan(state.plan, state.cat)
    override: FreeTrial | None = eplan.free_trial if customize.get("free_trial") else None
    unique = bool((state.plan.free_trial or {}).get("unique_fingerprint"))
    used = trial_used(conn, state.customer, state.plan.id, unique)
    return choose_trial(eplan, state.now, used, override=override, skip_trial=skip)


def prepare_attach(
    ctx: Ctx, conn: Connection, body: dict[str, Any]
) -> tuple[AttachState, AttachQuote, TrialChoice | None]:
    """Resolve and price one attach (shared by attach, previews, multi-attach and checkout completion)."""
    cat, customer, entity, plan, current, instances, now = resolve_attach(ctx, conn, body)
    customize = body.get("customize")
    plan = customized_plan(plan, customize)
    licensed = attach_seats(conn, cat, plan, current.pk if current is not None else None, body)
    plan, seat_quantities = licensed.plan, licensed.quantities
    state = AttachState(
        ctx, conn, cat, customer, entity, plan, bool(customize), current, instances, now, body
    )
    if body.get("subscription_id") and any(i.subscription_id == body["subscription_id"] for i in instances):
        raise AutumnError(
            409,
            "subscription_id_already_exists",
            f"Subscription id {body['subscription_id']} is already used by this customer",
        )
    current_sub = engine_subscription(conn, cat, current) if current is not None else None
    trial = _trial_for(conn, state)
    seats = starting_seat_usage(conn, cat, customer.pk, plan, entity, current.pk if current else None)
    try:
        quote = quote_attach(
            current_sub,
            engine_plan(plan, cat),
            now,
            {**quantities_from_api(body.get("feature_quantities")), **seat_quantities},
            trial,
            proration_behavior=str(body.get("proration_behavior") or "prorate_immediately"),
            plan_schedule=body.get("plan_schedule"),
            seat_usage=seats,
        )
    except BillingRuleError as exc:
        raise _rule(exc) from exc
    if quote.kind is ChangeKind.DOWNGRADE or quote.trial_ends_at is None:
        trial = None
    if current is not None and quote.kind in (ChangeKind.UPGRADE, ChangeKind.SAME):
        pending = pending_lines(conn, customer.pk, current.plan_id, entity.id if entity else None)
        if quote.kind is ChangeKind.UPGRADE:
            # The outgoing plan's pending next-cycle prorations are settled on the switch's invoice
            # (its last invoice), never left behind; apply_attach removes them from the draft.
            quote = dataclasses.replace(quote, due_now=_plus(quote.due_now, pending))
        elif quote.next_cycle is not None:
            quote = dataclasses.replace(quote, next_cycle=_cycle_plus(quote.next_cycle, pending))
    return state, quote, trial


def _plus(draft: InvoiceDraft, lines: tuple[LineItem, ...]) -> InvoiceDraft:
    return InvoiceDraft(draft.lines + lines, draft.currency) if lines else draft


def _cycle_plus(cycle: NextCycle, lines: tuple[LineItem, ...]) -> NextCycle:
    """A plan's next renewal with its pending ``*_next_cycle`` lines, as the renewal invoice has them."""
    return dataclasses.replace(cycle, invoice=_plus(cycle.invoice, lines)) if lines else cycle


def _redirect(
    ctx: Ctx, state: AttachState, quote: AttachQuote, trial: TrialChoice | None
) -> tuple[bool, bool]:
    """(needs checkout, has a payment method)."""
    processor = processor_for(ctx.state, state.conn, state.customer.pk)
    pm = processor.default_payment_method(state.conn, customer_ref(state.customer))
    redirect = needs_checkout(
        engine_plan(state.plan, state.cat),
        quote,
        pm is not None,
        str(state.body.get("redirect_mode") or "if_required"),
        trial.card_required if trial else True,
        invoice_mode=bool(state.body.get("invoice_mode")),
    )
    return redirect, pm is not None


def _action(ctx: Ctx, op: str, body: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in body.items() if not k.startswith("_")}
    return {
        "op": op,
        "body": clean,
        "org_pk": ctx.tenant.org_pk,
        "env": ctx.tenant.env,
        "reason": op,
        "entity_id": body.get("entity_id"),
    }


def _failed_payment(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    outcome: ChargeOutcome,
    draft: InvoiceDraft,
    action: dict[str, Any],
    now: int,
    base_url: str,
    success_url: str | None,
    entity_id: str | None,
) -> dict[str, Any]:
    """A charge that needs the customer: hand out a checkout page that collects this invoice."""
    invoice_pk = outcome.invoice.pk if outcome.invoice is not None else None
    action = {**action, "void_on_expiry": True}
    _, url = create_checkout_session(
        conn, customer.pk, draft, action, now, base_url, success_url, invoice_pk, PAYMENT_RETRY_TTL_MS
    )
    out = _response(customer, entity_id, payment_url=url, required_action=outcome.required_action())
    if outcome.invoice is not None:
        out["invoice"] = invoice_record(conn, outcome.invoice.pk).to_api()
    return out


def _charge_or_retry_link(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    draft: InvoiceDraft,
    reason: str,
    now: int,
    base_url: str,
    action: dict[str, Any],
    success_url: str | None,
) -> tuple[InvoiceRecord | None, dict[str, Any] | None]:
    """Charge ``draft`` now: the invoice (None when nothing was due), or the failure response
    (:func:`_failed_payment`) when the customer has to act before the change can happen."""
    processor = processor_for(ctx.state, conn, customer.pk)
    outcome = charge_draft(processor, conn, customer, draft, reason, now, base_url, entity)
    if outcome is not None and not outcome.succeeded:
        entity_id = entity.id if entity else None
        failure = _failed_payment(
            ctx, conn, customer, outcome, draft, action, now, base_url, success_url, entity_id
        )
        return None, failure
    return (outcome.invoice if outcome is not None else None), None


def attach_in(
    ctx: Ctx, conn: Connection, body: dict[str, Any], base_url: str, paid: bool = False
) -> dict[str, Any]:
    """Attach inside ``conn``'s transaction; ``paid`` means a checkout already collected the money."""
    state, quote, trial = prepare_attach(ctx, conn, body)
    entity_id = state.entity.id if state.entity else None
    invoice = None
    if not paid:
        _check_attach_mode(state, quote, trial)
    invoice_mode = None if paid else _invoice_mode_for(body, quote.due_now)
    if invoice_mode is not None:

        def start() -> None:
            created: list[int] = []
            changes = apply_attach(state, quote, trial, created)
            save_attach_links(conn, state.cat, state.plan, created, body, state.now)
            emit_billing_updated(ctx, conn, state.customer, state.entity, changes, state.now)

        return _bill_by_invoice(
            ctx, conn, state.customer, state.entity, quote.due_now, state.now, base_url, "attach", body, start
        )
    if not paid:
        redirect, _ = _redirect(ctx, state, quote, trial)
        action = _action(ctx, "attach", body)
        if redirect:
            _, url = create_checkout_session(
                conn, state.customer.pk, quote.due_now, action, state.now, base_url, body.get("success_url")
            )
            return _response(state.customer, entity_id, payment_url=url)
        invoice, failure = _charge_or_retry_link(
            ctx,
            conn,
            state.customer,
            state.entity,
            quote.due_now,
            quote.kind.value,
            state.now,
            base_url,
            action,
            body.get("success_url"),
        )
        if failure is not None:
            return failure
    created: list[int] = []
    changes = apply_attach(state, quote, trial, created)
    save_attach_links(conn, state.cat, state.plan, created, body, state.now)
    emit_billing_updated(ctx, conn, state.customer, state.entity, changes, state.now)
    out = _response(state.customer, entity_id, payment_url=None)
    if invoice is not None:
        out["invoice"] = invoice.to_api()
    return out


def _check_attach_mode(state: AttachState, quote: AttachQuote, trial: TrialChoice | None) -> None:
    """Autumn's invoice-mode validation of one prepared attach (see :func:`invoice_mode.check_attach`)."""
    check_attach(
        state.body,
        trial.card_required if trial else None,
        trial.on_end if trial else None,
        quote.scheduled,
    )


def _invoice_mode_for(body: dict[str, Any], due: InvoiceDraft) -> dict[str, Any] | None:
    """The enabled ``invoice_mode`` of a request when something is due now (else it changes nothing:
    the change happens as without it)."""
    mode = enabled_mode(body)
    return mode if mode is not None and due.lines and due.total > 0 else None


def _bill_by_invoice(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    due: InvoiceDraft,
    now: int,
    base_url: str,
    op: str,
    body: dict[str, Any],
    start: Callable[[], None],
) -> dict[str, Any]:
    """Invoice mode (attach, multi-attach, a schedule's first phase, update): one invoice for what is due
    now, which the customer pays on its hosted page instead of an automatic charge.

    With ``enable_plan_immediately`` the change happens now (``start``); otherwise paying the invoice
    completes it (the checkout action ``op`` with ``body``, as a paid checkout completes it).
    ``finalize: false`` keeps the invoice a draft (no hosted URL, its page takes no payment) until it is
    finalized (see :mod:`~reference_server.billing.invoice_mode`).  On Stripe a ``send_invoice`` Stripe
    invoice (voided after the transaction if it does not commit)."""
    mode = enabled_mode(body) or {}
    immediately = plan_starts_now(body, mode)
    finalize = mode.get("finalize") is not False
    processor = processor_for(ctx.state, conn, customer.pk)
    entity_id = entity.id if entity else None
    record = create_invoice(conn, customer.pk, due, INVOICE_REASON, processor.name, now, base_url, entity_id)
    action = _action(ctx, "invoice_paid" if immediately else op, body)
    session_id, url = create_checkout_session(
        conn, customer.pk, due, action, now, base_url, body.get("success_url"), record.pk
    )
    if finalize:
        conn.execute(update(invoices).where(invoices.c.pk == record.pk).values(hosted_url=url))
    else:  # a draft: no page to pay yet; finalizing gives the invoice this one
        conn.execute(
            update(invoices).where(invoices.c.pk == record.pk).values(status="draft", hosted_url=None)
        )
        session = load_session(conn, session_id, "checkout")
        assert session is not None
        update_session(conn, session.pk, action={**session.action, HOSTED_URL_KEY: url})
    # the processor's books show the open invoice too (Stripe: a send_invoice invoice)
    processor.open_invoice(conn, customer_ref(customer), record, now, finalize=finalize)
    if immediately:
        start()
    return _response(customer, entity_id, payment_url=None, invoice=invoice_record(conn, record.pk).to_api())


def paid_attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return attach_in(ctx, conn, body, base_url)


def _outgoing_quantities(conn: Connection, state: AttachState) -> dict[str, dict[str, Decimal]]:
    if state.current is None:
        return {}
    sub = engine_subscription(conn, state.cat, state.current)
    return {state.current.plan_id: dict(sub.prepaid_quantities)} if sub else {}


def preview_attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    _settle(ctx, body)
    with ctx.db.write() as conn:
        state, quote, trial = prepare_attach(ctx, conn, body)
        _check_attach_mode(state, quote, trial)
        redirect, has_pm = _redirect(ctx, state, quote, trial)
        out = attach_preview_body(
            state.customer.id or "",
            [quote],
            redirect,
            checkout_type(quote, redirect, has_pm),
            state.entity.id if state.entity else None,
            _outgoing_quantities(conn, state),
        )
        conn.rollback()  # a preview changes nothing, not even maintenance bookkeeping
        return hide_seats(out)


# -- multi attach ----------------------------------------------------------------------------------------


def _plan_bodies(body: dict[str, Any]) -> list[dict[str, Any]]:
    plans = body.get("plans") or []
    if not plans:
        raise invalid("plans: at least one plan is required", "invalid_inputs")
    keys = ("customer_id", "entity_id", "invoice_mode", "enable_plan_immediately")
    shared = {k: body[k] for k in keys if body.get(k) is not None}
    return [{**shared, **{k: v for k, v in p.items() if v is not None}} for p in plans]


def _prepare_multi(
    ctx: Ctx, conn: Connection, body: dict[str, Any], check: bool = True
) -> list[tuple[AttachState, AttachQuote, TrialChoice | None]]:
    prepared = [prepare_attach(ctx, conn, b) for b in _plan_bodies(body)]
    if check:  # (not when a paid checkout completes it: it was checked when asked for)
        for state, quote, trial in prepared:
            _check_attach_mode(state, quote, trial)
    first = prepared[0][0]
    owned = [i.plan_id for i in first.instances if i.status == "active" and i.entity_pk == first.entity_pk]
    try:
        check_multi_attach([engine_plan(s.plan, s.cat) for s, _, _ in prepared], owned)
    except BillingRuleError as exc:
        raise _rule(exc) from exc
    return prepared


def multi_attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return multi_attach_in(ctx, conn, body, base_url)


def multi_attach_in(
    ctx: Ctx,
    conn: Connection,
    body: dict[str, Any],
    base_url: str,
    paid: bool = False,
    created: list[int] | None = None,
    action_op: str = "multi_attach",
    action_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prepared = _prepare_multi(ctx, conn, body, check=not paid)
    first = prepared[0][0]
    entity_id = first.entity.id if first.entity else None
    try:
        due = combine_due([q for _, q, _ in prepared])
    except BillingRuleError as exc:
        raise _rule(exc) from exc

    def start() -> None:
        changes: list[dict[str, Any]] = []
        for state, quote, trial in prepared:
            state.instances = load_instances(conn, state.customer.pk)
            changes += apply_attach(state, quote, trial, created)
        emit_billing_updated(ctx, conn, first.customer, first.entity, changes, first.now)

    invoice_body = action_body if action_body is not None else body
    if not paid and _invoice_mode_for(body, due) is not None:
        # (a schedule's action body is the schedule: its invoice_mode is the one given to phase 0)
        return _bill_by_invoice(
            ctx, conn, first.customer, first.entity, due, first.now, base_url, action_op, invoice_body, start
        )
    invoice = None
    if not paid:
        processor = processor_for(ctx.state, conn, first.customer.pk)
        has_pm = processor.default_payment_method(conn, customer_ref(first.customer)) is not None
        redirect = (
            any(_redirect(ctx, s, q, t)[0] for s, q, t in prepared)
            if not has_pm
            else body.get("redirect_mode") == "always"
        )
        action = _action(ctx, action_op, invoice_body)
        if redirect:
            _, url = create_checkout_session(
                conn, first.customer.pk, due, action, first.now, base_url, body.get("success_url")
            )
            return _response(first.customer, entity_id, payment_url=url)
        invoice, failure = _charge_or_retry_link(
            ctx,
            conn,
            first.customer,
            first.entity,
            due,
            "multi_attach",
            first.now,
            base_url,
            action,
            body.get("success_url"),
        )
        if failure is not None:
            return failure
    start()
    out = _response(first.customer, entity_id, payment_url=None)
    if invoice is not None:
        out["invoice"] = invoice.to_api()
    return out


def preview_multi_attach(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    _settle(ctx, body)
    with ctx.db.write() as conn:
        prepared = _prepare_multi(ctx, conn, body)
        first = prepared[0][0]
        processor = processor_for(ctx.state, conn, first.customer.pk)
        has_pm = processor.default_payment_method(conn, customer_ref(first.customer)) is not None
        redirect = any(_redirect(ctx, s, q, t)[0] for s, q, t in prepared)
        try:
            out = attach_preview_body(
                first.customer.id or "",
                [q for _, q, _ in prepared],
                redirect,
                checkout_type(prepared[0][1], redirect, has_pm),
                first.entity.id if first.entity else None,
            )
        except BillingRuleError as exc:
            raise _rule(exc) from exc
        conn.rollback()
        return out


# -- schedules ----------------------------------------------------------------------------------------

FIRST_PHASE_TOLERANCE_MS = 15 * 60_000


def _schedule_phases(body: dict[str, Any]) -> list[dict[str, Any]]:
    phases = list(body.get("phases") or [])
    if not phases:
        raise invalid("phases: at least one phase is required", "invalid_inputs")
    for phase in phases:
        if not phase.get("plans"):
            raise invalid("phases: every phase needs at least one plan", "invalid_inputs")
        for entry in phase["plans"]:
            trial = (entry.get("customize") or {}).get("free_trial") or {}
            if trial.get("on_end") == "revert":
                raise invalid("free_trial.on_end 'revert' is not allowed in a schedule")
    starts = [int(p.get("starts_at") or 0) for p in phases]
    if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
        raise invalid("Phase starts_at values must be strictly increasing")
    return phases


def _public_ids(conn: Connection, pks: list[int]) -> list[str]:
    if not pks:
        return []
    rows = conn.execute(
        select(customer_plans.c.pk, customer_plans.c.subscription_id).where(customer_plans.c.pk.in_(pks))
    ).all()
    by_pk = {r.pk: r.subscription_id or f"sub_{r.pk}" for r in rows}
    return [by_pk[pk] for pk in pks]


def create_schedule_in(
    ctx: Ctx, conn: Connection, body: dict[str, Any], base_url: str, paid: bool = False
) -> dict[str, Any]:
    """Phase 0 is a multi-attach now; each later phase is scheduled and ends the phase before it."""
    phases = _schedule_phases(body)
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
    if int(phases[0].get("starts_at") or now) > now + FIRST_PHASE_TOLERANCE_MS:
        raise invalid("The first phase must start immediately")
    keys = (
        "customer_id",
        "entity_id",
        "redirect_mode",
        "success_url",
        "invoice_mode",
        "enable_plan_immediately",
    )
    shared = {k: body[k] for k in keys if body.get(k)}
    created: list[int] = []
    first = multi_attach_in(
        ctx,
        conn,
        {**shared, "plans": phases[0]["plans"]},
        base_url,
        paid=paid,
        created=created,
        action_op="create_schedule",
        action_body=body,
    )
    entity_id = body.get("entity_id")
    # Waiting for a payment: a checkout page, or an invoice-mode invoice without enable_plan_immediately
    # (paying it creates the schedule, as a paid checkout does).
    if first.get("payment_url") or (not paid and "invoice" in first and not created):
        out = {
            "customer_id": customer.id,
            "entity_id": entity_id,
            "status": "pending_payment",
            "schedule_id": None,
            "phases": [],
            "payment_url": first["payment_url"],
        }
        for key in ("invoice", "required_action"):
            if key in first:
                out[key] = first[key]
        return out
    entity = get_entity(conn, customer.pk, entity_id) if entity_id else None
    schedule_id = f"sched_{secrets.token_hex(10)}"
    phase_json = [
        {
            "phase_id": f"{schedule_id}_0",
            "starts_at": int(phases[0].get("starts_at") or now),
            "customer_product_ids": _public_ids(conn, created),
        }
    ]
    previous = created
    for index, phase in enumerate(phases[1:], start=1):
        at = int(phase["starts_at"])
        if previous:
            conn.execute(
                update(customer_plans)
                .where(customer_plans.c.pk.in_(previous))
                .values(expires_at=at, canceled_at=now)
            )
        pks: list[int] = []
        for entry in phase["plans"]:
            plan = cat.plan_version(entry["plan_id"], entry.get("version"))
            if plan is None:
                from reference_server.errors import plan_not_found

                raise plan_not_found(entry["plan_id"])
            custom = customized_plan(plan, entry.get("customize"))
            try:
                quote = quote_new(
                    engine_plan(custom, cat), at, quantities_from_api(entry.get("feature_quantities"))
                )
            except BillingRuleError as exc:
                raise _rule(exc) from exc
            pk = activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=custom,
                now=now,
                status="scheduled",
                starts_at=at,
                subscription_id=entry.get("subscription_id"),
                feature_quantities={k: float(v) for k, v in quote.prepaid_quantities.items()},
            )
            save_billing_state(
                conn, pk, at, dict(quote.prepaid_quantities), now, custom if entry.get("customize") else None
            )
            pks.append(pk)
        schedule_maintenance(conn, customer.pk, at)
        phase_json.append(
            {
                "phase_id": f"{schedule_id}_{index}",
                "starts_at": at,
                "customer_product_ids": _public_ids(conn, pks),
            }
        )
        previous = pks
    out = {
        "customer_id": customer.id,
        "entity_id": entity_id,
        "status": "created",
        "schedule_id": schedule_id,
        "phases": phase_json,
        "payment_url": None,
    }
    if "invoice" in first:
        out["invoice"] = first["invoice"]
    return out


def create_schedule(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return create_schedule_in(ctx, conn, body, base_url)


# -- update ----------------------------------------------------------------------------------------------


def _intent(body: dict[str, Any]) -> str:
    action = body.get("cancel_action")
    if action in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        return str(action)
    if body.get("feature_quantities") or (body.get("license_quantities") and not body.get("customize")):
        return "update_quantity"
    if body.get("customize"):
        return "update_plan"
    return "none"


def _update_quotes(ctx: Ctx, conn: Connection, body: dict[str, Any]) -> dict[str, Any]:
    cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, body)
    plan = instance_plan(conn, cat, inst)
    sub = engine_subscription(conn, cat, inst)
    if plan is None or sub is None:
        raise invalid(f"Plan {inst.plan_id} is not available")
    intent = _intent(body)
    running = (plan.free_trial or {}) if inst.trial_ends_at and inst.trial_ends_at > now else None
    check_update(
        body,
        bool(running.get("card_required", True)) if running is not None else None,
        str(running.get("on_end") or "bill") if running is not None else None,
    )
    result: dict[str, Any] = {
        "body": body,
        "cat": cat,
        "customer": customer,
        "entity": entity,
        "inst": inst,
        "instances": instances,
        "now": now,
        "plan": plan,
        "sub": sub,
        "intent": intent,
        "due": InvoiceDraft(),
        "next_cycle": None,
        "ends_at": None,
        "quantities": None,
    }
    prorate = body.get("proration_behavior") != "none"
    if intent in ("cancel_immediately", "cancel_end_of_cycle"):
        if inst.status != "active":
            raise invalid("Only an active plan can be cancelled")
        cancel = quote_cancel(sub, now, intent == "cancel_immediately" or sub.period_end is None, prorate)
        due = cancel.due_now
        if cancel.ends_at <= now:
            # Ending now: its pending next-cycle prorations are settled on this last invoice.
            due = _plus(due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None))
        result.update(due=due, ends_at=cancel.ends_at)
    elif intent == "uncancel":
        if inst.status != "active":
            raise invalid("Only an active plan can be uncancelled")
    elif intent == "update_quantity":
        if inst.status == "scheduled":
            raise invalid("A scheduled plan cannot be updated")
        if body.get("license_quantities") and body.get("feature_quantities"):
            raise invalid("license_quantities cannot be combined with feature_quantities in one update.")
        seats = update_seats(conn, cat, plan, inst.pk, body)
        plan = seats.plan
        sub = dataclasses.replace(sub, plan=engine_plan(plan, cat))
        result.update(plan=plan, sub=sub)
        try:
            quote = quote_quantity_change(
                sub,
                {**quantities_from_api(body.get("feature_quantities")), **seats.quantities},
                now,
                body.get("proration_behavior"),
            )
        except BillingRuleError as exc:
            raise _rule(exc) from exc
        next_cycle = quote.next_cycle
        if next_cycle is not None:
            # The renewal also takes the prorations already pending for this plan.
            next_cycle = _cycle_plus(
                next_cycle, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None)
            )
        result.update(due=quote.due_now, next_cycle=next_cycle, quantities=quote)
    elif intent == "update_plan":
        if inst.status != "active":
            raise invalid("Only an active plan can be customized")
        catalog_plan = cat.plans_by_pk.get(inst.plan_pk)
        if catalog_plan is None:
            raise invalid(f"Plan {inst.plan_id} is not available")
        # Paid seats stay through a customization (its items replace the plan's, not the seats).
        seats = update_seats(conn, cat, customized_plan(plan, body.get("customize")), inst.pk, body)
        custom = seats.plan
        requested = {**quantities_from_api(body.get("feature_quantities")), **seats.quantities}
        try:
            switch = quote_upgrade(
                dataclasses.replace(sub, plan=dataclasses.replace(sub.plan, id=f"{sub.plan.id}@previous")),
                engine_plan(custom, cat),
                now,
                requested,
                proration_behavior=str(body.get("proration_behavior") or "prorate_immediately"),
                seat_usage=starting_seat_usage(conn, cat, customer.pk, custom, entity, inst.pk),
            )
        except BillingRuleError as exc:
            raise _rule(exc) from exc
        due = _relabel(switch.due_now, f"{sub.plan.id}@previous", sub.plan.id)
        # The replaced version's pending next-cycle prorations are settled now, like its unused time.
        due = _plus(due, pending_lines(conn, customer.pk, inst.plan_id, entity.id if entity else None))
        switch = dataclasses.replace(switch, due_now=due)
        result.update(
            due=switch.due_now, next_cycle=switch.next_cycle, switch=switch, custom=custom, seats=seats
        )
    return result


def _relabel(draft: InvoiceDraft, old_id: str, new_id: str) -> InvoiceDraft:
    """Lines of the outgoing version of a customized plan carry the plan's own id."""
    return InvoiceDraft(
        tuple(
            dataclasses.replace(line, plan_id=new_id) if line.plan_id == old_id else line
            for line in draft.lines
        ),
        draft.currency,
    )


def _apply_update(
    ctx: Ctx, conn: Connection, q: dict[str, Any], base_url: str, paid: bool = False
) -> dict[str, Any]:
    """Apply an update; ``paid``: its invoice-mode invoice was paid (nothing more to collect)."""
    body: dict[str, Any] = q["body"]
    if not paid and _invoice_mode_for(body, q["due"]) is not None:

        def start() -> None:
            _apply_update(ctx, conn, q, base_url, paid=True)

        return _bill_by_invoice(
            ctx, conn, q["customer"], q["entity"], q["due"], q["now"], base_url, "update", body, start
        )
    cat: Catalog = q["cat"]
    customer: CustomerRow = q["customer"]
    entity = q["entity"]
    inst = q["inst"]
    plan = q["plan"]
    now: int = q["now"]
    intent = q["intent"]
    entity_id = entity.id if entity else None
    invoice: InvoiceRecord | None = None
    if not paid:
        invoice, failure = _charge_or_retry_link(
            ctx,
            conn,
            customer,
            entity,
            q["due"],
            intent,
            now,
            base_url,
            _action(ctx, "update_invoice", {}),
            None,
        )
        if failure is not None:
            return failure
    changes: list[dict[str, Any]] = []
    entity_pk = entity.pk if entity else None
    if intent == "cancel_immediately" or (intent == "cancel_end_of_cycle" and q["ends_at"] <= now):
        take_pending_lines(conn, customer.pk, inst.plan_id, entity_id)  # settled on this invoice
        conn.execute(update(customer_plans).where(customer_plans.c.pk == inst.pk).values(canceled_at=now))
        carried = expire_active(conn, inst.pk, now, changes)
        if not plan.add_on:
            changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
            changes += activate_default(conn, cat, customer, entity, plan.group, now, carried, plan.id)
    elif intent == "cancel_end_of_cycle":
        ends_at = q["ends_at"]
        previous = {"canceled_at": inst.canceled_at, "expires_at": inst.expires_at}
        conn.execute(
            update(customer_plans)
            .where(customer_plans.c.pk == inst.pk)
            .values(canceled_at=now, expires_at=ends_at)
        )
        schedule_maintenance(conn, customer.pk, ends_at)
        changes.append(change(conn, "updated", inst.pk, previous))
        default = group_default(cat, plan.group, plan.id) if not plan.add_on else None
        if default is not None:
            changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
            pk = activate_plan(
                conn,
                cat,
                customer=customer,
                entity=entity,
                plan=default,
                now=now,
                status="scheduled",
                starts_at=ends_at,
            )
            save_billing_state(conn, pk, None, {}, now)
            changes.append(change(conn, "scheduled", pk))
    elif intent == "uncancel":
        previous = {"canceled_at": inst.canceled_at, "expires_at": inst.expires_at}
        conn.execute(
            update(customer_plans)
            .where(customer_plans.c.pk == inst.pk)
            .values(canceled_at=None, expires_at=None)
        )
        changes += expire_scheduled_in_group(conn, cat, q["instances"], plan.group, entity_pk)
        changes.append(change(conn, "updated", inst.pk, previous))
    elif intent == "update_quantity":
        quote = q["quantities"]
        for feature_id, delta in quote.balance_deltas.items():
            _add_prepaid(conn, inst.pk, feature_id, float(delta))
        # ``*_next_cycle`` prorations wait for the renewal invoice (Stripe's pending invoice items).
        processor_name = processor_for(ctx.state, conn, customer.pk).name
        add_pending_lines(conn, customer.pk, quote.deferred, processor_name, now, base_url, entity_id)
        conn.execute(
            update(subscription_billing)
            .where(subscription_billing.c.customer_plan_pk == inst.pk)
            .values(
                prepaid_quantities={k: str(v) for k, v in quote.prepaid_quantities.items()}, updated_at=now
            )
        )
        changes.append(change(conn, "updated", inst.pk, {}))
    elif intent == "update_plan":
        switch = q["switch"]
        custom = q["custom"]
        take_pending_lines(conn, customer.pk, inst.plan_id, entity_id)  # settled on this invoice
        parked = park_seats(conn, inst.pk)  # the customized plan keeps the seats it gave out
        carried = expire_active(conn, inst.pk, now, changes)
        period = switch.period
        new_pk = activate_plan(
            conn,
            cat,
            customer=customer,
            entity=entity,
            plan=custom,
            now=now,
            subscription_id=inst.subscription_id,
            feature_quantities={k: float(v) for k, v in switch.prepaid_quantities.items()},
            carried_usage=carried.continuous_usage,
            next_reset_overrides=carried.next_resets,
            trial_ends_at=inst.trial_ends_at if inst.trial_ends_at and inst.trial_ends_at > now else None,
            current_period_start=period.start if period else None,
            current_period_end=period.end if period else None,
        )
        save_billing_state(conn, new_pk, switch.anchor, dict(switch.prepaid_quantities), now, custom)
        keep_links(conn, new_pk, q["seats"], inst.pk, now)
        unpark_seats(conn, parked, new_pk, inst.plan_pk, now)
        if period is not None:
            schedule_maintenance(conn, customer.pk, period.end)
        changes.append(change(conn, "activated", new_pk))
    emit_billing_updated(ctx, conn, customer, entity, changes, now)
    out = _response(customer, entity_id, payment_url=None)
    if invoice is not None:
        out["invoice"] = invoice.to_api()
    return out


def _add_prepaid(conn: Connection, instance_pk: int, feature_id: str, delta: float) -> None:
    """A quantity change moves the purchased grant and the balance by the same amount (usage is kept)."""
    row = conn.execute(
        select(balance_sources.c.pk, balance_sources.c.prepaid, balance_sources.c.balance)
        .where(balance_sources.c.customer_plan_pk == instance_pk, balance_sources.c.feature_id == feature_id)
        .order_by(balance_sources.c.pk)
        .limit(1)
    ).first()
    if row is None:
        return
    conn.execute(
        update(balance_sources)
        .where(balance_sources.c.pk == row.pk)
        .values(prepaid=float(row.prepaid) + delta, balance=float(row.balance) + delta)
    )


def paid_update(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return _apply_update(ctx, conn, _update_quotes(ctx, conn, body), base_url)


def preview_update(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    _settle(ctx, body)
    with ctx.db.write() as conn:
        q = _update_quotes(ctx, conn, body)
        inst, now = q["inst"], q["now"]
        sub = q["sub"]
        cycles = []
        if q["next_cycle"] is not None:
            cycles.append(q["next_cycle"])
        outgoing = []
        if q["ends_at"] is not None:
            outgoing.append(outgoing_json(inst.plan_id, q["ends_at"], now, dict(sub.prepaid_quantities)))
        incoming = []
        if q["quantities"] is not None:
            incoming.append(
                {
                    "plan_id": inst.plan_id,
                    "feature_quantities": [
                        {"feature_id": k, "quantity": float(v) if v != v.to_integral_value() else int(v)}
                        for k, v in q["quantities"].prepaid_quantities.items()
                    ],
                    "effective_at": None,
                    "canceled_at": None,
                    "expires_at": None,
                }
            )
        out = preview_body(
            q["customer"].id or "",
            q["due"],
            cycles,
            incoming,
            outgoing,
            False,
            None,
            q["entity"].id if q["entity"] else None,
        )
        out["intent"] = q["intent"]
        conn.rollback()
        return hide_seats(out)


# -- sessions --------------------------------------------------------------------------------------------


def _customer_and_entity(
    ctx: Ctx, conn: Connection, body: dict[str, Any]
) -> tuple[CustomerRow, str | None, int]:
    from reference_server.errors import entity_not_found

    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    customer, now = require_customer(ctx, conn, cat, body["customer_id"], lock=True)
    entity_id = body.get("entity_id")
    if entity_id and get_entity(conn, customer.pk, entity_id) is None:
        raise entity_not_found(entity_id)
    return customer, entity_id, now


def setup_payment(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        customer, entity_id, now = _customer_and_entity(ctx, conn, body)
        if body.get("remove_plan_ids"):
            if not body.get("plan_id"):
                raise invalid("remove_plan_ids: only with plan_id (the plan attached once set up)")
            resolve_attach(ctx, conn, body)  # the removals are checked now, applied with the attach
        upserts = (body.get("customize") or {}).get("upsert_licenses")
        if body.get("license_quantities") or upserts:
            if not body.get("plan_id"):
                raise invalid("license_quantities: only with plan_id (the plan attached once set up)")
            cat, _, _, plan, current, _, _ = resolve_attach(ctx, conn, body)
            attach_seats(conn, cat, plan, current.pk if current is not None else None, body)  # checked now
        action = _action(ctx, "setup", body)
        action["plan_id"] = body.get("plan_id")
        session_id, url = create_setup_session(
            conn, customer.pk, action, now, base_url, body.get("success_url")
        )
        processor = processor_for(ctx.state, conn, customer.pk)
        session = load_session(conn, session_id, "setup")
        if session is not None:
            # Nothing is due today: straight to the processor's own card page when it has one (a
            # setup-mode Stripe Checkout, as Autumn does), else this server's setup page.
            url = processor.card_page_url(conn, customer_ref(customer), session, base_url) or url
        return _response(customer, entity_id, url=url)


def open_customer_portal(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        customer, _, now = _customer_and_entity(ctx, conn, body)
        _, url = create_portal_session(conn, customer.pk, now, base_url, body.get("return_url"))
        return {"customer_id": customer.id, "url": url}


def list_invoices(conn: Connection, customer: CustomerRow) -> list[dict[str, Any]]:
    """``customer.invoices`` for ``expand: ["invoices"]``."""
    from reference_server.engine.billing.money import minor_to_json
    from reference_server.store.billing_tables import invoices
    from reference_server.store.import_tables import imported_invoices

    rows = conn.execute(
        select(invoices, imported_invoices.c.processor_type)
        .outerjoin(imported_invoices, imported_invoices.c.invoice_pk == invoices.c.pk)
        # Drafts holding pending lines for the next renewal are not invoices yet; an invoice-mode draft
        # (``invoice_mode.finalize: false``) is, listed as ``draft`` with no page to pay it.
        .where(
            invoices.c.customer_pk == customer.pk,
            or_(invoices.c.status != "draft", invoices.c.reason == INVOICE_REASON),
        )
        .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
    ).all()
    return [
        {
            "plan_ids": list(r.plan_ids or []),
            "stripe_id": r.processor_id or r.id,
            "processor_type": r.processor_type or "stripe",  # invoices.insert may record RevenueCat's
            "status": r.status,
            "total": minor_to_json(int(r.total), r.currency),
            "currency": r.currency,
            "created_at": r.created_at,
            "hosted_invoice_url": r.hosted_url,
        }
        for r in rows
    ]


def _org_stripe_processor(state: AppState, conn: Connection, org_pk: int, env: str) -> StripeProcessor | None:
    """The Stripe processor of the organization's environment (its own Stripe account, a connected
    one, or the server's): it gives back Stripe payments and cleans up after deleted customers; None
    when the organization is charged locally."""
    return processors_of(state).stripe_for_org(conn, org_pk, env)
