"""billing.multi_attach and its preview: several plans attached together, due on one invoice."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from autumn_sdk._generated.json_types import AttachResponseJson, PreviewAttachResponseJson
from autumn_sdk._generated.models import (
    AttachDiscount,
    AttachParams,
    MultiAttachParams,
    PreviewMultiAttachParams,
)
from reference_server.billing.attach import check_attach_mode, prepare_attach, redirect_for
from reference_server.billing.attach_dates import backdate
from reference_server.billing.checkout_session_params import check_checkout_session_params
from reference_server.billing.convert import engine_plan
from reference_server.billing.customer_lock import customer_lock
from reference_server.billing.discounts import CouponTerms, resolve_discounts
from reference_server.billing.no_billing import unbilled
from reference_server.billing.payment_collection import (
    bill_by_invoice,
    change_response,
    charge_or_retry_link,
    checkout_action,
    invoice_mode_for,
    rule_error,
    settle_due,
)
from reference_server.billing.plan_changes import (
    AttachState,
    apply_attach,
    customer_ref,
    emit_billing_updated,
)
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.resolve import built_params
from reference_server.billing.sessions import create_checkout_session
from reference_server.engine.billing import (
    AttachQuote,
    BillingRuleError,
    TrialChoice,
)
from reference_server.engine.billing.attach_quotes import check_multi_attach, combine_due
from reference_server.engine.billing.checkout import checkout_type
from reference_server.engine.billing.discounts import CouponKind
from reference_server.engine.billing.money import DEFAULT_CURRENCY
from reference_server.engine.billing.preview import attach_preview_body
from reference_server.errors import ApiError, invalid
from reference_server.service.context import Ctx
from reference_server.service.entities import ensure_customer, ensure_entity
from reference_server.service.maintenance import require_customer
from reference_server.service.subscriptions import load_instances
from reference_server.store import instance_billing
from reference_server.store.subjects import EntityRow

MultiAttachRequest = MultiAttachParams | PreviewMultiAttachParams


def _plan_params(params: MultiAttachRequest) -> list[AttachParams]:
    """Each plan as the request of a lone ``billing.attach`` (the request's customer, entity, invoice
    mode and ``billing_behavior`` as attach's ``proration_behavior``, the plan's own fields winning).

    A plan's ``entity_id`` is its scope: omitted, the request's; ``null``, the customer itself."""
    if not params.plans:
        raise invalid("plans: at least one plan is required", "invalid_inputs")
    keys = {"customer_id", "entity_id", "invoice_mode", "enable_plan_immediately"}
    shared = {k: v for k, v in params.model_dump(include=keys, exclude_unset=True).items() if v is not None}
    if params.billing_behavior is not None:  # attach's proration_behavior, for every plan of the request
        shared["proration_behavior"] = params.billing_behavior
    out = []
    for plan in params.plans:
        own = {k: v for k, v in plan.model_dump(exclude_unset=True).items() if v is not None}
        if "entity_id" in plan.model_fields_set:
            own["entity_id"] = plan.entity_id  # (null: customer-level, even when the request names one)
        out.append(built_params(AttachParams, {**shared, **own}))
    return out


def _with_request_trial(
    ctx: Ctx, conn: Connection, params: MultiAttachRequest, plan_params: list[AttachParams]
) -> list[AttachParams]:
    """The request-wide ``free_trial``: Autumn's one trial for the subscription the multi-attach makes, so
    every plan with a recurring price starts it (in place of its own trial or its ``customize.free_trial``,
    which Autumn does not read when the request names one); ``null`` attaches them all without a trial.
    A plan without a recurring price (free, one-off) has no period for a trial to defer: it is left as is."""
    if "free_trial" not in params.model_fields_set:
        return plan_params
    trial = params.free_trial.model_dump(mode="json", exclude_unset=True) if params.free_trial else None
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    out = []
    for plan_param in plan_params:
        plan = cat.plans.get(plan_param.plan_id)
        if plan is None or plan.is_free or engine_plan(plan, cat).billing_interval() is None:
            out.append(plan_param)  # (an unknown plan is refused by the attach it becomes)
            continue
        customize = plan_param.customize.model_dump(exclude_unset=True) if plan_param.customize else {}
        data = {**plan_param.model_dump(exclude_unset=True), "customize": {**customize, "free_trial": trial}}
        out.append(built_params(AttachParams, data))
    return out


def _spread_discounts(
    plan_params: list[AttachParams], coupons: list[CouponTerms], priced: set[str]
) -> list[AttachParams]:
    """The request's coupons on its plans with a price (``priced``: their ids; a plan without one has no
    invoice to discount): a percentage on every one it applies to, an amount (or an invoice credit) on the
    first only, so it is taken once; a coupon named by a promo code names it on the first plan (one
    redemption of the code) and by its reward id on the others."""
    given: list[list[AttachDiscount]] = [[] for _ in plan_params]
    for coupon in coupons:
        targets = [
            i
            for i, p in enumerate(plan_params)
            if p.plan_id in priced and (coupon.plan_ids is None or p.plan_id in coupon.plan_ids)
        ]
        if coupon.kind is not CouponKind.PERCENTAGE:
            targets = targets[:1]
        for n, i in enumerate(targets):
            if n == 0 and coupon.promotion_code is not None:
                given[i].append(AttachDiscount(promotion_code=coupon.promotion_code))
            else:
                given[i].append(AttachDiscount(reward_id=coupon.reward_id))
    return [p.model_copy(update={"discounts": d or None}) for p, d in zip(plan_params, given, strict=True)]


def _scope_entity(
    prepared: list[tuple[AttachState, AttachQuote, TrialChoice | None]], requested: str | None
) -> EntityRow | None:
    """The entity the multi-attach as a whole is for (its invoice, response and preview): the one every
    plan is attached to; with plans of several scopes, the request's own entity, if it names one."""
    entities = [state.entity for state, _, _ in prepared]
    if len({e.pk if e else None for e in entities}) == 1:
        return entities[0]
    return next((e for e in entities if e is not None and e.id == requested), None)


def _prepare_multi(
    ctx: Ctx, conn: Connection, params: MultiAttachRequest, check: bool = True
) -> list[tuple[AttachState, AttachQuote, TrialChoice | None]]:
    plan_params = _with_request_trial(ctx, conn, params, _plan_params(params))
    if params.discounts:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        priced = {plan_id for plan_id, plan in cat.plans.items() if not plan.is_free}
        coupons = resolve_discounts(ctx, conn, params.discounts, DEFAULT_CURRENCY)
        plan_params = _spread_discounts(plan_params, coupons, priced)
    prepared = [prepare_attach(ctx, conn, p) for p in plan_params]
    if check:  # (not when a paid checkout completes it: it was checked when asked for)
        for state, quote, trial in prepared:
            check_attach_mode(state, quote, trial)
    # Group and ownership rules hold within each scope (the customer, or one entity).
    scopes: dict[int | None, list[AttachState]] = {}
    for state, _, _ in prepared:
        scopes.setdefault(state.entity.pk if state.entity else None, []).append(state)
    for entity_pk, states in scopes.items():
        owned = [i.plan_id for i in states[0].instances if i.status == "active" and i.entity_pk == entity_pk]
        try:
            check_multi_attach([engine_plan(s.plan, s.cat) for s in states], owned)
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
    if params.starts_at is not None:
        prepared = _backdated(conn, prepared, params.starts_at)
    return prepared


PAST_START_REQUIRES_INVOICE = (
    "Past starts_at cannot go through checkout: it needs a saved payment method or invoice mode."
)


def _backdated(
    conn: Connection, prepared: list[tuple[AttachState, AttachQuote, TrialChoice | None]], starts_at: int
) -> list[tuple[AttachState, AttachQuote, TrialChoice | None]]:
    """``starts_at``: a past moment backdates the paid recurring plans (:func:`.attach_dates.backdate`,
    shared with ``billing.attach``); a multi-attach takes no later one."""
    if starts_at > prepared[0][0].now:
        raise invalid("Multi-attach starts_at only supports past timestamps.", "invalid_request")
    return backdate(
        conn,
        prepared,
        starts_at,
        "Past starts_at requires a paid recurring plan and does not support one-off plans.",
    )


def _multi_attach_unlocked(ctx: Ctx, params: MultiAttachParams) -> AttachResponseJson:
    base_url = ctx.base_url
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        _create_missing_subjects(ctx, conn, params)
        return multi_attach_in(ctx, conn, params, base_url)


def _redirects(
    ctx: Ctx,
    params: MultiAttachRequest,
    prepared: list[tuple[AttachState, AttachQuote, TrialChoice | None]],
    has_pm: bool,
) -> bool:
    """Whether the multi-attach (or its preview) sends the customer to a checkout page, as Autumn's
    multi-attach decides: ``never`` never does (the charge is attempted, as for a lone attach);
    with a saved card only ``always`` does; without one, whenever a plan would need checkout alone."""
    if params.redirect_mode == "never":
        return False
    if has_pm:
        return params.redirect_mode == "always"
    return any(redirect_for(ctx, s, q, t)[0] for s, q, t in prepared)


def _create_missing_subjects(
    ctx: Ctx, conn: Connection, params: MultiAttachRequest, *, bill_seats: bool = True
) -> None:
    """``customer_data`` creates the customer, ``entity_data`` the entity, when they do not exist yet
    (in the attach's own transaction: a refused attach creates neither).  A preview passes
    ``bill_seats=False``: the entity uses its seat but nothing is charged for it, and the preview's
    rollback takes both back."""
    cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    if params.customer_data is not None:
        ensure_customer(ctx, conn, cat, params.customer_id, params.customer_data)
    if params.entity_id is not None and params.entity_data is not None:
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        ensure_entity(
            ctx, conn, cat, customer, params.entity_id, params.entity_data, now, bill_seats=bill_seats
        )


def multi_attach_in(
    ctx: Ctx,
    conn: Connection,
    params: MultiAttachParams,
    base_url: str,
    paid: bool = False,
    created: list[int] | None = None,
    action_op: str = "multi_attach",
    action_params: BaseModel | None = None,
    no_billing: bool = False,
) -> AttachResponseJson:
    """Attach several plans inside ``conn``'s transaction; ``paid``: a checkout collected the money.

    ``action_op``/``action_params``: what completing the checkout or paying the invoice does (a schedule
    passes its own request); by default this multi-attach. ``no_billing``: the schedule's
    ``no_billing_changes``, the plans attached with nothing billed (billing/no_billing.py)."""
    prepared = _prepare_multi(ctx, conn, params, check=not paid and not no_billing)
    if no_billing:
        for state, _, _ in prepared:
            state.no_billing = True
        prepared = [(state, unbilled(quote), trial) for state, quote, trial in prepared]
        paid = True  # nothing to collect: the plans are attached as they are
    first = prepared[0][0]
    scope = _scope_entity(prepared, params.entity_id)
    entity_id = scope.id if scope else None
    try:
        due = combine_due([q for _, q, _ in prepared])
    except BillingRuleError as exc:
        raise rule_error(exc) from exc

    def start() -> None:
        changes: dict[int | None, list[dict[str, Any]]] = {}
        entities: dict[int | None, EntityRow | None] = {}
        made: list[int] = []
        for state, quote, trial in prepared:
            state.instances = load_instances(conn, state.customer.pk)
            key = state.entity.pk if state.entity else None
            entities[key] = state.entity
            changes.setdefault(key, []).extend(apply_attach(state, quote, trial, made))
        if created is not None:
            created.extend(made)
        if len(made) > 1:  # one subscription: the plans renewing at the same boundary share an invoice
            instance_billing.set_billing_group(conn, made, f"multi_attach_{made[0]}")
        for key, scope_changes in changes.items():  # one event per scope, as one attach there would send
            emit_billing_updated(
                ctx,
                conn,
                first.customer,
                entities[key],
                scope_changes,
                first.now,
                sync_processor=not no_billing,
            )

    invoice_params = action_params if action_params is not None else params
    mode = None if paid else invoice_mode_for(params.invoice_mode, due)
    if mode is not None:
        # (a schedule's action params are the schedule: its invoice_mode is the one given to phase 0)
        return bill_by_invoice(
            ctx,
            conn,
            first.customer,
            scope,
            due,
            first.now,
            base_url,
            action_op,
            invoice_params,
            start,
            mode=mode,
            enable_plan_immediately=params.enable_plan_immediately,
            success_url=params.success_url,
        )
    invoice = None
    if not paid:
        processor = processor_for(ctx.state, conn, first.customer.pk)
        has_pm = processor.default_payment_method(conn, customer_ref(first.customer)) is not None
        redirect = _redirects(ctx, params, prepared, has_pm)
        action = checkout_action(ctx, action_op, invoice_params)
        if redirect and not has_pm and params.starts_at is not None:  # (Stripe Checkout, not a confirmation)
            raise invalid(PAST_START_REQUIRES_INVOICE, "invalid_request")
        if redirect:
            _, url = create_checkout_session(
                conn, first.customer.pk, due, action, first.now, base_url, params.success_url
            )
            return change_response(first.customer, entity_id, payment_url=url)
        invoice, failure = charge_or_retry_link(
            ctx,
            conn,
            first.customer,
            scope,
            due,
            "multi_attach",
            first.now,
            base_url,
            action,
            params.success_url,
        )
        if failure is not None:
            return failure
    start()
    return change_response(
        first.customer, entity_id, None, invoice=invoice.to_api() if invoice is not None else None
    )


def preview_multi_attach(ctx: Ctx, params: PreviewMultiAttachParams) -> PreviewAttachResponseJson:
    """The multi-attach's preview, priced as :func:`multi_attach` would price it: a customer or entity
    that ``customer_data``/``entity_data`` would create is created in the preview's transaction, which
    is rolled back (Autumn's preview makes no changes), so nothing is written and nothing charged."""
    try:
        settle_due(ctx, params.customer_id)
    except ApiError as exc:  # a customer the request would create has nothing due yet
        if exc.code != "customer_not_found" or params.customer_data is None:
            raise
    with ctx.db.write() as conn:
        check_checkout_session_params(ctx, conn, params)
        _create_missing_subjects(ctx, conn, params, bill_seats=False)
        prepared = _prepare_multi(ctx, conn, params)
        first = prepared[0][0]
        scope = _scope_entity(prepared, params.entity_id)
        processor = processor_for(ctx.state, conn, first.customer.pk)
        has_pm = processor.default_payment_method(conn, customer_ref(first.customer)) is not None
        try:
            invoiced = invoice_mode_for(params.invoice_mode, combine_due([q for _, q, _ in prepared]))
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
        redirect = invoiced is None and _redirects(ctx, params, prepared, has_pm)
        if redirect and not has_pm and params.starts_at is not None:  # (Stripe Checkout, not a confirmation)
            raise invalid(PAST_START_REQUIRES_INVOICE, "invalid_request")
        try:
            out = attach_preview_body(
                first.customer.id or "",
                [q for _, q, _ in prepared],
                redirect,
                checkout_type(prepared[0][1], redirect, has_pm),
                scope.id if scope else None,
            )
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
        conn.rollback()
        return out


def multi_attach(ctx: Ctx, params: MultiAttachParams) -> AttachResponseJson:
    """``billing.multi_attach``, under the customer's billing lock."""
    with customer_lock(ctx, params.customer_id):
        return _multi_attach_unlocked(ctx, params)
