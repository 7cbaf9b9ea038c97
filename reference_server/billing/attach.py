"""billing.attach and billing.preview_attach, under the customer's billing lock.

Plans without a price take the free path (§5.1): they activate at once, free-to-free switches within
a group are immediate upgrades and add-ons stack.  A priced plan (or a switch away from one) is quoted
by the engine, then charged, sent to checkout or invoiced (:mod:`.payment_collection`) and applied.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import AttachResponseJson, PreviewAttachResponseJson
from autumn_sdk._generated.models import AttachParams, PreviewAttachParams
from reference_server.billing.attach_dates import dated_quote, refuse_past_start_checkout
from reference_server.billing.checkout_session_params import check_checkout_session_params
from reference_server.billing.convert import (
    customized_plan,
    engine_plan,
    engine_subscription,
    feature_quantities,
    is_customized,
)
from reference_server.billing.customer_lock import customer_lock
from reference_server.billing.discounts import (
    DiscountedChange,
    discount_change,
    refuse_unbilled,
    removed_rewards,
    resolve_discounts,
    running_discounts,
)
from reference_server.billing.free_trial_shorthand import fold_free_trial
from reference_server.billing.invoice_mode import check_attach
from reference_server.billing.license_seats import (
    attach_seats,
    hide_seats,
    save_attach_links,
)
from reference_server.billing.no_billing import check_no_billing, skips_billing, unbilled
from reference_server.billing.payment_collection import (
    bill_by_invoice,
    change_response,
    charge_or_retry_link,
    checkout_action,
    cycle_plus_lines,
    invoice_mode_for,
    plus_lines,
    rule_error,
    settle_due,
)
from reference_server.billing.plan_changes import (
    AttachState,
    apply_attach,
    customer_ref,
    emit_billing_updated,
    trial_used,
    without_carried_usage,
)
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.resolve import (
    AttachRequest,
    needs_paid_billing,
    plans_to_remove,
    resolve_attach,
)
from reference_server.billing.seats import starting_seat_usage
from reference_server.billing.sessions import create_checkout_link, create_checkout_session, session_url
from reference_server.billing.stripe_metadata import (
    attach_metadata,
    check_attach_metadata,
    keep_attach_metadata,
)
from reference_server.engine.billing import (
    AttachQuote,
    BillingRuleError,
    ChangeKind,
    FreeTrial,
    TrialChoice,
    choose_trial,
    quote_attach,
)
from reference_server.engine.billing.attach_dates import StartTiming, start_timing
from reference_server.engine.billing.checkout import checkout_type, needs_checkout
from reference_server.engine.billing.custom_lines import CustomLine, with_custom_lines
from reference_server.engine.billing.money import DEFAULT_CURRENCY, to_decimal
from reference_server.engine.billing.preview import attach_preview_body
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.subscriptions import (
    Instance,
    activate_plan,
    expire_instance,
    expire_scheduled_switches,
)
from reference_server.store.billing_sessions import WAITING, SessionRecord, load_session, update_session
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.pending_lines import pending_lines
from reference_server.store.subjects import CustomerRow, EntityRow


def attach_free(
    ctx: Ctx,
    conn: Connection,
    params: AttachRequest,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    plan: Plan,
    current: Instance | None,
    instances: list[Instance],
    now: int,
) -> AttachResponseJson:
    entity_pk = entity.pk if entity else None
    _check_subscription_id(params, instances)
    # A plan without a price has no invoice to discount: its discounts are checked, and kept nowhere.
    resolve_discounts(ctx, conn, params.discounts, DEFAULT_CURRENCY)
    carried = None
    if current is not None:
        if current.plan_id == plan.id:
            current_plan = cat.plans_by_pk.get(current.plan_pk)
            name = current_plan.name if current_plan else plan.name
            raise ApiError(
                409,
                "plan_already_attached",
                f"Cannot attach because the customer's current product '{name}' is the same as the "
                "product being attached",
            )
        carried = expire_instance(conn, current.pk, now)
    for removed in plans_to_remove(cat, params, plan, current, instances, entity_pk):
        expire_instance(conn, removed.pk, now)
    if not plan.add_on:
        # An immediate change replaces any switch that was scheduled in this group and scope.
        expire_scheduled_switches(conn, cat, instances, plan.group, entity_pk)
    activate_plan(
        conn,
        cat,
        customer=customer,
        entity=entity,
        plan=plan,
        now=now,
        subscription_id=params.subscription_id,
        carried_usage=carried.continuous_usage if carried else None,
        next_reset_overrides=carried.next_resets if carried else None,
    )
    out: AttachResponseJson = {"customer_id": customer.id or "", "payment_url": None}
    if entity is not None and entity.id is not None:  # (found by the request's entity_id)
        out["entity_id"] = entity.id
    return out


def _check_subscription_id(params: AttachRequest, instances: list[Instance]) -> None:
    if params.subscription_id and any(i.subscription_id == params.subscription_id for i in instances):
        raise ApiError(
            409,
            "subscription_id_already_exists",
            f"Subscription id {params.subscription_id} is already used by this customer",
        )


def _trial_for(conn: Connection, state: AttachState) -> TrialChoice | None:
    customize = state.params.customize
    skip = (
        customize is not None and "free_trial" in customize.model_fields_set and customize.free_trial is None
    )
    eplan = engine_plan(state.plan, state.cat)
    override: FreeTrial | None = eplan.free_trial if customize is not None and customize.free_trial else None
    trial = state.plan.free_trial
    unique = bool(trial and trial.get("unique_fingerprint"))
    used = trial_used(conn, state.customer, state.plan.id, unique)
    return choose_trial(eplan, state.now, used, override=override, skip_trial=skip)


def prepare_attach(
    ctx: Ctx, conn: Connection, params: AttachRequest
) -> tuple[AttachState, AttachQuote, TrialChoice | None]:
    """Resolve and price one attach (shared by attach, previews, multi-attach and checkout completion)."""
    cat, customer, entity, plan, current, instances, now = resolve_attach(ctx, conn, params)
    customize = params.customize
    plan = customized_plan(plan, customize)
    licensed = attach_seats(conn, cat, plan, current.pk if current is not None else None, params)
    plan, seat_quantities = licensed.plan, licensed.quantities
    customized = is_customized(customize)
    no_billing = skips_billing(params)
    state = AttachState(
        ctx, conn, cat, customer, entity, plan, customized, current, instances, now, params, no_billing
    )
    _check_subscription_id(params, instances)
    current_sub = engine_subscription(conn, cat, current) if current is not None else None
    trial = _trial_for(conn, state)
    seats = starting_seat_usage(conn, cat, customer.pk, plan, entity, current.pk if current else None)
    try:
        quote = quote_attach(
            current_sub,
            engine_plan(plan, cat),
            now,
            {**feature_quantities(params.feature_quantities), **seat_quantities},
            trial,
            proration_behavior=params.proration_behavior or "prorate_immediately",
            plan_schedule=params.plan_schedule,
            seat_usage=seats,
            reset_anchor=params.billing_cycle_anchor == "now",
        )
    except BillingRuleError as exc:
        raise rule_error(exc) from exc
    quote = dated_quote(state, quote, current_sub, trial, seats)  # starts_at, ends_at (attach_dates.py)
    if quote.kind is ChangeKind.DOWNGRADE or quote.trial_ends_at is None:
        trial = None
    if current is not None and quote.kind in (ChangeKind.UPGRADE, ChangeKind.SAME):
        pending = pending_lines(conn, customer.pk, current.plan_id, entity.id if entity else None)
        carried = no_billing and not plan.is_free  # to the replacing plan's next invoice (no_billing.py)
        if quote.kind is ChangeKind.UPGRADE and not carried:
            # The outgoing plan's pending next-cycle prorations are settled on the switch's invoice
            # (its last invoice), never left behind; apply_attach removes them from the draft.
            due = plus_lines(quote.due_now, pending)
            if params.carry_over_usages is not None:  # carried usage is billed by the new plan, not twice
                due = without_carried_usage(due, current.plan_id, params.carry_over_usages)
            quote = dataclasses.replace(quote, due_now=due)
        elif quote.next_cycle is not None:
            quote = dataclasses.replace(quote, next_cycle=cycle_plus_lines(quote.next_cycle, pending))
    if params.custom_line_items:
        given = [CustomLine(to_decimal(item.amount), item.description) for item in params.custom_line_items]
        try:
            quote = with_custom_lines(quote, current_sub, given)
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
    # Coupons (discounts.py): those of the instance it replaces now keep going on its successor, and the
    # request's are added; they discount what it bills now and its next cycle.
    replaces_now = quote.kind in (ChangeKind.UPGRADE, ChangeKind.SAME) and not quote.scheduled
    running = running_discounts(conn, current.pk) if current is not None and replaces_now else []
    refuse_unbilled(params.discounts, no_billing)
    removed = removed_rewards(params.discounts, params.remove_discounts, no_billing)
    named = resolve_discounts(ctx, conn, params.discounts, quote.due_now.currency)
    # A plan that follows the current one at its end (a downgrade, a later start) takes its coupons then
    # (renewals.py): its next cycle is shown with them, though they stay on the current plan until then.
    follows = (quote.kind is ChangeKind.DOWNGRADE or quote.scheduled) and not state.plan.add_on
    inherited = running_discounts(conn, current.pk) if current is not None and follows else []
    inherited = [t for t in inherited if t.reward_id not in removed]
    undiscounted = quote
    if running or named:
        state.discounts = discount_change(
            quote.due_now, quote.next_cycle, running, named, not no_billing, removed
        )
        quote = state.discounts.on(quote)
    if removed and current is not None and not replaces_now:  # (a later change: they end now all the same)
        ended = tuple(
            t.record_pk
            for t in running_discounts(conn, current.pk)
            if t.record_pk is not None and t.reward_id in removed
        )
        if ended:
            base = state.discounts or DiscountedChange(quote.due_now, quote.next_cycle, [], [])
            state.discounts = dataclasses.replace(base, removed=base.removed + ended)
    if inherited and not no_billing:
        shown = discount_change(undiscounted.due_now, undiscounted.next_cycle, inherited, named)
        quote = dataclasses.replace(quote, next_cycle=shown.next_cycle)
    if no_billing:  # the change as quoted, with nothing billed for it (no_billing.py)
        quote = unbilled(quote)
    return state, quote, trial


def redirect_for(
    ctx: Ctx, state: AttachState, quote: AttachQuote, trial: TrialChoice | None
) -> tuple[bool, bool]:
    """(needs checkout, has a payment method)."""
    processor = processor_for(ctx.state, state.conn, state.customer.pk)
    pm = processor.default_payment_method(state.conn, customer_ref(state.customer))
    redirect = needs_checkout(
        engine_plan(state.plan, state.cat),
        quote,
        pm is not None,
        state.params.redirect_mode or "if_required",
        trial.card_required if trial else True,
        starts_in_future=start_timing(state.params.starts_at, state.now) is StartTiming.FUTURE,
        invoice_mode=state.params.invoice_mode is not None,
    )
    return redirect, pm is not None


def attach_in(
    ctx: Ctx, conn: Connection, params: AttachRequest, base_url: str, paid: bool = False
) -> AttachResponseJson:
    """Attach inside ``conn``'s transaction; ``paid`` means a checkout already collected the money."""
    state, quote, trial = prepare_attach(ctx, conn, params)
    entity_id = state.entity.id if state.entity else None
    metadata = attach_metadata(params)  # for the Stripe invoice and subscription (stripe_metadata.py)
    invoice = None
    collect = not paid and not state.no_billing  # (no_billing_changes: nothing to collect, no_billing.py)
    if collect:
        check_attach_mode(state, quote, trial)
    invoice_mode = invoice_mode_for(params.invoice_mode, quote.due_now) if collect else None
    if invoice_mode is not None:

        def start() -> None:
            created: list[int] = []
            changes = apply_attach(state, quote, trial, created)
            keep_attach_metadata(conn, state, quote.kind, created, metadata)
            save_attach_links(conn, state.cat, state.plan, created, params, state.now)
            emit_billing_updated(ctx, conn, state.customer, state.entity, changes, state.now)

        return bill_by_invoice(
            ctx,
            conn,
            state.customer,
            state.entity,
            quote.due_now,
            state.now,
            base_url,
            "attach",
            params,
            start,
            mode=invoice_mode,
            enable_plan_immediately=params.enable_plan_immediately,
            success_url=params.success_url,
            metadata=metadata,
        )
    if collect:
        redirect, has_pm = redirect_for(ctx, state, quote, trial)
        if redirect and not has_pm:
            refuse_past_start_checkout(params, state.now)
        action = checkout_action(ctx, "attach", params)
        if redirect:
            if params.long_lived_checkout:  # a link that prices the attach again whenever it is opened
                _, url = create_checkout_link(
                    conn, state.customer.pk, action, state.now, base_url, params.success_url
                )
            else:
                _, url = create_checkout_session(
                    conn, state.customer.pk, quote.due_now, action, state.now, base_url, params.success_url
                )
            return change_response(state.customer, entity_id, payment_url=url)
        invoice, failure = charge_or_retry_link(
            ctx,
            conn,
            state.customer,
            state.entity,
            quote.due_now,
            quote.kind.value,
            state.now,
            base_url,
            action,
            params.success_url,
            metadata,
        )
        if failure is not None:
            return failure
    created: list[int] = []
    changes = apply_attach(state, quote, trial, created)
    keep_attach_metadata(conn, state, quote.kind, created, metadata)
    save_attach_links(conn, state.cat, state.plan, created, params, state.now)
    emit_billing_updated(
        ctx, conn, state.customer, state.entity, changes, state.now, sync_processor=not state.no_billing
    )
    return change_response(
        state.customer, entity_id, None, invoice=invoice.to_api() if invoice is not None else None
    )


LINK_CHECKOUT_KEY = "checkout_session_id"
"""Where a long-lived link's action keeps the checkout its last opening created."""


def open_checkout_link(ctx: Ctx, conn: Connection, link: SessionRecord, base_url: str, now: int) -> str:
    """Opening a ``long_lived_checkout`` link: the checkout an earlier opening created while it still
    waits for its payment (or is paid: its page says so), else a fresh checkout of the attach, priced
    now (a plan attached meanwhile, or anything else the attach now refuses, is its 4xx)."""
    last = link.action.get(LINK_CHECKOUT_KEY)
    if last:
        earlier = load_session(conn, str(last), "checkout")
        if earlier is not None and (
            earlier.status == "complete" or (earlier.status in WAITING and now < earlier.expires_at)
        ):
            return session_url(base_url, "checkout", earlier.id)
    action = {k: v for k, v in link.action.items() if k != LINK_CHECKOUT_KEY}
    params = AttachParams.model_validate(action.get("body") or {})
    state, quote, trial = prepare_attach(ctx, conn, params)
    check_attach_mode(state, quote, trial)
    session_id, url = create_checkout_session(
        conn, state.customer.pk, quote.due_now, action, state.now, base_url, link.success_url
    )
    update_session(conn, link.pk, action={**action, LINK_CHECKOUT_KEY: session_id})
    return url


def check_attach_mode(state: AttachState, quote: AttachQuote, trial: TrialChoice | None) -> None:
    """Autumn's invoice-mode validation of one prepared attach (see :func:`invoice_mode.check_attach`)."""
    check_attach(
        state.params.invoice_mode,
        state.params.enable_plan_immediately,
        trial.card_required if trial else None,
        trial.on_end if trial else None,
        quote.scheduled,
    )


def paid_attach(ctx: Ctx, params: AttachRequest) -> AttachResponseJson:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        return attach_in(ctx, conn, params, base_url)


def _outgoing_quantities(conn: Connection, state: AttachState) -> dict[str, dict[str, Decimal]]:
    if state.current is None:
        return {}
    sub = engine_subscription(conn, state.cat, state.current)
    return {state.current.plan_id: dict(sub.prepaid_quantities)} if sub else {}


def preview_attach(ctx: Ctx, params: PreviewAttachParams) -> PreviewAttachResponseJson:
    params = fold_free_trial(params)
    settle_due(ctx, params.customer_id)
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        check_attach_metadata(ctx, conn, params)
        check_no_billing(params)
        state, quote, trial = prepare_attach(ctx, conn, params)
        if state.no_billing:  # no checkout, no invoice: the change is made as it is (no_billing.py)
            redirect, has_pm = False, True
        else:
            check_attach_mode(state, quote, trial)
            redirect, has_pm = redirect_for(ctx, state, quote, trial)
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


def attach(ctx: Ctx, params: AttachParams) -> AttachResponseJson:
    """``billing.attach``: a plan without a price (and nothing priced replaced) takes the free path;
    anything involving money the paid one; both under the customer's billing lock."""
    with customer_lock(ctx, params.customer_id):
        return _attach_unlocked(ctx, fold_free_trial(params))


def _attach_unlocked(ctx: Ctx, params: AttachParams) -> AttachResponseJson:
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        check_attach_metadata(ctx, conn, params)
        check_no_billing(params)
        cat, customer, entity, plan, current, instances, now = resolve_attach(ctx, conn, params)
        current_plan = cat.plans_by_pk.get(current.plan_pk) if current else None
        needs_paid = (
            needs_paid_billing(plan, current_plan)
            or params.redirect_mode == "always"
            or bool(params.license_quantities)  # paid seats: priced by the paid path
            or params.ends_at is not None  # (starts_at and ends_at are checked and priced there)
            or start_timing(params.starts_at, now) is not StartTiming.NOW
        )
        if not needs_paid:
            return attach_free(ctx, conn, params, cat, customer, entity, plan, current, instances, now)
    return paid_attach(ctx, params)
