"""Honest errors through each adapter, with the real reference server behind.

A body the browser got wrong is its 4xx in the hooks' ``{message, code, statusCode}`` shape (400
``invalid_inputs``, 413 ``payload_too_large``, 415 ``unsupported_media_type``), refused before
``identify`` or Autumn is called, so nothing changes upstream. A failing ``identify`` is logged with
its traceback and answered with a fixed message that never carries the exception's text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from autumn_sdk.errors import NotFoundError

from .apps import FRAMEWORKS, IDENTIFY_ERROR_HEADER, HandlerClient, HandlerOptions, Reply, handler_client
from .live import FREE_PLAN, LiveAutumn

PREFIX = "/api/autumn"
JSON = {"content-type": "application/json"}
MIB = 1024 * 1024


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(framework: str, reference: LiveAutumn) -> Iterator[HandlerClient]:
    options = HandlerOptions(secret_key=reference.secret_key, autumn_url=reference.url)
    with handler_client(framework, options) as test_client:
        yield test_client


@pytest.fixture
def customer_id(framework: str, reference: LiveAutumn) -> str:
    """A customer that exists upstream with no plan: any attach that got through would show."""
    customer = reference.new_customer_id(f"cus_err_{framework}")
    reference.autumn.customers.get_or_create(customer_id=customer)
    return customer


def strict_json(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def assert_error(reply: Reply, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.text)
    assert reply.headers["content-type"].startswith("application/json")
    body = strict_json(reply.text)
    assert set(body) == {"message", "code", "statusCode"}
    assert (body["statusCode"], body["code"]) == (status, code)
    if message is not None:
        assert body["message"].startswith(message), body["message"]
    return dict(body)


def no_plan_attached(reference: LiveAutumn, customer_id: str) -> bool:
    return reference.autumn.customers.get(customer_id=customer_id).subscriptions == []


PLAN = FREE_PLAN.encode()

BAD_ATTACH_BODIES: list[tuple[str, bytes, str]] = [
    ("truncated", b"{", "Request body is not valid JSON"),
    ("array", b"[]", "Request body must be a JSON object"),
    ("string", b'"attach"', "Request body must be a JSON object"),
    ("not utf-8", b'{"planId": "\xff\xfe"}', "Request body is not valid JSON"),
    ("missing planId", b'{"successUrl": "http://app.local/"}', "planId: is required"),
    ("wrong type", b'{"planId": 12}', "planId: must be a string"),
    ("NaN", b'{"planId": "' + PLAN + b'", "version": NaN}', "Request body contains NaN"),
    ("Infinity", b'{"planId": "' + PLAN + b'", "version": Infinity}', "Request body contains Infinity"),
    ("-Infinity", b'{"planId": "' + PLAN + b'", "version": -Infinity}', "Request body contains -Infinity"),
    ("1e309", b'{"planId": "' + PLAN + b'", "version": 1e309}', "Request body contains the number 1e309"),
    (
        "401 digits",
        b'{"planId": "' + PLAN + b'", "version": ' + b"1" * 401 + b"}",
        "Request body contains an integer of 401 digits",
    ),
    (
        "Infinity as a string",
        b'{"planId": "' + PLAN + b'", "customize": {"price": {"amount": "Infinity", "interval": "month"}}}',
        "customize.price.amount: must be a finite number",
    ),
    ("NUL", b'{"planId": "' + PLAN + rb'\u0000"}', "planId: must not contain NUL characters"),
    ("lone surrogate", b'{"planId": "' + PLAN + rb'\udc00"}', "planId: must be valid Unicode"),
    (
        "nested 5000 deep",
        b'{"planId": "' + PLAN + b'", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "Request body is nested deeper than 32 levels",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"),
    [pytest.param(raw, message, id=name) for name, raw, message in BAD_ATTACH_BODIES],
)
def test_bad_bodies_are_400_and_never_reach_autumn(
    client: HandlerClient, customer_id: str, reference: LiveAutumn, raw: bytes, message: str
) -> None:
    reply = client.send(f"{PREFIX}/attach", raw, {**JSON, "x-test-customer": customer_id})
    assert_error(reply, 400, "invalid_inputs", message)
    assert no_plan_attached(reference, customer_id)


@pytest.mark.parametrize("content_type", [None, "text/plain;charset=UTF-8"])
def test_a_body_not_sent_as_json_is_415(
    client: HandlerClient, customer_id: str, reference: LiveAutumn, content_type: str | None
) -> None:
    """A text/plain POST needs no CORS preflight, so another site could send it with the user's cookies."""
    headers = {"x-test-customer": customer_id}
    if content_type is not None:
        headers["content-type"] = content_type
    reply = client.send(f"{PREFIX}/attach", json.dumps({"planId": FREE_PLAN}).encode(), headers)
    assert_error(reply, 415, "unsupported_media_type")
    assert no_plan_attached(reference, customer_id)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_one_mebibyte_are_413(
    client: HandlerClient, customer_id: str, reference: LiveAutumn, chunked: bool
) -> None:
    body = {"planId": FREE_PLAN, "metadata": {"padding": "x" * MIB}}
    headers = {**JSON, "x-test-customer": customer_id}
    reply = client.send(f"{PREFIX}/attach", json.dumps(body).encode(), headers, chunked=chunked)
    assert_error(reply, 413, "payload_too_large", f"Request body is larger than {MIB} bytes")
    assert no_plan_attached(reference, customer_id)


def test_a_chunked_body_within_the_limit_is_served(
    client: HandlerClient, customer_id: str, reference: LiveAutumn
) -> None:
    body = {"planId": FREE_PLAN, "successUrl": "http://app.local/?note=" + "y" * 3000}
    headers = {**JSON, "x-test-customer": customer_id}
    reply = client.send(f"{PREFIX}/attach", json.dumps(body).encode(), headers, chunked=True)
    assert reply.status == 200, reply.text
    assert reply.json["customerId"] == customer_id
    assert not no_plan_attached(reference, customer_id)


def test_the_limit_is_an_adapter_option(framework: str, reference: LiveAutumn) -> None:
    options = HandlerOptions(secret_key=reference.secret_key, autumn_url=reference.url, max_body_bytes=256)
    customer = reference.new_customer_id(f"cus_limit_{framework}")
    headers = {**JSON, "x-test-customer": customer}
    with handler_client(framework, options) as client:
        small = client.send(f"{PREFIX}/getOrCreateCustomer", b"{}", headers)
        large = client.send(f"{PREFIX}/getOrCreateCustomer", b'{"expand": []' + b" " * 300 + b"}", headers)
    assert small.status == 200
    assert_error(large, 413, "payload_too_large", "Request body is larger than 256 bytes")


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b'{"expand": ["everything"]}', b'{"fingerprint": NaN}'],
    ids=["truncated", "array", "bad expand", "NaN"],
)
def test_get_or_create_with_a_bad_body_creates_no_customer(
    client: HandlerClient, framework: str, reference: LiveAutumn, raw: bytes
) -> None:
    customer = reference.new_customer_id(f"cus_never_{framework}")
    reply = client.send(f"{PREFIX}/getOrCreateCustomer", raw, {**JSON, "x-test-customer": customer})
    assert_error(reply, 400, "invalid_inputs")
    with pytest.raises(NotFoundError):
        reference.autumn.customers.get(customer_id=customer)


def test_an_empty_body_still_counts_as_an_empty_object(
    client: HandlerClient, framework: str, reference: LiveAutumn
) -> None:
    customer = reference.new_customer_id(f"cus_empty_{framework}")
    reply = client.send(f"{PREFIX}/getOrCreateCustomer", b"", {"x-test-customer": customer})
    assert reply.status == 200, reply.text
    assert reply.json["id"] == customer


def test_a_failing_identify_is_logged_and_answered_without_its_text(
    client: HandlerClient, customer_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "db down: postgresql://admin:hunter2@10.0.0.7/users"
    headers = {"x-test-customer": customer_id, IDENTIFY_ERROR_HEADER: secret}
    with caplog.at_level(logging.ERROR, logger="autumn_handlers"):
        reply = client.request("POST", f"{PREFIX}/getOrCreateCustomer", {}, headers)
    body = assert_error(reply, 500, "identify_failed")
    assert body["message"] == "The app's identify function failed; the details are in the server log"
    for fragment in ("hunter2", "db down", "10.0.0.7", "RuntimeError"):
        assert fragment not in reply.text
    [record] = [r for r in caplog.records if r.name == "autumn_handlers"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError) and str(record.exc_info[1]) == secret
    assert "Traceback" in caplog.text


def test_autumn_4xx_messages_still_reach_the_browser(client: HandlerClient, customer_id: str) -> None:
    reply = client.request(
        "POST", f"{PREFIX}/attach", {"planId": "no_such_plan"}, {"x-test-customer": customer_id}
    )
    body = assert_error(reply, 404, reply.json["code"])
    assert "no_such_plan" in body["message"]
    assert reply.json["code"] != "autumn_api_error"
