"""``billing.multi_update`` and ``billing.preview_multi_update``: several ``billing.update``s of one
customer (cancel, cancel at period end, uncancel), applied as one unit and previewed the same way.

Each update is resolved, checked and quoted exactly as a lone ``billing.update`` (its entity is its
own ``entity_id``, else the request's); two updates of the same plan instance are refused, as Autumn
refuses them.  Everything is checked before anything changes; then, in one transaction under the
customer's billing lock, every update is applied and what they make due is settled on ONE invoice
(a cancel's prorated credit, an ending plan's pending prorations).  Any failure (a bad update, a
charge that needs the customer: Autumn's multi update never sends the customer to a checkout) rolls
the whole transaction back, and a processor payment made inside it is compensated after the rollback
(:mod:`reference_server.processors.compensation`).

The preview returns one core preview per affected paid plan instance (each bills as its own
subscription here); updates of free plans have no entry, as in Autumn.  Each is built as
``billing.preview_update`` builds its body (paid seat pools hidden from ``feature_quantities``), with
the same ``incoming`` and ``outgoing`` (:mod:`.update_changes`): the group's free default a cancelled
main plan brings back, then the plan itself when it stays (cancelled at its period's end, or
uncancelled); out goes the plan a cancel ends, or an uncancelled plan as it stood.

``refund_last_payment`` (an argument of the official SDK beyond Autumn's published spec:
``x-official-arguments`` of ``spec/autumn-sdk-1.2.0-operations.yml``) refunds, for each update that
cancels immediately, that plan's last payment as a lone ``billing.update`` with it does
(:mod:`reference_server.billing.last_payment_refund`), in place of its prorated credit; a request with
it and no immediate cancel is refused as the lone update refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    AttachResponseJson,
    MultiUpdatePreviewResponseJson,
    MultiUpdatePreviewSubscriptionJson,
)
from autumn_sdk._generated.models import (
    MultiUpdateParams,
    PreviewMultiUpdateParams,
    UpdateSubscriptionParams,
)
from reference_server.billing.customer_lock import customer_lock
from reference_server.billing.last_payment_refund import check_refund_request
from reference_server.billing.license_seats import hide_seats
from reference_server.billing.payment_collection import settle_due
from reference_server.billing.plan_changes import charge_draft
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.quoted_update import QuotedUpdate
from reference_server.billing.resolve import resolve_update
from reference_server.billing.update_apply import apply_update, update_free
from reference_server.billing.update_changes import update_changes
from reference_server.billing.update_quote import update_quotes
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import minor_to_json
from reference_server.engine.billing.preview import subscription_preview_body
from reference_server.errors import ApiError, invalid
from reference_server.service.context import Ctx
from reference_server.service.subscriptions import Instance
from reference_server.store.subjects import CustomerRow, EntityRow

MultiUpdateRequest = MultiUpdateParams | PreviewMultiUpdateParams


def _item_params(params: MultiUpdateRequest) -> list[UpdateSubscriptionParams]:
    """Each update as the request of a lone ``billing.update`` (its own entity wins over the request's)."""
    if not params.updates:
        raise invalid("updates: at least one update is required", "invalid_inputs")
    out = []
    for item in params.updates:
        one: dict[str, Any] = {"customer_id": params.customer_id}
        entity_id = item.entity_id or params.entity_id
        if entity_id:
            one["entity_id"] = entity_id
        refund = params.refund_last_payment if item.cancel_action == "cancel_immediately" else None
        check_refund_request(refund, item.cancel_action, item.proration_behavior)
        fields = {
            "plan_id": item.plan_id,
            "subscription_id": item.subscription_id,
            "cancel_action": item.cancel_action,
            "proration_behavior": item.proration_behavior,
            "refund_last_payment": refund,
        }
        one.update({k: v for k, v in fields.items() if v is not None})
        out.append(UpdateSubscriptionParams.model_validate(one))
    if params.refund_last_payment is not None and not any(o.refund_last_payment for o in out):
        check_refund_request(params.refund_last_payment, None, None)  # no update cancels immediately
    return out


@dataclass
class _Item:
    """One resolved update: a free plan's (applied by the core) or a paid plan's quotes."""

    params: UpdateSubscriptionParams
    inst: Instance
    free: dict[str, Any] | None  # resolve_update's values for update_free
    quotes: QuotedUpdate | None  # billing.update_quote.update_quotes for a paid plan

    @property
    def customer(self) -> CustomerRow:
        return self.quotes.customer if self.quotes is not None else (self.free or {})["customer"]

    @property
    def now(self) -> int:
        return self.quotes.now if self.quotes is not None else (self.free or {})["now"]

    @property
    def entity(self) -> EntityRow | None:
        return self.quotes.entity if self.quotes is not None else (self.free or {}).get("entity")


def _resolve(ctx: Ctx, conn: Connection, params: MultiUpdateRequest) -> list[_Item]:
    """Resolve, check and quote every update before anything changes."""
    items: list[_Item] = []
    seen: set[int] = set()
    for one in _item_params(params):
        cat, customer, entity, inst, instances, now = resolve_update(ctx, conn, one)
        if inst.pk in seen:
            raise invalid(
                f"Multiple updates target the same plan ({inst.plan_id}). Combine them into a single update."
            )
        seen.add(inst.pk)
        plan = cat.plans_by_pk.get(inst.plan_pk)
        if plan is not None and plan.is_free:
            free = {
                "cat": cat,
                "customer": customer,
                "entity": entity,
                "inst": inst,
                "instances": instances,
                "now": now,
            }
            _check_free(one, inst)
            items.append(_Item(one, inst, free, None))
        else:
            items.append(_Item(one, inst, None, update_quotes(ctx, conn, one)))
    return items


def _check_free(params: UpdateSubscriptionParams, inst: Instance) -> None:
    """What ``update_free`` refuses, checked up front so no update is applied before a refusal."""
    action = params.cancel_action
    if action in ("cancel_immediately", "cancel_end_of_cycle", "uncancel") and inst.status != "active":
        verb = "uncancelled" if action == "uncancel" else "cancelled"
        raise invalid(f"Only an active plan can be {verb}")


def _combined_due(items: list[_Item]) -> InvoiceDraft:
    drafts = [it.quotes.due for it in items if it.quotes is not None and it.quotes.due.lines]
    if not drafts:
        return InvoiceDraft()
    currencies = {d.currency for d in drafts}
    if len(currencies) > 1:
        raise invalid("The updated plans are billed in different currencies")
    lines = tuple(line for d in drafts for line in d.lines)
    return InvoiceDraft(lines, drafts[0].currency)


def multi_update(ctx: Ctx, params: MultiUpdateParams) -> AttachResponseJson:
    with customer_lock(ctx, params.customer_id):
        return _multi_update(ctx, params, ctx.base_url)


def _multi_update(ctx: Ctx, params: MultiUpdateParams, base_url: str) -> AttachResponseJson:
    with ctx.db.write() as conn:
        items = _resolve(ctx, conn, params)
        due = _combined_due(items)
        for it in items:
            if it.free is not None:
                update_free(ctx, conn, it.params, **it.free)
            else:
                assert it.quotes is not None
                # ``paid=True``: nothing is charged per update; the one invoice below settles them all.
                apply_update(ctx, conn, it.quotes, base_url, paid=True)
        first = items[0]
        customer, now = first.customer, first.now
        entity = _request_entity(items, params.entity_id)
        out: AttachResponseJson = {"customer_id": customer.id or "", "payment_url": None}
        if params.entity_id:
            out["entity_id"] = params.entity_id
        processor = processor_for(ctx.state, conn, customer.pk)
        outcome = charge_draft(processor, conn, customer, due, "update", now, base_url, entity)
        if outcome is not None and not outcome.succeeded:
            action = outcome.required_action()
            reason = (action["reason"] if action is not None else "") or "the payment failed"
            raise ApiError(
                400,
                "invalid_request",
                f"Multi update does not support updates that require payment from the customer ({reason})",
            )
        if outcome is not None and outcome.invoice is not None:
            out["invoice"] = outcome.invoice.to_api()
        return out


def _request_entity(items: list[_Item], entity_id: str | None) -> EntityRow | None:
    """The entity the invoice is made out to: the request's, when every update is on it."""
    if not entity_id:
        return None
    for it in items:
        entity = it.entity
        if entity is not None and entity.id == entity_id:
            return entity
    return None


def preview_multi_update(ctx: Ctx, params: PreviewMultiUpdateParams) -> MultiUpdatePreviewResponseJson:
    settle_due(ctx, params.customer_id)
    with ctx.db.write() as conn:
        items = _resolve(ctx, conn, params)
        _combined_due(items)  # the currencies must agree, as for the update itself
        subscriptions: list[MultiUpdatePreviewSubscriptionJson] = []
        currency: str | None = None
        total = 0
        for it in items:
            q = it.quotes
            if q is None:
                continue
            subscriptions.append(_subscription_preview(q))
            due = q.due
            currency = currency or due.currency
            total += due.total
        customer = items[0].customer
        conn.rollback()
    currency = currency or InvoiceDraft().currency
    return {
        "customer_id": customer.id or "",
        "currency": currency,
        "total": minor_to_json(total, currency),
        "subscriptions": subscriptions,
    }


def _subscription_preview(q: QuotedUpdate) -> MultiUpdatePreviewSubscriptionJson:
    """One update's core preview, built as ``billing.preview_update`` builds it: its paid seat pools
    hidden, what comes in and goes out as that preview lists it (update_changes.py)."""
    incoming, outgoing = update_changes(q)
    cycles = [q.next_cycle] if q.next_cycle is not None else []
    customer_id = q.customer.id or ""
    return hide_seats(
        subscription_preview_body(customer_id, q.due, cycles, incoming, outgoing, [q.inst.plan_id])
    )
