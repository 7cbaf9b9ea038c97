"""Render quotes as the API's preview bodies (``billing.preview_attach`` / ``preview_update`` / multi).

Totals are major-unit JSON numbers (30 for $30), summed from the same integer minor units the real call
charges, so a preview always equals the invoice. Each body is its operation's generated ``TypedDict``
(``PreviewAttachResponseJson``, ``PreviewUpdateResponseJson``, a multi update's
``MultiUpdatePreviewSubscriptionJson``), so ``mypy --strict`` checks it against the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Literal, TypedDict

from typing_extensions import NotRequired

from autumn_sdk._generated.json_types import (
    MultiUpdatePreviewSubscriptionJson,
    PreviewAttachIncomingFeatureQuantityJson,
    PreviewAttachIncomingJson,
    PreviewAttachLineItemDiscountJson,
    PreviewAttachLineItemJson,
    PreviewAttachNextCycleJson,
    PreviewAttachNextCycleUsageLineItemJson,
    PreviewAttachResponseJson,
    PreviewUpdateRefundJson,
    PreviewUpdateResponseJson,
)

from .attach_quotes import AttachQuote, combine_due
from .checkout import CheckoutType
from .invoice import InvoiceDraft, LineDiscount, LineItem, LineKind, NextCycle, UsageLine
from .money import minor_to_json

UpdateIntent = Literal[
    "update_plan", "update_quantity", "cancel_immediately", "cancel_end_of_cycle", "uncancel", "none"
]
"""What a ``billing.update`` does, as its preview says (``intent``)."""


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _discount_json(share: LineDiscount, currency: str) -> PreviewAttachLineItemDiscountJson:
    body: PreviewAttachLineItemDiscountJson = {
        "amount_off": minor_to_json(abs(share.amount), currency),
        "reward_id": share.reward_id,
        "reward_name": share.reward_name,
    }
    if share.percent_off is not None:
        body["percent_off"] = _number(share.percent_off)
    return body


def line_item_json(line: LineItem, currency: str) -> PreviewAttachLineItemJson:
    """One line as Autumn's previews show it: ``subtotal`` before the coupons, ``total`` after them, their
    shares in ``discounts``."""
    total = line.amount + sum(share.amount for share in line.discounts)
    body: PreviewAttachLineItemJson = {
        "display_name": line.display_name,
        "description": line.description,
        "subtotal": minor_to_json(line.amount, currency),
        "total": minor_to_json(total, currency),
        "discounts": [_discount_json(share, currency) for share in line.discounts],
        "plan_id": line.plan_id,
        "feature_id": line.feature_id,
        "quantity": _number(line.quantity),
    }
    if line.period is not None:
        body["period"] = {"start": line.period.start, "end": line.period.end}
    return body


def _usage_line_json(line: UsageLine) -> PreviewAttachNextCycleUsageLineItemJson:
    body: PreviewAttachNextCycleUsageLineItemJson = {
        "display_name": line.display_name,
        "plan_id": line.plan_id,
        "feature_id": line.feature_id,
    }
    if line.period is not None:
        body["period"] = {"start": line.period.start, "end": line.period.end}
    return body


def subtotal_of(lines: Sequence[LineItem]) -> int:
    """What the lines add up to before discounts (a coupon's :attr:`LineKind.DISCOUNT` lines)."""
    return sum(line.amount for line in lines if line.kind is not LineKind.DISCOUNT)


def _shown(lines: Sequence[LineItem]) -> list[LineItem]:
    """The lines a preview lists: the coupons' :attr:`LineKind.DISCOUNT` lines are shown on the lines
    they discount (each line's ``discounts``), not apart."""
    return [line for line in lines if line.kind is not LineKind.DISCOUNT]


def invoice_lines_json(invoice: InvoiceDraft) -> list[PreviewAttachLineItemJson]:
    return [line_item_json(line, invoice.currency) for line in _shown(invoice.lines)]


def next_cycle_json(cycles: Sequence[NextCycle], currency: str) -> PreviewAttachNextCycleJson | None:
    """Merge the next cycles of several quotes; the earliest start wins (it is the next renewal)."""
    if not cycles:
        return None
    starts_at = min(cycle.starts_at for cycle in cycles)
    lines = [line for cycle in cycles for line in cycle.invoice.lines]
    total = sum(line.amount for line in lines)
    return {
        "starts_at": starts_at,
        "subtotal": minor_to_json(subtotal_of(lines), currency),
        "total": minor_to_json(total, currency),
        "line_items": [line_item_json(line, currency) for line in _shown(lines)],
        "usage_line_items": [_usage_line_json(u) for cycle in cycles for u in cycle.usage_lines],
    }


def _feature_quantities(quantities: Mapping[str, Decimal]) -> list[PreviewAttachIncomingFeatureQuantityJson]:
    return [{"feature_id": fid, "quantity": _number(q)} for fid, q in quantities.items()]


def scheduled_start(starts_at: int | None, now: int) -> int | None:
    """An incoming plan's ``effective_at``: when it starts if it is scheduled, null when it starts now.

    One rule for every incoming plan, free or paid, attached or brought back by a cancel: Autumn lists
    the incoming plans of its attach, update and multi update previews in one place
    (``billingPlanToChanges``, reached from ``billingPlanToPreviewResponse`` by each of them), which
    tells no free plan from a paid one. The outgoing plan's ``expires_at`` says the same date.

    Which date is not settled by the Autumn sources at hand: the newest stored ``billingPlanToChanges``
    (useautumn/autumn 71642d4) writes ``effective_at: null`` for every plan it inserts, but it predates
    the vendored API (``spec/autumn-2026-08-22.yml`` adds ``canceled_at`` and ``expires_at`` to these
    changes, which no stored version writes); the start is kept, as the paid attach preview has said.
    """
    return starts_at if starts_at is not None and starts_at > now else None


def incoming_json(quote: AttachQuote) -> PreviewAttachIncomingJson:
    """An incoming plan; ``effective_at`` is when a scheduled plan starts (:func:`scheduled_start`),
    ``expires_at`` when it ends (``ends_at``)."""
    return {
        "plan_id": quote.plan.id,
        "feature_quantities": _feature_quantities(quote.prepaid_quantities),
        "effective_at": scheduled_start(quote.starts_at, quote.now),
        "canceled_at": None,
        "expires_at": quote.ends_at,
    }


def quantities_json(plan_id: str, quantities: Mapping[str, Decimal]) -> PreviewAttachIncomingJson:
    """A plan whose prepaid quantities change (``billing.update``), in place from now."""
    return {
        "plan_id": plan_id,
        "feature_quantities": _feature_quantities(quantities),
        "effective_at": None,
        "canceled_at": None,
        "expires_at": None,
    }


def cancel_incoming_json(
    intent: UpdateIntent,
    plan_id: str,
    now: int,
    ends_at: int | None,
    quantities: Mapping[str, Decimal],
    default_plan_id: str | None,
) -> list[PreviewAttachIncomingJson]:
    """What comes in with a cancel or an uncancel, as Autumn's update previews list it: first the
    plans the change starts (the group's free default, ``default_plan_id``, when a main plan is
    cancelled: active now, or scheduled from the plan's end), then the plan itself as the change leaves
    it when it stays (``cancel_end_of_cycle``: cancelled now, ending at ``ends_at``; ``uncancel``: with
    no cancellation). An immediate cancel brings in only the default."""
    incoming: list[PreviewAttachIncomingJson] = []
    if intent in ("cancel_immediately", "cancel_end_of_cycle") and default_plan_id is not None:
        incoming.append(
            {
                "plan_id": default_plan_id,
                "feature_quantities": [],  # a free plan has no prepaid quantities
                "effective_at": scheduled_start(ends_at, now),
                "canceled_at": None,
                "expires_at": None,
            }
        )
    if intent == "cancel_end_of_cycle":
        incoming.append(
            {
                "plan_id": plan_id,
                "feature_quantities": _feature_quantities(quantities),
                "effective_at": None,
                "canceled_at": now,
                "expires_at": ends_at,
            }
        )
    elif intent == "uncancel":
        incoming.append(quantities_json(plan_id, quantities))
    return incoming


def outgoing_json(
    plan_id: str, ends_at: int, now: int, quantities: Mapping[str, Decimal] | None = None
) -> PreviewAttachIncomingJson:
    return {
        "plan_id": plan_id,
        "feature_quantities": _feature_quantities(quantities or {}),
        "effective_at": ends_at,
        "canceled_at": now if ends_at > now else None,
        "expires_at": ends_at,
    }


def update_changes_json(
    intent: UpdateIntent,
    plan_id: str,
    now: int,
    quantities: Mapping[str, Decimal],
    ends_at: int | None = None,
    default_plan_id: str | None = None,
    cancellation: tuple[int | None, int | None] = (None, None),
    new_quantities: Mapping[str, Decimal] | None = None,
    switch: AttachQuote | None = None,
) -> tuple[list[PreviewAttachIncomingJson], list[PreviewAttachIncomingJson]]:
    """What a ``billing.update`` of one plan brings in and takes out, as ``billing.preview_update`` and
    each subscription of ``billing.preview_multi_update`` list them (``incoming``, ``outgoing``).

    ``quantities`` are the plan's prepaid quantities as they stand, ``cancellation`` its
    ``(canceled_at, expires_at)`` before the update; a cancel ends the plan at ``ends_at`` and brings
    back the group's free default ``default_plan_id`` (:func:`cancel_incoming_json`), a quantity
    change leaves it with ``new_quantities``, a customization or a move to another version
    (``update_plan``) switches it to the plan quoted by ``switch``, listed as an attach lists it
    (:func:`incoming_json`).

    As Autumn's ``billingPlanToChanges`` (with ``getIsOutgoing`` and
    ``billingPlanToOutgoingEffectiveAt``): the plan goes out when the update ends it (at ``ends_at``),
    and also when an uncancel, a quantity change or a plan change gives it back changed: then it leaves
    as it stood (an uncancelled plan with its cancellation), now.
    """
    incoming = cancel_incoming_json(intent, plan_id, now, ends_at, quantities, default_plan_id)
    outgoing: list[PreviewAttachIncomingJson] = []
    if ends_at is not None:
        outgoing.append(outgoing_json(plan_id, ends_at, now, quantities))
    elif (
        intent == "uncancel"
        or (intent == "update_quantity" and new_quantities is not None)
        or (intent == "update_plan" and switch is not None)
    ):
        canceled_at, expires_at = cancellation
        outgoing.append(
            {
                "plan_id": plan_id,
                "feature_quantities": _feature_quantities(quantities),
                "effective_at": now,
                "canceled_at": canceled_at,
                "expires_at": expires_at,
            }
        )
    if intent == "update_quantity" and new_quantities is not None:
        incoming.append(quantities_json(plan_id, new_quantities))
    if intent == "update_plan" and switch is not None:
        incoming.append(incoming_json(switch))
    return incoming, outgoing


def preview_body(
    customer_id: str,
    due_now: InvoiceDraft,
    cycles: Sequence[NextCycle],
    incoming: Sequence[PreviewAttachIncomingJson] = (),
    outgoing: Sequence[PreviewAttachIncomingJson] = (),
    redirect_to_checkout: bool = False,
    checkout_type: CheckoutType | None = None,
    entity_id: str | None = None,
) -> PreviewAttachResponseJson:
    """Full preview response body."""
    body: PreviewAttachResponseJson = {
        "customer_id": customer_id,
        "line_items": invoice_lines_json(due_now),
        "subtotal": minor_to_json(subtotal_of(due_now.lines), due_now.currency),
        "total": minor_to_json(due_now.total, due_now.currency),
        "currency": due_now.currency,
        "incoming": list(incoming),
        "outgoing": list(outgoing),
        "redirect_to_checkout": redirect_to_checkout,
        "checkout_type": checkout_type,
    }
    if entity_id is not None:
        body["entity_id"] = entity_id
    cycle = next_cycle_json(cycles, due_now.currency)
    if cycle is not None:
        body["next_cycle"] = cycle
    return body


def attach_preview_body(
    customer_id: str,
    quotes: Sequence[AttachQuote],
    redirect_to_checkout: bool = False,
    checkout_type: CheckoutType | None = None,
    entity_id: str | None = None,
    outgoing_quantities: Mapping[str, Mapping[str, Decimal]] | None = None,
) -> PreviewAttachResponseJson:
    """Preview for one attach or a multi-attach."""
    due = combine_due(quotes)
    cycles = [q.next_cycle for q in quotes if q.next_cycle is not None]
    outgoing = [
        outgoing_json(
            q.outgoing_plan_id, q.outgoing_ends_at, q.now, (outgoing_quantities or {}).get(q.outgoing_plan_id)
        )
        for q in quotes
        if q.outgoing_plan_id is not None and q.outgoing_ends_at is not None
    ]
    return preview_body(
        customer_id,
        due,
        cycles,
        incoming=[incoming_json(q) for q in quotes],
        outgoing=outgoing,
        redirect_to_checkout=redirect_to_checkout,
        checkout_type=checkout_type,
        entity_id=entity_id,
    )


class _UpdateKeys(TypedDict):
    intent: UpdateIntent
    refund: NotRequired[PreviewUpdateRefundJson]


def update_preview_body(
    customer_id: str,
    due_now: InvoiceDraft,
    cycles: Sequence[NextCycle],
    intent: UpdateIntent,
    incoming: Sequence[PreviewAttachIncomingJson] = (),
    outgoing: Sequence[PreviewAttachIncomingJson] = (),
    redirect_to_checkout: bool = False,
    checkout_type: CheckoutType | None = None,
    entity_id: str | None = None,
    refund: PreviewUpdateRefundJson | None = None,
) -> PreviewUpdateResponseJson:
    """Preview for one ``billing.update``: the preview body, then what the update does (``intent``) and,
    for an immediate cancel with ``refund_last_payment``, the refund it makes."""
    body = preview_body(
        customer_id, due_now, cycles, incoming, outgoing, redirect_to_checkout, checkout_type, entity_id
    )
    update: _UpdateKeys = {"intent": intent}
    if refund is not None:
        update["refund"] = refund
    return {**body, **update}


class _CycleKeys(TypedDict, total=False):
    """The optional keys of a subscription's preview in ``billing.preview_multi_update`` (it never
    answers ``expand``)."""

    next_cycle: PreviewAttachNextCycleJson
    expand: list[str]


def subscription_preview_body(
    customer_id: str,
    due_now: InvoiceDraft,
    cycles: Sequence[NextCycle],
    incoming: Sequence[PreviewAttachIncomingJson],
    outgoing: Sequence[PreviewAttachIncomingJson],
    plan_ids: Sequence[str],
) -> MultiUpdatePreviewSubscriptionJson:
    """One subscription's core preview in ``billing.preview_multi_update``: the preview body without
    checkout or entity, and the plans it covers."""
    cycle = next_cycle_json(cycles, due_now.currency)
    optional: _CycleKeys = {"next_cycle": cycle} if cycle is not None else {}
    return {
        "customer_id": customer_id,
        "line_items": invoice_lines_json(due_now),
        "subtotal": minor_to_json(subtotal_of(due_now.lines), due_now.currency),
        "total": minor_to_json(due_now.total, due_now.currency),
        "currency": due_now.currency,
        **optional,
        "incoming": list(incoming),
        "outgoing": list(outgoing),
        "plan_ids": list(plan_ids),
    }
