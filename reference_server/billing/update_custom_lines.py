"""``billing.update``'s ``custom_line_items`` (and its preview's; an argument of the official SDK beyond
Autumn's spec): the caller's lines are what the update bills now.

As in Autumn's update, they replace the invoice the update would compute (its prorations, an anchor
reset's credit and charge), or are billed on their own when the update changes nothing else; the plan,
its period and its next renewal stay as computed, and the subscription's coupons and the request's
``discounts`` apply to them as to a computed invoice. Refused (400 ``invalid_request``, nothing written)
with ``cancel_action`` or ``refund_last_payment``, on a one-off plan, on a plan without a price (no
subscription to update) and when the update ends a running trial; ``no_billing_changes`` refuses them
(billing/no_billing.py). The pure rule is :func:`.engine.billing.custom_lines.update_custom_lines`.
"""

from __future__ import annotations

from reference_server.billing.payment_collection import rule_error
from reference_server.billing.quoted_update import QuotedUpdate
from reference_server.billing.resolve import UpdateRequest
from reference_server.engine.billing import BillingRuleError
from reference_server.engine.billing.custom_lines import CustomLine, update_custom_lines
from reference_server.engine.billing.money import to_decimal
from reference_server.errors import invalid


def check_custom_lines_request(params: UpdateRequest) -> None:
    """Refuse lines beside a cancel or a refund, before anything is resolved (as Autumn words it)."""
    if not params.custom_line_items:
        return
    if params.refund_last_payment is not None:
        raise invalid("custom_line_items cannot be used together with refund_last_payment")
    if params.cancel_action is not None:
        raise invalid("custom_line_items cannot be used together with cancel_action")


def with_update_lines(params: UpdateRequest, result: QuotedUpdate, ends_trial: bool) -> None:
    """Put the request's lines in place of the quote's ``due`` (an update quote, billing/update_quote.py)."""
    if not params.custom_line_items:
        return
    check_custom_lines_request(params)
    sub = result.sub
    if result.inst.status != "active":
        raise invalid(
            "custom_line_items can only be used when updating an existing subscription"
            " (not creating a new one)"
        )
    given = [CustomLine(to_decimal(item.amount), item.description) for item in params.custom_line_items]
    try:
        result.due = update_custom_lines(sub, given, result.due.currency, ends_trial)
    except BillingRuleError as exc:
        raise rule_error(exc) from exc
