"""codegen.overlay's answer additions: keys the server answers in plans beyond Autumn's schemas, added
to the plans it answers (and sends in webhooks), never to a request body or a ``customize``."""

from __future__ import annotations

from typing import Any

from codegen.overlay import apply_answer_additions


def _item(**extra: Any) -> dict[str, Any]:
    keys = ("feature_id", "included", "unlimited", "reset", "price")
    return {"type": "object", "properties": {**{k: {} for k in keys}, **extra}}


def _trial() -> dict[str, Any]:
    keys = ("duration_length", "duration_type", "card_required")
    return {"type": "object", "properties": {k: {} for k in keys}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _plan() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _item()},
            "free_trial": _trial(),
            "variant_details": {"properties": {"customize": {"properties": {"free_trial": _trial()}}}},
        },
    }


PRORATION = {"type": "object", "properties": {"on_increase": {}, "on_decrease": {}}}


def _document() -> dict[str, Any]:
    request = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _item(proration=PRORATION)}},
    }
    return {
        "paths": {
            "/v1/plans.create": {
                "post": {"requestBody": _json(request), "responses": {"200": _json(_plan())}}
            },
            "/v1/plans.update": {"post": {"requestBody": _json({"properties": {"free_trial": _trial()}})}},
        },
        "components": {"schemas": {"Plan": _plan()}},
        "webhooks": {"billing.updated": {"post": {"requestBody": _json({"properties": {"plan": _plan()}})}}},
    }


def _schema(node: dict[str, Any], *path: str) -> dict[str, Any]:
    for step in path:
        node = node[step]
    return node


def test_answered_plans_gain_the_keys_the_server_answers() -> None:
    data = _document()
    apply_answer_additions(data)
    answered = [
        _schema(
            data,
            "paths",
            "/v1/plans.create",
            "post",
            "responses",
            "200",
            "content",
            "application/json",
            "schema",
        ),
        _schema(data, "components", "schemas", "Plan"),
        _schema(
            data,
            "webhooks",
            "billing.updated",
            "post",
            "requestBody",
            "content",
            "application/json",
            "schema",
        )["properties"]["plan"],
    ]
    for plan in answered:
        assert plan["properties"]["items"]["items"]["properties"]["proration"] == PRORATION
        assert plan["properties"]["free_trial"]["properties"]["unique_fingerprint"]["type"] == "boolean"
        customize = plan["properties"]["variant_details"]["properties"]["customize"]
        assert "unique_fingerprint" not in customize["properties"]["free_trial"]["properties"]


def test_request_bodies_are_left_as_the_spec_describes_them() -> None:
    data = _document()
    apply_answer_additions(data)
    update = _schema(
        data, "paths", "/v1/plans.update", "post", "requestBody", "content", "application/json", "schema"
    )
    assert "unique_fingerprint" not in update["properties"]["free_trial"]["properties"]


def test_the_generated_plan_types_carry_the_keys() -> None:
    from autumn_sdk._generated import json_types

    assert "proration" in json_types.PlanItemJson.__annotations__
    assert "unique_fingerprint" in json_types.PlanFreeTrialJson.__annotations__
    assert "proration" not in json_types.PlanItemJson.__required_keys__


def test_answered_invoices_gain_their_net_terms() -> None:
    invoice = {
        "type": "object",
        "properties": {k: {} for k in ("plan_ids", "stripe_id", "status", "total", "currency", "created_at")},
    }
    data: dict[str, Any] = {
        "paths": {
            "/v1/invoices.list": {"post": {"responses": {"200": _json({"properties": {"list": invoice}})}}}
        },
        "components": {},
        "webhooks": {},
    }
    apply_answer_additions(data)
    assert set(invoice["properties"]) >= {"net_terms_days", "due_at"}


def test_the_generated_invoice_types_carry_the_net_terms() -> None:
    from autumn_sdk._generated import json_types

    for answered in (json_types.CustomerInvoiceJson, json_types.ListInvoicesItemJson):
        assert {"net_terms_days", "due_at"} <= answered.__optional_keys__


def test_answers_gain_the_fields_their_operations_answer_beyond_the_spec() -> None:
    from autumn_sdk._generated import json_types

    assert {"referrer", "redeemer"} <= json_types.RedeemReferralCodeResponseJson.__optional_keys__
    assert "now" in json_types.AdvanceTestClockResponseJson.__optional_keys__
    # invoices.finalize's own answer, not invoices.pay's or invoices.void's (a shape of their own now)
    assert {"customer_id", "entity_id"} <= json_types.FinalizeInvoiceResponseJson.__optional_keys__
    assert set(json_types.PayInvoiceResponseJson.__annotations__) == {"invoice"}
    party = json_types.RedeemReferralCodeReferrerJson.__required_keys__
    assert party == {"id", "name", "email", "created_at"}


def test_a_billing_change_answers_its_invoice_with_net_terms() -> None:
    change_invoice = {"type": "object", "properties": {k: {} for k in ("stripe_id", "status", "total")}}
    answer = _json({"type": "object", "properties": {"invoice": change_invoice}})
    auto_topup = {"type": "object", "properties": {k: {} for k in ("stripe_id", "status", "total")}}
    data: dict[str, Any] = {
        "paths": {"/v1/billing.attach": {"post": {"responses": {"200": answer}}}},
        "components": {},
        "webhooks": {
            "balances.auto_topup": {"post": {"requestBody": _json({"properties": {"i": auto_topup}})}}
        },
    }
    apply_answer_additions(data)
    assert set(change_invoice["properties"]) >= {"net_terms_days", "due_at"}
    assert "net_terms_days" not in auto_topup["properties"]  # (the top-up webhook's invoice has none)

    from autumn_sdk._generated import json_types

    assert {"net_terms_days", "due_at"} <= json_types.AttachInvoiceJson.__optional_keys__
    assert (
        json_types.CreateScheduleResponseJson.__annotations__["invoice"]
        == (json_types.AttachResponseJson.__annotations__["invoice"])
    )
