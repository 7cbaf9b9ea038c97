"""What Autumn's server accepts beyond its published spec, applied to the spec before generating.

Two sources, both vendored: each entry of :data:`ENUM_ADDITIONS` is a fact read from Autumn's server
source, with where it was read; and the ``x-official-arguments`` of
``spec/autumn-sdk-1.2.0-operations.yml`` are the request fields that the official SDK's methods of
operations of Autumn's spec take beyond that spec (read from the official SDK's models by
``codegen/official_operations.py``), added to those operations' request bodies. The overlay only
widens what the models accept; it never changes a shape Autumn's spec describes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def _body(path: str, *inner: str) -> tuple[str, ...]:
    return ("paths", path, "post", "requestBody", "content", "application/json", "schema", *inner)


_REJECT = (
    "reject",
    # useautumn/autumn shared/api/balances/track/overageBehavior.ts: "reject" stays accepted but is
    # stripped from the public spec (refuse a deduction the balance cannot cover).
    "refuse a deduction the balance cannot cover",
)
ENUM_ADDITIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (_body("/v1/balances.track", "properties", "overage_behavior"), *_REJECT),
    (_body("/v1/balances.track_tokens", "properties", "overage_behavior"), *_REJECT),
    (_body("/v1/balances.batch_track", "items", "properties", "overage_behavior"), *_REJECT),
)


OFFICIAL_ARGUMENTS_KEY = "x-official-arguments"
"""Where ``spec/autumn-sdk-1.2.0-operations.yml`` holds path -> field -> schema (see the docstring)."""


def apply_overlay(data: dict[str, Any], arguments: Mapping[str, Mapping[str, Any]]) -> None:
    """Widen ``data`` (one parsed spec) in place with :data:`ENUM_ADDITIONS` and ``arguments`` (path ->
    request field -> schema); entries whose path the document lacks are skipped, and a field the
    request already has is left as the document describes it."""
    for operation_path, fields in arguments.items():
        schema = _at(data, _body(operation_path))
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            for name, field in fields.items():
                schema["properties"].setdefault(name, copy.deepcopy(field))
    for path, value, _why in ENUM_ADDITIONS:
        node = _at(data, path)
        if isinstance(node, dict) and isinstance(node.get("enum"), list) and value not in node["enum"]:
            node["enum"] = [*node["enum"], value]


def _at(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The node at ``path`` in ``data``, or None where a step is missing."""
    node: Any = data
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node


PLAN_ITEM_KEYS = frozenset({"feature_id", "included", "unlimited", "reset", "price"})
"""The properties that make an object schema a plan item."""

FREE_TRIAL_KEYS = frozenset({"duration_length", "duration_type", "card_required"})
"""The properties that make an object schema a plan's free trial."""

PLAN_ITEM_ANSWER_KEYS: tuple[tuple[str, str], ...] = (
    # The server stores a plan item's ``proration`` as plans.create/update sent it and answers the
    # stored item (tests/billing/test_seats.py reads it back); Autumn's Plan answer lacks the key.
    ("proration", "a plan item answers the proration its request set"),
)
"""Keys a plan's items answer beyond Autumn's schemas, each with the schema the plans.create
request's item gives it, and why the server answers it."""

FREE_TRIAL_ANSWER_ADDITIONS: tuple[tuple[str, dict[str, Any], str], ...] = (
    (
        "unique_fingerprint",
        {"type": "boolean", "description": "One trial per payment card fingerprint (present only when set)."},
        # Autumn's free trial option ``unique_fingerprint``: the server keeps it when a plan's
        # free_trial sets it and answers it in the plan's free_trial (tests/billing/test_api_billing.py
        # reads it back); Autumn's Plan answer lacks the key.
        "a plan's free trial answers its one-trial-per-fingerprint option",
    ),
)
"""Keys a plan's ``free_trial`` answers beyond Autumn's schemas: name, schema, why."""

INVOICE_KEYS = frozenset({"plan_ids", "stripe_id", "status", "total", "currency", "created_at"})
"""The properties that make an object schema an invoice."""

_NET_TERMS = (
    # reference_server/store/invoices.py net_terms_json: an invoice-mode invoice (billing.attach's
    # invoice mode, paid on net terms) shows its terms on every invoice object the server answers;
    # Autumn's invoice schemas have no due date (Stripe's invoice has days_until_due and due_date).
    "an invoice-mode invoice answers its net terms (absent for other invoices)"
)
INVOICE_ANSWER_ADDITIONS: tuple[tuple[str, dict[str, Any], str], ...] = (
    (
        "net_terms_days",
        {"type": "integer", "description": "Days the invoice is due after it is finalized."},
        _NET_TERMS,
    ),
    (
        "due_at",
        {
            "anyOf": [{"type": "number"}, {"type": "null"}],
            "description": "When the invoice is due, epoch milliseconds (null while a draft).",
        },
        _NET_TERMS,
    ),
)
"""Keys an invoice answers beyond Autumn's schemas (present only on an invoice-mode invoice): name,
schema, why."""

CHANGE_INVOICE_ANSWERS = (
    # reference_server/store/invoices.py InvoiceRecord.to_api: the ``invoice`` a billing change answers
    # (charged, or invoice mode's invoice) is the same record, with the same net terms.
    "/v1/billing.attach",
    "/v1/billing.update",
    "/v1/billing.multi_attach",
    "/v1/billing.multi_update",
    "/v1/billing.create_schedule",
)
"""The operations whose answer's ``invoice`` (Autumn's AttachInvoice, without the keys of
:data:`INVOICE_KEYS`) also gains :data:`INVOICE_ANSWER_ADDITIONS`."""


def apply_answer_additions(data: dict[str, Any]) -> None:
    """Add :data:`PLAN_ITEM_ANSWER_KEYS` to every plan item, :data:`FREE_TRIAL_ANSWER_ADDITIONS` to
    every plan free trial and :data:`INVOICE_ANSWER_ADDITIONS` to every invoice that the document
    answers or sends in a webhook: each object schema with :data:`PLAN_ITEM_KEYS`,
    :data:`FREE_TRIAL_KEYS` or :data:`INVOICE_KEYS`, neither in a request body nor in a
    ``customize`` (which the server answers as it was sent), and the ``invoice`` of the answers of
    :data:`CHANGE_INVOICE_ANSWERS`. A key already there is left as it is."""
    request_item = _at(data, _body("/v1/plans.create", "properties", "items", "items", "properties"))
    item_additions = {
        name: request_item[name]
        for name, _why in PLAN_ITEM_ANSWER_KEYS
        if isinstance(request_item, dict) and isinstance(request_item.get(name), dict)
    }
    trial_additions = {name: schema for name, schema, _why in FREE_TRIAL_ANSWER_ADDITIONS}
    invoice_additions = {name: schema for name, schema, _why in INVOICE_ANSWER_ADDITIONS}
    answers = _answer_objects(data.get("components"), skip_requests=False)
    answers += _answer_objects(data.get("webhooks"), skip_requests=False)  # a payload is a request body
    answers += _answer_objects(data.get("paths"), skip_requests=True)
    for node in answers:
        properties = node["properties"]
        keys = set(properties)
        additions = (
            item_additions
            if keys >= PLAN_ITEM_KEYS
            else trial_additions
            if keys >= FREE_TRIAL_KEYS
            else invoice_additions
            if keys >= INVOICE_KEYS
            else {}
        )
        for name, schema in additions.items():
            properties.setdefault(name, copy.deepcopy(schema))
    for path in CHANGE_INVOICE_ANSWERS:
        invoice = _at(data, (*_answer(path), "invoice", "properties"))
        if isinstance(invoice, dict):
            for name, schema in invoice_additions.items():
                invoice.setdefault(name, copy.deepcopy(schema))


def _answer_objects(node: Any, *, skip_requests: bool) -> list[dict[str, Any]]:
    """The object schemas (with ``properties``) under ``node``, outside ``customize`` properties and,
    with ``skip_requests``, outside request bodies."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            found.append(node)
        for key, child in node.items():
            if key == "customize" or (skip_requests and key == "requestBody"):
                continue
            found += _answer_objects(child, skip_requests=skip_requests)
    elif isinstance(node, list):
        for child in node:
            found += _answer_objects(child, skip_requests=skip_requests)
    return found


def _answer(path: str) -> tuple[str, ...]:
    return ("paths", path, "post", "responses", "200", "content", "application/json", "schema", "properties")


_PARTY = {
    "type": "object",
    "properties": {
        "id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "email": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "created_at": {"type": "number"},
    },
    "required": ["id", "name", "email", "created_at"],
}
ANSWER_FIELD_ADDITIONS: tuple[tuple[tuple[str, ...], str, dict[str, Any], str], ...] = (
    (
        _answer("/v1/referrals.redeem_code"),
        "referrer",
        {**_PARTY, "description": "The customer whose referral code was redeemed."},
        # reference_server/service/referrals.py redeem_code: the answer names both parties of the
        # redemption, so a caller need not look the code's owner up; Autumn's answer has only ids.
        "the redemption answers the code's owner",
    ),
    (
        _answer("/v1/referrals.redeem_code"),
        "redeemer",
        {**_PARTY, "description": "The customer who redeemed the code."},
        "the redemption answers the customer who redeemed it",
    ),
    (
        _answer("/v1/customers.advance_test_clock"),
        "now",
        {"type": "integer", "description": "The customer's time after the advance (frozen_time), epoch ms."},
        # reference_server/api/admin.py advance_customer_clock: the steps of test_clocks.advance are
        # taken too, and its answer's ``now`` is repeated (the customer's clock moves at once).
        "the advance answers the customer's new time as test_clocks.advance does",
    ),
    (
        _answer("/v1/invoices.finalize"),
        "customer_id",
        {"type": "string", "description": "The invoice's customer (as invoice.customer_id)."},
        # reference_server/billing/invoice_mode.py finalize_invoice: the server's invoices.finalize
        # answered {customer_id, entity_id, invoice} before the official SDK took the operation in
        # with the invoice alone (tests/billing/test_invoice_mode.py reads customer_id).
        "the finalized invoice's answer names its customer",
    ),
    (
        _answer("/v1/invoices.finalize"),
        "entity_id",
        {"type": "string", "description": "The invoice's entity (as invoice.entity_id), when it has one."},
        "the finalized invoice's answer names its entity, when it has one",
    ),
    *(
        (
            _answer(path),
            "entity_id",
            {"type": "string", "description": "The entity the previewed change is for (absent for none)."},
            # reference_server/engine/billing/preview.py preview_body: a preview of a change made for an
            # entity names it (tests/billing/test_honest_fields.py reads it); Autumn's preview lacks it.
            "a preview names the entity its change is for",
        )
        for path in (
            "/v1/billing.preview_attach",
            "/v1/billing.preview_multi_attach",
            "/v1/billing.preview_update",
        )
    ),
    (
        _answer("/v1/billing.preview_update"),
        "redirect_to_checkout",
        {
            "type": "boolean",
            "description": "Whether billing.update would send the customer to a checkout page.",
        },
        # reference_server/billing/update.py preview_update: ``redirect_mode: "always"`` sends an update
        # to a checkout page and its preview says so, as billing.preview_attach's does
        # (tests/billing/test_honest_fields.py); Autumn's update preview schema lacks the key.
        "an update's preview says whether the update goes through a checkout page",
    ),
    (
        _answer("/v1/billing.preview_update"),
        "checkout_type",
        {
            "anyOf": [{"enum": ["stripe_checkout", "autumn_checkout"], "type": "string"}, {"type": "null"}],
            "description": "The checkout page billing.update would send the customer to (null for none).",
        },
        "an update's preview says which checkout page the update goes through",
    ),
    (
        _answer("/v1/billing.preview_update"),
        "refund",
        {
            "type": "object",
            "description": "With refund_last_payment: the refund the cancellation makes of the last payment.",
            "properties": {
                "amount": {"type": "number", "description": "What is refunded, in major units."},
                "invoice": {
                    "type": "object",
                    "description": "The paid invoice the refund is made from.",
                    "properties": {
                        "stripe_id": {"type": "string"},
                        "total": {"type": "number"},
                        "refunded_amount": {
                            "type": "number",
                            "description": "What was refunded of it before.",
                        },
                        "currency": {"type": "string"},
                    },
                    "required": ["stripe_id", "total", "refunded_amount", "currency"],
                },
            },
            "required": ["amount", "invoice"],
        },
        # reference_server/billing/last_payment_refund.py LastPaymentRefund.to_json: Autumn's preview
        # answers ``refund`` (internal in useautumn/autumn shared/api/billing/common/
        # billingPreviewResponse.ts, so not in its published spec; its invoice names the amount refunded
        # before ``current_refunded_amount``); tests/billing/test_current_billing_fields.py reads it.
        "an immediate cancel's preview with refund_last_payment shows the refund",
    ),
)
"""Fields operations answer beyond their spec: where (the answer's properties), name, schema, why."""


def apply_answer_field_additions(data: dict[str, Any]) -> None:
    """Add :data:`ANSWER_FIELD_ADDITIONS` to the answers ``data`` has (a field already there is left)."""
    for path, name, schema, _why in ANSWER_FIELD_ADDITIONS:
        properties = _at(data, path)
        if isinstance(properties, dict):
            properties.setdefault(name, copy.deepcopy(schema))
