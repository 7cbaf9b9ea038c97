"""Contract tests of the framework-free pipeline, driven directly through its effects.

The pipeline performs no I/O: it yields ``NeedIdentity`` and ``CallAutumn`` and receives their
outcomes. These tests answer those effects with real values (real generated models, real SDK error
classes) to pin each rule of the autumn-js contract; the adapter tests run the same rules end to end
against the reference server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from autumn_handlers.core import (
    CallAutumn,
    HandlerCore,
    HandlerSettings,
    IncomingRequest,
    NeedIdentity,
)
from autumn_handlers.cors import CORSConfig
from autumn_handlers.identity import Identity
from autumn_handlers.responses import HandlerResponse
from autumn_handlers.routes import ROUTES
from autumn_sdk._generated import models
from autumn_sdk.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    MissingSecretKeyError,
    NotFoundError,
    PoolTimeoutError,
    ResponseValidationError,
)

CUSTOMER_ROUTES = sorted(name for name, route in ROUTES.items() if route.requires_customer)

CUSTOMER_JSON: dict[str, Any] = {
    "id": "cus_1",
    "name": "Ada",
    "email": "ada@example.com",
    "created_at": 1700000000000,
    "fingerprint": None,
    "stripe_id": None,
    "env": "sandbox",
    "metadata": {"team_size": 3},
    "send_email_receipts": False,
    "billing_controls": {},
    "subscriptions": [],
    "purchases": [],
    "balances": {
        "api_calls": {
            "feature_id": "api_calls",
            "feature": {
                "id": "api_calls",
                "name": "API calls",
                "type": "metered",
                "consumable": True,
                "archived": False,
            },
            "granted": 100,
            "remaining": 60,
            "usage": 40,
            "unlimited": False,
            "overage_allowed": False,
            "max_purchase": None,
            "next_reset_at": None,
            "a_key_from_a_newer_server": 1,
        }
    },
    "flags": {},
    "licenses": [],
    "a_field_from_a_newer_server": True,
}


@dataclass
class Outcome:
    response: HandlerResponse
    calls: list[CallAutumn] = field(default_factory=list)
    identified: int = 0


def run(
    route: str,
    body: Any = None,
    *,
    identity: Any = None,
    upstream: Callable[[CallAutumn], Any] | None = None,
    settings: HandlerSettings | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    content_type: str | None = "application/json",
) -> Outcome:
    """Drive one request through the pipeline, answering its effects."""
    core = HandlerCore(settings or HandlerSettings(secret_key="am_sk_test_pipeline"))
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sent = {"content-type": content_type} if content_type is not None else {}
    pipeline = core.pipeline(IncomingRequest(method, route, content, {**sent, **(headers or {})}))
    outcome = Outcome(response=HandlerResponse(0))
    try:
        effect = next(pipeline)
        while True:
            try:
                if isinstance(effect, NeedIdentity):
                    outcome.identified += 1
                    value = identity() if callable(identity) else identity
                else:
                    outcome.calls.append(effect)
                    if upstream is None:
                        raise AssertionError(f"unexpected upstream call {effect.operation.path}")
                    value = upstream(effect)
            except AssertionError:
                raise
            except Exception as exc:
                effect = pipeline.throw(exc)
            else:
                effect = pipeline.send(value)
    except StopIteration as done:
        outcome.response = done.value
    return outcome


def customer_upstream(call: CallAutumn) -> models.Customer:
    return models.Customer.model_validate(CUSTOMER_JSON)


def attach_upstream(call: CallAutumn) -> models.AttachResponse:
    return models.AttachResponse.model_validate(
        {"customer_id": call.body["customer_id"], "payment_url": None}
    )


def error_body(response: HandlerResponse) -> tuple[int, dict[str, Any]]:
    assert response.status == response.body["statusCode"]
    assert set(response.body) == {"message", "code", "statusCode"}
    return response.status, response.body


# --- secret key, routing ---------------------------------------------------------------------


def test_missing_secret_key_is_checked_before_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTUMN_SECRET_KEY", raising=False)
    for route in ("/attach", "/no-such-route"):
        outcome = run(route, {}, identity={"customerId": "cus_1"}, settings=HandlerSettings())
        status, body = error_body(outcome.response)
        assert status == 500
        assert body["code"] == "no_secret_key"
        assert body["message"] == (
            "Autumn secret key not found in ENV variables or passed into autumnHandler"
        )
        assert outcome.identified == 0


def test_secret_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTUMN_SECRET_KEY", "am_sk_test_env")
    outcome = run(
        "/attach",
        {"planId": "pro"},
        identity=Identity("cus_1"),
        upstream=attach_upstream,
        settings=HandlerSettings(),
    )
    assert outcome.response.status == 200


@pytest.mark.parametrize("path", ["/nope", "/Attach", "/attach/extra", "", "/"])
def test_unknown_routes_are_not_found(path: str) -> None:
    outcome = run(path, {}, identity=Identity("cus_1"))
    assert error_body(outcome.response) == (
        404,
        {"message": "Not found", "code": "not_found", "statusCode": 404},
    )
    assert outcome.identified == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_only_post_is_served(method: str) -> None:
    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), method=method)
    assert outcome.response.status == 404
    assert outcome.response.body["code"] == "not_found"


@pytest.mark.parametrize("path", ["/attach/", "//attach", "/attach//", "attach"])
def test_trailing_and_doubled_slashes_are_tolerated(path: str) -> None:
    outcome = run(path, {"planId": "pro"}, identity=Identity("cus_1"), upstream=attach_upstream)
    assert outcome.response.status == 200
    assert outcome.calls[0].operation.path == "/v1/billing.attach"


def test_every_route_maps_to_its_upstream_operation() -> None:
    expected = {
        "getOrCreateCustomer": "/v1/customers.get_or_create",
        "getEntity": "/v1/entities.get",
        "attach": "/v1/billing.attach",
        "previewAttach": "/v1/billing.preview_attach",
        "updateSubscription": "/v1/billing.update",
        "previewUpdateSubscription": "/v1/billing.preview_update",
        "multiAttach": "/v1/billing.multi_attach",
        "previewMultiAttach": "/v1/billing.preview_multi_attach",
        "setupPayment": "/v1/billing.setup_payment",
        "openCustomerPortal": "/v1/billing.open_customer_portal",
        "createReferralCode": "/v1/referrals.create_code",
        "redeemReferralCode": "/v1/referrals.redeem_code",
        "listPlans": "/v1/plans.list",
        "listEvents": "/v1/events.list",
        "aggregateEvents": "/v1/events.aggregate",
    }
    assert {name: route.operation.path for name, route in ROUTES.items()} == expected
    assert all(route.operation.http_method == "POST" for route in ROUTES.values())


# --- identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", CUSTOMER_ROUTES)
def test_routes_needing_a_customer_answer_401_without_one(route: str) -> None:
    outcome = run(f"/{route}", {"planId": "pro"}, identity=None)
    assert error_body(outcome.response) == (
        401,
        {
            "message": "customerId returned from identify function is null",
            "code": "no_customer_id",
            "statusCode": 401,
        },
    )
    assert outcome.calls == []
    assert outcome.identified == 1


def test_empty_customer_id_counts_as_missing_and_is_printed_as_is() -> None:
    outcome = run("/attach", {"planId": "pro"}, identity={"customerId": ""})
    assert outcome.response.status == 401
    assert outcome.response.body["message"] == "customerId returned from identify function is "


def test_get_or_create_without_customer_is_401_by_default() -> None:
    for body in (None, {}, {"errorOnNotFound": True}):
        outcome = run("/getOrCreateCustomer", body, identity=None)
        assert error_body(outcome.response) == (
            401,
            {"message": "customerId not found", "code": "no_customer_id", "statusCode": 401},
        )


def test_get_or_create_without_customer_and_error_on_not_found_false_is_204() -> None:
    outcome = run("/getOrCreateCustomer", {"errorOnNotFound": False}, identity={"customerId": None})
    assert outcome.response.status == 204
    assert outcome.response.body is None
    assert outcome.response.content == b""
    assert outcome.calls == []


def test_list_plans_works_without_a_customer() -> None:
    def plans(call: CallAutumn) -> models.ListPlansResponse:
        return models.ListPlansResponse.model_validate({"list": []})

    anonymous = run("/listPlans", {}, identity=None, upstream=plans)
    assert anonymous.response.status == 200
    assert anonymous.response.body == {"list": []}
    assert "customer_id" not in anonymous.calls[0].body

    known = run("/listPlans", {"includeArchived": True}, identity=Identity("cus_1"), upstream=plans)
    assert known.calls[0].body == {"customer_id": "cus_1", "include_archived": True}


IDENTIFY_FAILED_BODY = {
    "message": "The app's identify function failed; the details are in the server log",
    "code": "identify_failed",
    "statusCode": 500,
}


def logged_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "autumn_handlers" and r.levelno >= logging.ERROR]


def test_identify_failure_is_logged_and_answered_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise LookupError("session store unavailable at db.internal:5432")

    outcome = run("/attach", {"planId": "pro"}, identity=broken)
    assert error_body(outcome.response) == (500, IDENTIFY_FAILED_BODY)
    assert "db.internal" not in outcome.response.content.decode()
    assert outcome.calls == []
    [record] = logged_errors(caplog)
    assert record.exc_info is not None and isinstance(record.exc_info[1], LookupError)


@pytest.mark.parametrize(
    "returned",
    ["cus_1", {"customerId": 42}, {"customerId": "cus_1", "customerData": ["not", "a", "mapping"]}],
)
def test_identify_returning_a_wrong_shape_is_an_identify_failure(
    returned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = run("/attach", {"planId": "pro"}, identity=returned)
    assert error_body(outcome.response) == (500, IDENTIFY_FAILED_BODY)
    assert "42" not in outcome.response.content.decode()
    assert logged_errors(caplog)


def test_invalid_customer_data_from_identify_is_an_identify_failure(caplog: pytest.LogCaptureFixture) -> None:
    identity = Identity("cus_1", {"email": 12345, "send_email_receipts": "sometimes"})
    outcome = run("/getOrCreateCustomer", {}, identity=identity)
    assert error_body(outcome.response) == (500, IDENTIFY_FAILED_BODY)
    assert outcome.calls == []
    assert "sometimes" not in outcome.response.content.decode()
    assert any("customer data" in record.getMessage() for record in logged_errors(caplog))


def test_identify_is_called_once_per_request() -> None:
    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=attach_upstream)
    assert outcome.identified == 1


# --- protected fields and injection ------------------------------------------------------------


def test_protected_fields_are_stripped_and_customer_id_injected() -> None:
    body = {
        "planId": "pro",
        "customerId": "cus_victim",
        "customer_id": "cus_victim",
        "customerData": {"name": "x"},
        "name": "Mallory",
        "email": "m@example.com",
        "stripeId": "cus_stripe_victim",
        "metadata": {"source": "pricing_page"},
    }
    outcome = run("/attach", body, identity=Identity("cus_1"), upstream=attach_upstream)
    assert outcome.response.status == 200
    sent = outcome.calls[0].body
    assert sent["customer_id"] == "cus_1"
    assert sent["plan_id"] == "pro"
    # metadata is only protected on getOrCreateCustomer (autumn-js 1.2.28+).
    assert sent["metadata"] == {"source": "pricing_page"}
    for key in ("name", "email", "stripe_id", "customer_data"):
        assert key not in sent


def test_snake_case_customer_id_cannot_reach_an_anonymous_route() -> None:
    def plans(call: CallAutumn) -> models.ListPlansResponse:
        return models.ListPlansResponse.model_validate({"list": []})

    outcome = run("/listPlans", {"customer_id": "cus_victim", "customerId": "cus_victim"}, upstream=plans)
    assert outcome.calls[0].body == {}


def test_entity_id_comes_from_the_browser() -> None:
    def entity(call: CallAutumn) -> models.Entity:
        return models.Entity.model_validate(
            {
                "id": call.body["entity_id"],
                "name": "Seat 1",
                "customer_id": call.body["customer_id"],
                "feature_id": "seats",
                "created_at": 1,
                "env": "sandbox",
                "subscriptions": [],
                "purchases": [],
                "balances": {},
                "flags": {},
            }
        )

    outcome = run(
        "/getEntity",
        {"entityId": "seat_1", "expand": ["invoices"]},
        identity=Identity("cus_1"),
        upstream=entity,
    )
    assert outcome.calls[0].body == {"customer_id": "cus_1", "entity_id": "seat_1"}
    assert outcome.response.body["customerId"] == "cus_1"
    assert outcome.response.body["featureId"] == "seats"


def test_get_or_create_merges_identify_data_and_forces_the_feature_expand() -> None:
    identity = {
        "customerId": "cus_1",
        "customerData": {
            "name": "Ada",
            "email": "ada@example.com",
            "stripeId": "cus_stripe_1",
            "metadata": {"plan_source": "signup"},
            "fingerprint": "device-1",
            "sendEmailReceipts": True,
        },
    }
    body = {
        "expand": ["invoices", "balances.feature"],
        "errorOnNotFound": True,
        "name": "Mallory",
        "metadata": {"owned": True},
        "fingerprint": "device-2",
    }
    outcome = run("/getOrCreateCustomer", body, identity=identity, upstream=customer_upstream)
    assert outcome.response.status == 200
    sent = outcome.calls[0].body
    assert sent == {
        "customer_id": "cus_1",
        "name": "Ada",
        "email": "ada@example.com",
        "stripe_id": "cus_stripe_1",
        "metadata": {"plan_source": "signup"},
        "send_email_receipts": True,
        # the browser wins on keys that are not protected, as in autumn-js
        "fingerprint": "device-2",
        "expand": ["invoices", "balances.feature"],
    }


def test_get_or_create_accepts_snake_case_identity_data() -> None:
    identity = Identity("cus_1", {"stripe_id": "cus_stripe_1", "auto_enable_plan_id": "free"})
    outcome = run("/getOrCreateCustomer", {}, identity=identity, upstream=customer_upstream)
    assert outcome.calls[0].body == {
        "customer_id": "cus_1",
        "stripe_id": "cus_stripe_1",
        "auto_enable_plan_id": "free",
        "expand": ["balances.feature"],
    }


def test_forced_expand_is_added_when_the_browser_sends_none() -> None:
    outcome = run("/getOrCreateCustomer", None, identity=Identity("cus_1"), upstream=customer_upstream)
    assert outcome.calls[0].body == {"customer_id": "cus_1", "expand": ["balances.feature"]}


# --- casing ------------------------------------------------------------------------------------


def test_browser_camel_case_becomes_api_snake_case_with_map_keys_untouched() -> None:
    body = {
        "planId": "pro",
        "successUrl": "http://localhost/done",
        "openInNewTab": True,
        "featureQuantities": [{"featureId": "seats", "quantity": 3, "adjustable": True}],
        "checkoutSessionParams": {"allow_promotion_codes": True, "customText": {"x": 1}},
        "invoiceMode": {"enabled": True, "enablePlanImmediately": True},
    }
    outcome = run("/attach", body, identity=Identity("cus_1"), upstream=attach_upstream)
    assert outcome.calls[0].body == {
        "customer_id": "cus_1",
        "plan_id": "pro",
        "success_url": "http://localhost/done",
        "feature_quantities": [{"feature_id": "seats", "quantity": 3, "adjustable": True}],
        "checkout_session_params": {"allow_promotion_codes": True, "customText": {"x": 1}},
        "invoice_mode": {"enabled": True, "enable_plan_immediately": True},
    }


def test_api_snake_case_becomes_browser_camel_case_and_unknown_keys_are_dropped() -> None:
    outcome = run("/getOrCreateCustomer", {}, identity=Identity("cus_1"), upstream=customer_upstream)
    body = outcome.response.body
    assert outcome.response.status == 200
    assert body["createdAt"] == 1700000000000
    assert body["sendEmailReceipts"] is False
    assert body["billingControls"] == {}
    assert body["metadata"] == {"team_size": 3}
    assert "a_field_from_a_newer_server" not in body
    balance = body["balances"]["api_calls"]
    assert balance["featureId"] == "api_calls"
    assert balance["overageAllowed"] is False
    assert balance["maxPurchase"] is None
    assert balance["feature"]["type"] == "metered"
    assert "a_key_from_a_newer_server" not in balance
    assert not any("_" in key for key in body if key != "balances")


def test_events_list_keeps_the_renamed_list_field_and_properties() -> None:
    def events(call: CallAutumn) -> models.EventsListResponse:
        return models.EventsListResponse.model_validate(
            {
                "list": [
                    {
                        "id": "evt_1",
                        "timestamp": 1,
                        "feature_id": "api_calls",
                        "customer_id": "cus_1",
                        "value": 2,
                        "properties": {"model_name": "small"},
                        "deductions": [],
                    }
                ],
                "next_cursor": "cursor_2",
            }
        )

    outcome = run(
        "/listEvents",
        {"startCursor": "", "limit": 100, "featureId": ["api_calls"]},
        identity=Identity("cus_1"),
        upstream=events,
    )
    assert outcome.calls[0].body == {
        "customer_id": "cus_1",
        "start_cursor": "",
        "limit": 100,
        "feature_id": ["api_calls"],
    }
    assert outcome.response.body == {
        "list": [
            {
                "id": "evt_1",
                "timestamp": 1,
                "featureId": "api_calls",
                "customerId": "cus_1",
                "value": 2,
                "properties": {"model_name": "small"},
                "deductions": [],
            }
        ],
        "nextCursor": "cursor_2",
    }


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("/attach", {"successUrl": "http://x"}, "planId: is required"),
        ("/attach", {"planId": 7}, "planId: must be a string"),
        ("/aggregateEvents", {"featureId": 5}, "featureId: must be a string or a list"),
        (
            "/attach",
            {"planId": "pro", "customize": {"price": {"amount": "ten", "interval": "month"}}},
            "customize.price.amount: must be a number",
        ),
        (
            "/attach",
            {"planId": "pro", "featureQuantities": [{"featureId": 1}]},
            "featureQuantities[0].featureId: must be a string",
        ),
        ("/attach", {"planId": "pro", "prorationBehavior": "sometimes"}, "prorationBehavior: must be one of"),
        ("/listEvents", {"limit": 2.5, "customRange": {"start": "yesterday"}}, "limit: must be an integer"),
        (
            "/attach",
            {"planId": "pro", "customize": {"price": {"amount": "Infinity", "interval": "month"}}},
            "customize.price.amount: must be a finite number",
        ),
        (
            "/listEvents",
            {"customRange": {"start": "NaN", "end": 1}},
            "customRange.start: must be a finite number",
        ),
        ("/getOrCreateCustomer", {"expand": ["everything"]}, "expand[0]: must be one of 'invoices'"),
    ],
)
def test_schema_violations_are_the_browsers_400(route: str, body: Any, message: str) -> None:
    outcome = run(route, body, identity=Identity("cus_1"))
    status, answer = error_body(outcome.response)
    assert (status, answer["code"]) == (400, "invalid_inputs")
    assert answer["message"].startswith(message), answer["message"]
    assert "customer_id" not in answer["message"]
    assert outcome.calls == []


DEEP = b'{"a":' * 40 + b"1" + b"}" * 40
TOO_DEEP_FOR_PYTHON = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "Request body is not valid JSON"),
        (b"{not json", "Request body is not valid JSON"),
        (b'{"planId": "pro",}', "Request body is not valid JSON"),
        (b"[]", "Request body must be a JSON object"),
        (b"[1, 2]", "Request body must be a JSON object"),
        (b'"text"', "Request body must be a JSON object"),
        (b"null", "Request body must be a JSON object"),
        (b'{"planId": "pro", "version": NaN}', "Request body contains NaN: numbers must be finite"),
        (b'{"planId": "pro", "version": Infinity}', "Request body contains Infinity"),
        (b'{"planId": "pro", "version": -Infinity}', "Request body contains -Infinity"),
        (
            b'{"planId": "pro", "version": 1e309}',
            "Request body contains the number 1e309, which is out of range",
        ),
        (
            b'{"planId": "pro", "version": ' + b"9" * 401 + b"}",
            "Request body contains an integer of 401 digits",
        ),
        (
            b'{"planId": "pro", "version": ' + b"9" * 5000 + b"}",
            "Request body contains an integer of 5000 digits",
        ),
        (rb'{"planId": "pro\u0000"}', "planId: must not contain NUL characters"),
        (rb'{"planId": "pro", "metadata": {"a\u0000b": 1}}', "metadata: must not contain NUL characters"),
        (rb'{"planId": "\ud800"}', "planId: must be valid Unicode"),
        (b'{"planId": "pro\xff"}', "Request body is not valid JSON"),
        (DEEP, "Request body is nested deeper than 32 levels"),
        (TOO_DEEP_FOR_PYTHON, "Request body is nested deeper than 32 levels"),
    ],
)
def test_bodies_that_are_not_a_clean_json_object_are_400(raw: bytes, message: str) -> None:
    outcome = run("/attach", raw=raw, identity=Identity("cus_1"))
    status, answer = error_body(outcome.response)
    assert (status, answer["code"]) == (400, "invalid_inputs")
    assert answer["message"].startswith(message), answer["message"]
    assert outcome.identified == 0
    assert outcome.calls == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]
)
def test_a_body_must_be_sent_as_json(content_type: str | None) -> None:
    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), content_type=content_type)
    assert error_body(outcome.response) == (
        415,
        {
            "message": "Request body must be sent as Content-Type: application/json",
            "code": "unsupported_media_type",
            "statusCode": 415,
        },
    )
    assert outcome.identified == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
def test_json_media_types_with_parameters_are_accepted(content_type: str) -> None:
    outcome = run(
        "/attach",
        {"planId": "pro"},
        identity=Identity("cus_1"),
        upstream=attach_upstream,
        content_type=content_type,
    )
    assert outcome.response.status == 200


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_an_empty_body_counts_as_an_empty_object(raw: bytes) -> None:
    outcome = run(
        "/getOrCreateCustomer",
        raw=raw,
        identity=Identity("cus_1"),
        upstream=customer_upstream,
        content_type=None,
    )
    assert outcome.response.status == 200
    assert outcome.calls[0].body == {"customer_id": "cus_1", "expand": ["balances.feature"]}


def test_bodies_over_the_limit_are_413_whether_read_or_declared() -> None:
    settings = HandlerSettings(secret_key="k", max_body_bytes=64)
    fits = json.dumps({"planId": "p" * 40}).encode()
    assert len(fits) <= 64
    ok = run("/attach", raw=fits, identity=Identity("cus_1"), upstream=attach_upstream, settings=settings)
    assert ok.response.status == 200

    expected = (
        413,
        {"message": "Request body is larger than 64 bytes", "code": "payload_too_large", "statusCode": 413},
    )
    read = run(
        "/attach", raw=json.dumps({"planId": "p" * 60}).encode(), identity=Identity("c"), settings=settings
    )
    assert error_body(read.response) == expected
    declared = run(
        "/attach", raw=b"", headers={"Content-Length": "65"}, identity=Identity("c"), settings=settings
    )
    assert error_body(declared.response) == expected
    assert read.identified == declared.identified == 0


@pytest.mark.parametrize(
    ("header", "status"), [("\u00b2", 200), ("9" * 5000, 413), ("-1", 200), ("abc", 200)]
)
def test_an_odd_content_length_never_breaks_the_pipeline(header: str, status: int) -> None:
    outcome = run(
        "/attach",
        {"planId": "pro"},
        identity=Identity("cus_1"),
        upstream=attach_upstream,
        headers={"content-length": header},
    )
    assert outcome.response.status == status


def test_the_default_limit_is_one_mebibyte() -> None:
    assert HandlerSettings().max_body_bytes == 1024 * 1024


# --- upstream errors and fail-open -------------------------------------------------------------


def test_upstream_errors_keep_status_message_and_code() -> None:
    def not_found(call: CallAutumn) -> Any:
        raise NotFoundError(
            "Autumn API error 404",
            status_code=404,
            code="product_not_found",
            body={"message": "Plan pro not found", "code": "product_not_found", "env": "sandbox"},
        )

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=not_found)
    assert error_body(outcome.response) == (
        404,
        {"message": "Plan pro not found", "code": "product_not_found", "statusCode": 404},
    )


def test_upstream_error_without_a_json_body_gets_a_fixed_message() -> None:
    def bad(call: CallAutumn) -> Any:
        raise BadRequestError(
            "<html>proxy at 10.0.0.7</html> (HTTP 400, POST http://autumn.internal/v1/billing.attach)",
            status_code=400,
            body="<html>proxy at 10.0.0.7</html>",
        )

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=bad)
    assert error_body(outcome.response) == (
        400,
        {"message": "Autumn answered HTTP 400", "code": "autumn_api_error", "statusCode": 400},
    )


def test_upstream_5xx_messages_stay_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    def crash(call: CallAutumn) -> Any:
        raise InternalServerError(
            "internal_error: relation customers does not exist (HTTP 500)",
            status_code=500,
            code="internal_error",
            body={"message": "relation customers does not exist", "code": "internal_error"},
        )

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=crash)
    assert error_body(outcome.response) == (
        500,
        {"message": "Autumn answered HTTP 500", "code": "internal_error", "statusCode": 500},
    )
    assert any("relation customers" in record.getMessage() for record in caplog.records)


def test_an_unreadable_answer_from_autumn_is_502(caplog: pytest.LogCaptureFixture) -> None:
    def garbled(call: CallAutumn) -> Any:
        raise ResponseValidationError(
            "Autumn's answer to billing.attach does not match AttachResponse (HTTP 200, http://autumn.internal)",
            status_code=200,
            body={"nonsense": True},
        )

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=garbled)
    assert error_body(outcome.response) == (
        502,
        {
            "message": "Autumn's answer could not be read; the details are in the server log",
            "code": "autumn_api_error",
            "statusCode": 502,
        },
    )
    assert logged_errors(caplog)


@pytest.mark.parametrize(
    "error",
    [
        InternalServerError("down", status_code=503, body={"message": "down", "code": "unavailable"}),
        APIConnectionError("Connection refused"),
        APITimeoutError("Read timed out"),
    ],
)
def test_get_or_create_fails_open(error: Exception) -> None:
    def outage(call: CallAutumn) -> Any:
        raise error

    outcome = run("/getOrCreateCustomer", {}, identity=Identity("cus_1"), upstream=outage)
    assert outcome.response.status == 200
    assert outcome.response.body == {
        "id": None,
        "name": None,
        "email": None,
        "createdAt": 0,
        "fingerprint": None,
        "stripeId": None,
        "env": "live",
        "metadata": {},
        "sendEmailReceipts": False,
        "billingControls": {},
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
        "licenses": [],
    }


def test_get_entity_fails_open() -> None:
    def outage(call: CallAutumn) -> Any:
        raise APIConnectionError("Connection refused")

    outcome = run("/getEntity", {"entityId": "seat_1"}, identity=Identity("cus_1"), upstream=outage)
    assert outcome.response.status == 200
    assert outcome.response.body == {
        "id": None,
        "name": None,
        "customerId": None,
        "featureId": None,
        "createdAt": 0,
        "env": "live",
        "subscriptions": [],
        "purchases": [],
        "balances": {},
        "flags": {},
    }


def test_fail_open_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def outage(call: CallAutumn) -> Any:
        raise InternalServerError("down", status_code=502, body={"message": "bad gateway"})

    explicit = run(
        "/getOrCreateCustomer",
        {},
        identity=Identity("cus_1"),
        upstream=outage,
        settings=HandlerSettings(secret_key="k", fail_open=False),
    )
    assert error_body(explicit.response) == (
        502,
        {"message": "Autumn answered HTTP 502", "code": "autumn_api_error", "statusCode": 502},
    )
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")
    from_env = run("/getOrCreateCustomer", {}, identity=Identity("cus_1"), upstream=outage)
    assert from_env.response.status == 502


def test_client_errors_never_fail_open() -> None:
    def rejected(call: CallAutumn) -> Any:
        raise BadRequestError(
            "bad", status_code=400, body={"message": "bad expand", "code": "invalid_inputs"}
        )

    outcome = run("/getOrCreateCustomer", {}, identity=Identity("cus_1"), upstream=rejected)
    assert outcome.response.status == 400
    assert outcome.response.body["code"] == "invalid_inputs"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            APIConnectionError("Could not reach Autumn at autumn.internal: [Errno 111]"),
            "Could not reach Autumn",
        ),
        (
            APITimeoutError("Autumn did not answer within 5 s (ReadTimeout, autumn.internal)"),
            "Autumn did not answer in time",
        ),
    ],
)
def test_network_failure_elsewhere_is_status_555(error: Exception, message: str) -> None:
    def outage(call: CallAutumn) -> Any:
        raise error

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=outage)
    assert error_body(outcome.response) == (
        555,
        {"message": message, "code": "autumn_api_error", "statusCode": 555},
    )
    assert "autumn.internal" not in outcome.response.content.decode()


def test_a_saturated_client_is_a_503_not_an_outage() -> None:
    """The app's own connection pool stayed full past the budget: Autumn is not down, so no 555 and
    no fail-open answer, and the pool detail stays in the log."""

    def saturated(call: CallAutumn) -> Any:
        raise PoolTimeoutError("no free connection to autumn.internal within 10 s")

    for route, body in (("/attach", {"planId": "pro"}), ("/getOrCreateCustomer", {})):
        outcome = run(route, body, identity=Identity("cus_1"), upstream=saturated)
        assert error_body(outcome.response) == (
            503,
            {
                "message": "Too many calls to Autumn are waiting; try again shortly",
                "code": "client_busy",
                "statusCode": 503,
            },
        )
        assert "autumn.internal" not in outcome.response.content.decode()


INTERNAL_ERROR_BODY = {
    "message": "Internal server error; the details are in the server log",
    "code": "internal_error",
    "statusCode": 500,
}


@pytest.mark.parametrize(
    "error",
    [RuntimeError("pool exhausted at 10.0.0.7"), MissingSecretKeyError("no key for 10.0.0.7")],
)
def test_unexpected_failures_are_logged_internal_errors(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(call: CallAutumn) -> Any:
        raise error

    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=crash)
    assert error_body(outcome.response) == (500, INTERNAL_ERROR_BODY)
    [record] = logged_errors(caplog)
    assert record.exc_info is not None and record.exc_info[1] is error


def test_an_answer_holding_nan_is_502_not_broken_json(caplog: pytest.LogCaptureFixture) -> None:
    """An old server stored ``Infinity``/``NaN`` usage (issue 10); the hooks' ``response.json()``
    would refuse such a body, so it never leaves the handler."""

    def events(call: CallAutumn) -> models.EventsListResponse:
        answer = models.EventsListResponse.model_validate(
            {
                "list": [
                    {
                        "id": "evt_1",
                        "timestamp": 1,
                        "feature_id": "api_calls",
                        "customer_id": "cus_1",
                        "value": 2,
                        "properties": {},
                        "deductions": [],
                    }
                ],
                "next_cursor": None,
            }
        )
        answer.list[0].value = float("nan")  # as a lenient parser would have read it
        return answer

    outcome = run("/listEvents", {}, identity=Identity("cus_1"), upstream=events)
    status, body = error_body(outcome.response)
    assert (status, body["code"]) == (502, "autumn_api_error")
    assert json.loads(outcome.response.content) == body
    assert logged_errors(caplog)


def test_a_failure_after_the_call_is_an_internal_error_too(caplog: pytest.LogCaptureFixture) -> None:
    """An answer the pipeline cannot convert still gets the JSON error shape, not the framework's 500."""
    outcome = run("/attach", {"planId": "pro"}, identity=Identity("cus_1"), upstream=lambda call: object())
    assert error_body(outcome.response) == (500, INTERNAL_ERROR_BODY)
    assert logged_errors(caplog)


# --- CORS --------------------------------------------------------------------------------------

CORS = CORSConfig(allow_origins=["http://localhost:5173"], allow_headers=["content-type", "x-test-customer"])


def test_preflight_echoes_the_exact_origin_with_credentials() -> None:
    outcome = run(
        "/getOrCreateCustomer",
        method="OPTIONS",
        settings=HandlerSettings(secret_key="k", cors=CORS),
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-test-customer",
        },
    )
    response = outcome.response
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert set(response.headers["Access-Control-Allow-Headers"].split(", ")) == {
        "content-type",
        "x-test-customer",
    }
    assert outcome.identified == 0


def test_preflight_from_a_foreign_origin_is_refused() -> None:
    outcome = run(
        "/attach",
        method="OPTIONS",
        settings=HandlerSettings(secret_key="k", cors=CORS),
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert outcome.response.status == 403
    assert "Access-Control-Allow-Origin" not in outcome.response.headers


def test_actual_responses_carry_cors_headers_for_allowed_origins_only() -> None:
    settings = HandlerSettings(secret_key="k", cors=CORS)
    allowed = run(
        "/attach",
        {"planId": "pro"},
        identity=Identity("cus_1"),
        upstream=attach_upstream,
        settings=settings,
        headers={"origin": "http://localhost:5173"},
    )
    assert allowed.response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert allowed.response.headers["Access-Control-Allow-Credentials"] == "true"
    denied_error = run(
        "/attach",
        {"planId": "pro"},
        identity=None,
        settings=settings,
        headers={"origin": "http://evil.example"},
    )
    assert denied_error.response.status == 401
    assert "Access-Control-Allow-Origin" not in denied_error.response.headers
