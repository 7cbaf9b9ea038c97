"""Invoices the way the current Stripe API creates, finalizes, pays and voids them, for localstripe.

localstripe 1.15 implements the 2017-era invoice flow: ``POST /v1/invoices`` sweeps every pending
invoice item of the customer into the new invoice (and refuses an invoice with nothing pending), an
invoice cannot be finalized on its own, ``pay`` ignores the payment method and swallows a decline,
and ``void`` fails on an invoice that was never attempted.  Stripe today (https://docs.stripe.com/api/invoices):

- ``create`` takes ``pending_invoice_items_behavior`` (default ``exclude``: an empty draft the caller
  fills with items created with ``invoice=``), ``currency``, ``auto_advance``, ``collection_method``
  and ``days_until_due`` (required for ``send_invoice``; ``due_date`` is set from it when finalized);
- ``POST /v1/invoices/{id}/finalize`` turns a draft into an open invoice (a zero one is paid at once);
- ``POST /v1/invoices/{id}/pay`` takes ``payment_method`` and ``off_session``; a decline answers 402
  ``card_declined`` and a card that needs 3-D Secure answers 402
  ``invoice_payment_intent_requires_action``, the invoice staying open either way; each attempt is a
  PaymentIntent listed in the invoice's ``payments``;
- ``POST /v1/invoices/{id}/void`` voids an open invoice (and cancels its unfinished PaymentIntent);
- a paid invoice sends ``invoice.paid`` (as well as ``invoice.payment_succeeded``).
"""

from __future__ import annotations

import time
from typing import Any

from localstripe import resources
from localstripe.resources import (
    Customer,
    Event,
    Invoice,
    PaymentIntent,
    extra_apis,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

from .prices import missing, stripe_error, unknown_parameters

_original_create = Invoice._api_create
_original_success = Invoice._on_payment_success
_original_status = Invoice.status


def _invoice(id: str) -> Invoice:
    found = store.get("invoice:" + id)
    if found is None:
        raise stripe_error(404, f"No such invoice: '{id}'", "resource_missing", "id")
    return found


def _create(
    customer: Any = None,
    pending_invoice_items_behavior: Any = None,
    currency: Any = None,
    auto_advance: Any = None,
    collection_method: Any = None,
    metadata: Any = None,
    description: Any = None,
    days_until_due: Any = None,
    **kwargs: Any,
) -> Invoice:
    """``exclude`` (Stripe's default): an empty draft; ``include``: localstripe's sweep of pending items."""
    if pending_invoice_items_behavior == "include":
        obj = _original_create(customer=customer, metadata=metadata, description=description, **kwargs)
    else:
        if pending_invoice_items_behavior not in (None, "exclude"):
            raise stripe_error(
                400,
                "Invalid pending_invoice_items_behavior: must be one of exclude or include",
                "parameter_invalid_string",
                "pending_invoice_items_behavior",
            )
        unknown_parameters(kwargs)
        if not isinstance(customer, str) or not customer:
            raise missing("customer")
        if store.get("customer:" + customer) is None:
            raise stripe_error(400, f"No such customer: '{customer}'", "resource_missing", "customer")
        obj = Invoice(customer=customer, metadata=metadata, description=description, simulation=True)
        for line in obj.lines._list:  # the pending items a sweep would have taken stay pending
            store.pop("line_item:" + line.id, None)
        obj.lines._list = []
        obj.currency = str(currency or "usd").lower()
        resources.schedule_webhook(Event("invoice.created", obj))
    if collection_method not in (None, "charge_automatically", "send_invoice"):
        raise stripe_error(
            400,
            "Invalid collection_method: must be one of charge_automatically or send_invoice",
            "parameter_invalid_string",
            "collection_method",
        )
    obj.collection_method = collection_method or "charge_automatically"
    obj.days_until_due = _days_until_due(obj.collection_method, days_until_due)
    obj.due_date = None
    advance = try_convert_to_bool(auto_advance)
    obj.auto_advance = bool(advance) if advance is not None else False
    obj._attempts = []
    return obj


def _days_until_due(collection_method: str, days_until_due: Any) -> int | None:
    """Stripe: a ``send_invoice`` invoice needs ``days_until_due`` (a positive whole number of days), a
    ``charge_automatically`` one takes none."""
    if collection_method != "send_invoice":
        if days_until_due is not None:
            raise stripe_error(
                400,
                "days_until_due can only be set when collection_method=send_invoice.",
                "parameter_invalid_integer",
                "days_until_due",
            )
        return None
    if days_until_due is None:
        raise missing("days_until_due")
    days = try_convert_to_int(days_until_due)
    if not isinstance(days, int) or days < 0:
        raise stripe_error(
            400, "Invalid integer: days_until_due", "parameter_invalid_integer", "days_until_due"
        )
    return days


def _finalize(id: str, auto_advance: Any = None, **kwargs: Any) -> Invoice:
    unknown_parameters(kwargs)
    obj = _invoice(id)
    if obj.status != "draft":
        raise stripe_error(
            400,
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            "invoice_not_editable",
        )
    obj._finalize()
    if getattr(obj, "days_until_due", None) is not None:  # due that many days after finalization
        obj.due_date = int(time.time()) + obj.days_until_due * 86400
    if auto_advance is not None:
        obj.auto_advance = bool(try_convert_to_bool(auto_advance))
    resources.schedule_webhook(Event("invoice.finalized", obj))
    if obj.total <= 0:
        obj._on_payment_success()
    return obj


def _pay(
    id: str,
    payment_method: Any = None,
    off_session: Any = None,
    paid_out_of_band: Any = None,
    **kwargs: Any,
) -> Invoice:
    unknown_parameters(kwargs)
    obj = _invoice(id)
    if obj.status == "paid":
        raise stripe_error(400, "Invoice is already paid", "invoice_already_paid")
    if obj.status not in ("draft", "open"):
        raise stripe_error(400, f"You cannot pay an invoice with status {obj.status}.", "invoice_not_open")
    if obj.status == "draft":
        obj._finalize()
        resources.schedule_webhook(Event("invoice.finalized", obj))
    if obj.total <= 0 or try_convert_to_bool(paid_out_of_band):  # out of band: paid, nothing charged
        obj._out_of_band = bool(obj.total > 0)
        obj._on_payment_success()
        return obj
    if payment_method is not None:
        pm = store.get("payment_method:" + str(payment_method))
        if pm is None:
            raise stripe_error(
                400, f"No such PaymentMethod: '{payment_method}'", "resource_missing", "payment_method"
            )
        if pm.customer != obj.customer:
            raise stripe_error(
                400,
                "The PaymentMethod must be attached to the invoice's customer.",
                "payment_method_unexpected_state",
                "payment_method",
            )
    else:
        default = Customer._api_retrieve(obj.customer)._get_default_payment_method_or_source()
        if default is None:
            raise stripe_error(
                400,
                "This customer has no attached payment source or default payment method.",
                "invoice_no_payment_method_types",
            )
        pm = default
    previous = PaymentIntent._api_retrieve(obj.payment_intent) if obj.payment_intent else None
    if previous is not None and previous.status in (
        "requires_payment_method",
        "requires_action",
        "requires_confirmation",
    ):
        previous._canceled = True  # a new attempt replaces the unfinished one
        previous.next_action = None
    intent = PaymentIntent(
        amount=obj.total, currency=obj.currency, customer=obj.customer, payment_method=pm.id
    )
    intent.invoice = obj.id
    obj.payment_intent = intent.id
    getattr(obj, "_attempts", []).append(intent.id)
    obj.attempt_count = len(getattr(obj, "_attempts", [])) or 1
    obj.attempted = True
    intent._confirm(on_failure_now=intent._report_failure)  # a decline raises 402 card_declined
    if intent.status == "requires_action":
        resources.schedule_webhook(Event("invoice.payment_action_required", obj))
        raise stripe_error(
            402,
            "This payment requires additional user action before it can be completed successfully. "
            "Payment can be completed using the PaymentIntent associated with the invoice.",
            "invoice_payment_intent_requires_action",
        )
    return obj


def _void(id: str, **kwargs: Any) -> Invoice:
    unknown_parameters(kwargs)
    obj = _invoice(id)
    if obj.status != "open":
        raise stripe_error(
            400, f"You can only void open invoices; this invoice is {obj.status}.", "invoice_not_open"
        )
    if obj.payment_intent:
        intent = PaymentIntent._api_retrieve(obj.payment_intent)
        if intent.status in ("requires_payment_method", "requires_action", "requires_confirmation"):
            intent._canceled = True
            intent.next_action = None
    obj._voided = True
    obj.status_transitions["voided_at"] = int(time.time())
    resources.schedule_webhook(Event("invoice.voided", obj))
    return obj


def _payments(self: Invoice) -> dict[str, Any]:
    """The invoice's payment attempts (Stripe's ``payments`` list of InvoicePayment objects)."""
    data = []
    for intent_id in getattr(self, "_attempts", []):
        intent = PaymentIntent._api_retrieve(intent_id)
        status = {"succeeded": "paid", "canceled": "canceled"}.get(intent.status, "open")
        data.append(
            {
                "object": "invoice_payment",
                "invoice": self.id,
                "amount_requested": intent.amount,
                "amount_paid": intent.amount if status == "paid" else None,
                "currency": intent.currency,
                "is_default": intent_id == self.payment_intent,
                "status": status,
                "payment": {"type": "payment_intent", "payment_intent": intent_id},
            }
        )
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "url": f"/v1/invoice_payments?invoice={self.id}",
    }


def _amount_remaining(self: Invoice) -> int:
    return 0 if self.status in ("paid", "void") else int(self.total)


def _status(self: Invoice) -> str:
    """localstripe's status, and ``paid`` for an invoice paid out of band (``pay(paid_out_of_band=true)``)."""
    if getattr(self, "_out_of_band", False) and not self._draft and not self._voided:
        return "paid"
    return str(_original_status.fget(self))


def _on_payment_success(self: Invoice) -> None:
    _original_success(self)
    resources.schedule_webhook(Event("invoice.paid", self))


Invoice._api_create = classmethod(lambda cls, **data: _create(**data))  # type: ignore[method-assign,assignment]
Invoice.payments = property(_payments)  # type: ignore[attr-defined]
Invoice.amount_remaining = property(_amount_remaining)  # type: ignore[attr-defined]
Invoice._on_payment_success = _on_payment_success  # type: ignore[method-assign]
Invoice.status = property(_status)  # type: ignore[assignment,method-assign]

_REPLACED = {
    ("POST", "/v1/invoices/{id}/pay"): _pay,
    ("POST", "/v1/invoices/{id}/void"): _void,
}
extra_apis[:] = [(m, u, _REPLACED.get((m, u), f)) for m, u, f in extra_apis]
extra_apis.append(("POST", "/v1/invoices/{id}/finalize", _finalize))
