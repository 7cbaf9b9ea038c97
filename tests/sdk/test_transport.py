"""The request pipeline (retries, backoff, idempotency, timeouts, errors, fail-open) in both drivers.

Network faults are injected with respx; every test runs against the sync and the async driver.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
import respx
from pydantic import BaseModel, ValidationError

from autumn_sdk import errors, is_degraded, is_fail_open
from autumn_sdk._config import ClientConfig
from autumn_sdk._operation import Operation
from autumn_sdk._resource import NOT_GIVEN, RequestOptions
from autumn_sdk._retries import BackoffStrategy, RetryConfig
from autumn_sdk._transport import Transport

from .helpers import TEST_KEY, TEST_URL, SleepRecorder
from .tiny_ops import ATTACH, CHECK, GET_PERSON, LIST_PEOPLE, AttachResult, GateResult, Person

T = TypeVar("T", bound=BaseModel)
MODES = ["sync", "async"]
CHECK_OK = {"allowed": True, "customer_id": "cus_1", "balance": None, "flag": None}
ATTACH_OK = {"customer_id": "cus_1", "payment_url": None}


def make_transport(**overrides: Any) -> Transport:
    settings: dict[str, Any] = {
        "secret_key": TEST_KEY,
        "server_url": TEST_URL,
        "x_api_version": "2.3.0",
        "fail_open": False,
        "max_retries": 2,
        "retry_config": None,
        "timeout": None,
        "timeout_ms": None,
        "default_headers": None,
        "debug_logger": None,
    }
    settings.update(overrides)
    return Transport(ClientConfig.build(**settings))


async def call(
    transport: Transport, mode: str, op: Operation, body: dict[str, Any], cast_to: type[T], **options: Any
) -> T:
    opts: RequestOptions = options  # type: ignore[assignment]
    if mode == "sync":
        return transport.request(op, body, opts, cast_to)
    return await transport.request_async(op, body, opts, cast_to)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=TEST_URL, assert_all_called=False) as router:
        yield router


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_retries_5xx_then_succeeds_with_bounded_jittered_backoff(
    mode: str, mock: respx.MockRouter, sleeps: SleepRecorder
) -> None:
    route = mock.post("/v1/balances.check").mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json=CHECK_OK)]
    )
    result = await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert result.allowed is True
    assert route.call_count == 3
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5
    assert 0 <= sleeps.delays[1] <= 1.0


@pytest.mark.parametrize("mode", MODES)
async def test_gives_up_after_max_retries(mode: str, mock: respx.MockRouter, sleeps: SleepRecorder) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(500, json={"message": "boom"}))
    with pytest.raises(errors.InternalServerError) as info:
        await call(make_transport(max_retries=3), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert route.call_count == 4
    assert len(sleeps.delays) == 3
    assert info.value.status_code == 500


@pytest.mark.parametrize("mode", MODES)
async def test_per_call_retries_override_client(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(503))
    with pytest.raises(errors.InternalServerError):
        await call(make_transport(max_retries=5), mode, CHECK, {"customer_id": "c"}, GateResult, retries=0)
    assert route.call_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_official_retry_config_is_honoured(
    mode: str, mock: respx.MockRouter, sleeps: SleepRecorder
) -> None:
    route = mock.post("/v1/balances.check").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=CHECK_OK)]
    )
    config = RetryConfig("backoff", BackoffStrategy(10, 50, 1.5, 10_000), True)
    await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult, retries=config)
    assert route.call_count == 2
    assert 0 <= sleeps.delays[0] <= 0.010

    route.reset()
    route.mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=CHECK_OK)])
    no_conn = RetryConfig("backoff", BackoffStrategy(10, 50, 1.5, 10_000), False)
    with pytest.raises(errors.APIConnectionError):
        await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult, retries=no_conn)
    assert route.call_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_seconds(mode: str, mock: respx.MockRouter, sleeps: SleepRecorder) -> None:
    mock.post("/v1/balances.check").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down", "code": "rate"}),
            httpx.Response(200, json=CHECK_OK),
        ]
    )
    await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert sleeps.delays == [3.0]


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_http_date(mode: str, mock: respx.MockRouter, sleeps: SleepRecorder) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    mock.post("/v1/balances.check").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json=CHECK_OK)]
    )
    await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult, total_timeout_ms=60_000)
    assert len(sleeps.delays) == 1
    assert 15 <= sleeps.delays[0] <= 21


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_beyond_cap_gives_up(
    mode: str, mock: respx.MockRouter, sleeps: SleepRecorder
) -> None:
    route = mock.post("/v1/balances.check").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "later"})
    )
    with pytest.raises(errors.RateLimitError) as info:
        await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert route.call_count == 1
    assert sleeps.delays == []
    assert info.value.retry_after == 3600


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 501])
async def test_permanent_errors_are_not_retried(mode: str, status: int, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(status, json={"message": "no"}))
    with pytest.raises(errors.AutumnDefaultError):
        await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert route.call_count == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [408, 429])
async def test_transient_client_statuses_are_retried(mode: str, status: int, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(
        side_effect=[httpx.Response(status, json={"message": "again"}), httpx.Response(200, json=CHECK_OK)]
    )
    await call(make_transport(), mode, CHECK, {"customer_id": "cus_1"}, GateResult)
    assert route.call_count == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("code", ["plan_already_attached", "duplicate_idempotency_key", None])
async def test_a_conflict_is_an_answer_after_one_attempt(
    mode: str, code: str | None, mock: respx.MockRouter, sleeps: SleepRecorder
) -> None:
    """A 409 on the first attempt surfaces the server's own code: no retry, no reinterpretation."""
    body = {"message": "Customer already has plan p", "code": code}
    route = mock.post("/v1/billing.attach").mock(return_value=httpx.Response(409, json=body))
    with pytest.raises(errors.ConflictError) as info:
        await call(
            make_transport(max_retries=5), mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult
        )
    assert type(info.value) is errors.ConflictError
    assert route.call_count == 1
    assert sleeps.delays == []
    assert info.value.code == code


# -- a key in flight, and retries that may have been applied -----------------------------------

IN_FLIGHT = {"message": "still being processed", "code": "idempotency_key_in_flight"}
DUPLICATE = {
    "message": "Another request with idempotency key k has already been received",
    "code": "duplicate_idempotency_key",
}


@pytest.mark.parametrize("mode", MODES)
async def test_key_in_flight_is_waited_for_and_does_not_count_as_a_retry(
    mode: str, mock: respx.MockRouter, sleeps: SleepRecorder
) -> None:
    route = mock.post("/v1/billing.attach").mock(
        side_effect=[
            httpx.Response(409, json=IN_FLIGHT, headers={"Retry-After": "2"}),
            httpx.Response(409, json=IN_FLIGHT, headers={"Retry-After": "600"}),
            httpx.Response(409, json=IN_FLIGHT),
            httpx.Response(200, json=ATTACH_OK, headers={"Idempotent-Replayed": "true"}),
        ]
    )
    result = await call(
        make_transport(max_retries=0),
        mode,
        ATTACH,
        {"customer_id": "c", "plan_id": "p"},
        AttachResult,
        idempotency_key="order-7",
    )
    assert result.customer_id == "cus_1"
    assert route.call_count == 4
    assert sleeps.delays == [2.0, 5.0, 1.0]  # Retry-After honoured, capped at 5 s, 1 s when absent
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {"order-7"}


@pytest.mark.parametrize("mode", MODES)
async def test_key_in_flight_past_the_budget_surfaces_the_conflict(
    mode: str, mock: respx.MockRouter, fake_clock: SleepRecorder
) -> None:
    route = mock.post("/v1/billing.attach").mock(
        return_value=httpx.Response(409, json=IN_FLIGHT, headers={"Retry-After": "1"})
    )
    with pytest.raises(errors.ConflictError) as info:
        await call(
            make_transport(),
            mode,
            ATTACH,
            {"customer_id": "c", "plan_id": "p"},
            AttachResult,
            idempotency_key="order-8",
            total_timeout_ms=3_500,
        )
    assert type(info.value) is errors.ConflictError  # the caller's key: the server's code, unchanged
    assert info.value.code == "idempotency_key_in_flight"
    assert route.call_count == 4  # t = 0, 1, 2, 3; a fourth wait would end past 3.5 s
    assert fake_clock.delays == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "first",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("Server disconnected"), httpx.Response(504)],
    ids=repr,
)
async def test_own_key_refused_after_an_ambiguous_attempt_says_it_may_have_been_applied(
    mode: str, first: Any, mock: respx.MockRouter
) -> None:
    """Autumn's cloud does not replay: the retry's 409 on the SDK's own key means the first got in."""
    route = mock.post("/v1/billing.attach").mock(side_effect=[first, httpx.Response(409, json=DUPLICATE)])
    with pytest.raises(errors.PossiblyAppliedError) as info:
        await call(make_transport(), mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult)
    error = info.value
    assert isinstance(error, errors.ConflictError)
    assert error.code == "duplicate_idempotency_key" and error.status_code == 409
    assert route.call_count == 2
    key = route.calls[0].request.headers["Idempotency-Key"]
    assert route.calls[1].request.headers["Idempotency-Key"] == key == error.idempotency_key
    assert "may have been applied" in str(error)
    assert "before calling again" in str(error)
    expected = errors.APIConnectionError if isinstance(first, Exception) else errors.InternalServerError
    assert isinstance(error.earlier_error, expected)


@pytest.mark.parametrize("mode", MODES)
async def test_own_key_still_in_flight_when_the_budget_ends_may_have_been_applied(
    mode: str, mock: respx.MockRouter, fake_clock: SleepRecorder
) -> None:
    route = mock.post("/v1/billing.attach").mock(
        side_effect=[httpx.ReadTimeout("slow"), *[httpx.Response(409, json=IN_FLIGHT)] * 5]
    )
    with pytest.raises(errors.PossiblyAppliedError) as info:
        await call(
            make_transport(),
            mode,
            ATTACH,
            {"customer_id": "c", "plan_id": "p"},
            AttachResult,
            total_timeout_ms=2_500,
        )
    assert info.value.code == "idempotency_key_in_flight"
    assert "still being processed" in str(info.value)
    assert 2 <= route.call_count <= 4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("first", "options"),
    [
        (httpx.ConnectError("refused"), {}),  # never sent: the 409 cannot be the first attempt's doing
        (httpx.ReadTimeout("slow"), {"idempotency_key": "order-9"}),  # the caller's key: their own history
    ],
    ids=["not-sent", "caller-key"],
)
async def test_other_refused_keys_keep_the_servers_conflict(
    mode: str, first: Exception, options: dict[str, Any], mock: respx.MockRouter
) -> None:
    route = mock.post("/v1/billing.attach").mock(side_effect=[first, httpx.Response(409, json=DUPLICATE)])
    with pytest.raises(errors.ConflictError) as info:
        await call(
            make_transport(), mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult, **options
        )
    assert type(info.value) is errors.ConflictError
    assert info.value.code == "duplicate_idempotency_key"
    assert route.call_count == 2


# -- the total budget and the connection pool --------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_total_budget_ends_retries_and_caps_the_last_attempt(
    mode: str, mock: respx.MockRouter, fake_clock: SleepRecorder
) -> None:
    route = mock.post("/v1/customers.get").mock(
        return_value=httpx.Response(503, json={"message": "busy"}, headers={"Retry-After": "4"})
    )
    with pytest.raises(errors.InternalServerError):
        await call(
            make_transport(max_retries=5),
            mode,
            GET_PERSON,
            {"customer_id": "c"},
            Person,
            total_timeout_ms=5_000,
        )
    assert route.call_count == 2  # a second 4 s wait would end past the 5 s budget
    first, second = (c.request.extensions["timeout"] for c in route.calls)
    assert first["read"] == 5.0 and first["pool"] == 5.0  # 15 s per attempt, capped by the budget
    assert second["read"] == pytest.approx(1.0) and second["pool"] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", MODES)
async def test_timeouts_end_when_the_budget_does_and_check_fails_open_in_time(
    mode: str, mock: respx.MockRouter, fake_clock: SleepRecorder
) -> None:
    """Each attempt takes its whole read timeout (the clock moves by it); check's defaults are 5 s per
    attempt and 10 s in all, so at most two attempts fit however many retries are allowed."""

    def slow(request: httpx.Request) -> httpx.Response:
        fake_clock.advance(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    route = mock.post("/v1/balances.check").mock(side_effect=slow)
    started = fake_clock.now
    with pytest.raises(errors.APITimeoutError) as info:
        await call(make_transport(max_retries=10), mode, CHECK, {"customer_id": "c"}, GateResult)
    assert route.call_count == 2
    assert "total budget of 10 s is spent" in str(info.value)
    assert fake_clock.now - started <= 10.0

    route.reset()
    result = await call(
        make_transport(max_retries=10, fail_open=True), mode, CHECK, {"customer_id": "c"}, GateResult
    )
    assert is_fail_open(result)
    assert route.call_count == 2


@pytest.mark.parametrize("mode", MODES)
async def test_budget_is_a_client_and_a_call_option(
    mode: str, mock: respx.MockRouter, fake_clock: SleepRecorder
) -> None:
    route = mock.post("/v1/customers.get").mock(return_value=httpx.Response(200, json={"id": "c"}))
    await call(make_transport(total_timeout_ms=2_000), mode, GET_PERSON, {"customer_id": "c"}, Person)
    await call(
        make_transport(total_timeout_ms=2_000),
        mode,
        GET_PERSON,
        {"customer_id": "c"},
        Person,
        total_timeout_ms=700,
    )
    await call(make_transport(), mode, GET_PERSON, {"customer_id": "c"}, Person, timeout_ms=1_000)
    timeouts = [c.request.extensions["timeout"] for c in route.calls]
    assert [t["read"] for t in timeouts] == pytest.approx([2.0, 0.7, 1.0])
    assert [t["pool"] for t in timeouts] == pytest.approx([2.0, 0.7, 2.0])
    with pytest.raises(ValueError, match="total_timeout_ms"):
        make_transport(total_timeout_ms=0)


@pytest.mark.parametrize("mode", MODES)
async def test_pool_timeout_is_not_an_outage(
    mode: str, mock: respx.MockRouter, sdk_log: pytest.LogCaptureFixture
) -> None:
    """The client's own pool was full for the whole budget: nothing was sent, so never fail open."""
    route = mock.post("/v1/balances.check").mock(side_effect=httpx.PoolTimeout("no connection"))
    with pytest.raises(errors.PoolTimeoutError) as info:
        await call(make_transport(fail_open=True), mode, CHECK, {"customer_id": "c"}, GateResult)
    assert not isinstance(info.value, errors.APIConnectionError)  # Autumn was never contacted
    assert isinstance(info.value.__cause__, httpx.PoolTimeout)
    assert "nothing was sent" in str(info.value)
    assert route.call_count == 1
    assert "failing open" not in sdk_log.text


# -- idempotency -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_auto_idempotency_key_is_stable_across_retries(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(200, json=ATTACH_OK)]
    )
    await call(make_transport(), mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult)
    keys = {c.request.headers["Idempotency-Key"] for c in route.calls}
    assert route.call_count == 3
    assert len(keys) == 1
    assert len(next(iter(keys))) == 36


@pytest.mark.parametrize("mode", MODES)
async def test_each_call_gets_its_own_key_and_caller_key_wins(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(return_value=httpx.Response(200, json=ATTACH_OK))
    transport = make_transport()
    body = {"customer_id": "c", "plan_id": "p"}
    await call(transport, mode, ATTACH, body, AttachResult)
    await call(transport, mode, ATTACH, body, AttachResult)
    await call(transport, mode, ATTACH, body, AttachResult, idempotency_key="order-42")
    keys = [c.request.headers["Idempotency-Key"] for c in route.calls]
    assert keys[0] != keys[1]
    assert keys[2] == "order-42"


@pytest.mark.parametrize("mode", MODES)
async def test_non_idempotent_call_without_key_is_never_retried(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(return_value=httpx.Response(503))
    with pytest.raises(errors.InternalServerError):
        await call(
            make_transport(),
            mode,
            ATTACH,
            {"customer_id": "c", "plan_id": "p"},
            AttachResult,
            idempotency_key=None,
        )
    assert route.call_count == 1
    assert "Idempotency-Key" not in route.calls[0].request.headers


@pytest.mark.parametrize("mode", MODES)
async def test_read_only_calls_carry_no_key_and_are_retried(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/customers.get").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json={"id": "cus_1"})]
    )
    person = await call(make_transport(), mode, GET_PERSON, {"customer_id": "cus_1"}, Person)
    assert person.id == "cus_1"
    assert route.call_count == 2
    assert all("Idempotency-Key" not in c.request.headers for c in route.calls)


@pytest.mark.parametrize("mode", MODES)
async def test_check_that_sends_an_event_is_a_write(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    transport = make_transport()
    await call(transport, mode, CHECK, {"customer_id": "c"}, GateResult)
    await call(transport, mode, CHECK, {"customer_id": "c", "send_event": True}, GateResult)
    assert "Idempotency-Key" not in route.calls[0].request.headers
    assert "Idempotency-Key" in route.calls[1].request.headers


# -- network failures ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_timeout_raises_api_timeout_error_with_cause(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/customers.get").mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(errors.APITimeoutError) as info:
        await call(make_transport(), mode, GET_PERSON, {"customer_id": "cus_1"}, Person)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert isinstance(info.value, errors.APIConnectionError)
    assert info.value.request is not None
    assert "POST /v1/customers.get" in str(info.value)
    assert route.call_count == 3


@pytest.mark.parametrize("mode", MODES)
async def test_connection_error_raises_with_cause(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/customers.get").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(errors.APIConnectionError) as info:
        await call(make_transport(), mode, GET_PERSON, {"customer_id": "cus_1"}, Person)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert not isinstance(info.value, errors.APITimeoutError)
    assert "connection refused" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
async def test_timeouts_per_operation_and_per_call(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    mock.post("/v1/billing.attach").mock(return_value=httpx.Response(200, json=ATTACH_OK))
    mock.post("/v1/customers.get").mock(return_value=httpx.Response(200, json={"id": "c"}))
    transport = make_transport()
    await call(transport, mode, CHECK, {"customer_id": "c"}, GateResult)
    await call(transport, mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult)
    await call(transport, mode, GET_PERSON, {"customer_id": "c"}, Person)
    await call(transport, mode, GET_PERSON, {"customer_id": "c"}, Person, timeout_ms=1234)
    reads = [c.request.extensions["timeout"]["read"] for c in mock.calls]
    assert reads == [5.0, 30.0, 15.0, 1.234]

    client_wide = make_transport(timeout=2.5)
    await call(client_wide, mode, ATTACH, {"customer_id": "c", "plan_id": "p"}, AttachResult)
    assert mock.calls.last.request.extensions["timeout"]["read"] == 2.5


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.BadRequestError),
        (429, errors.RateLimitError),
        (500, errors.InternalServerError),
        (503, errors.InternalServerError),
        (418, errors.AutumnDefaultError),
    ],
)
async def test_error_mapping(
    mode: str, status: int, error_class: type[errors.AutumnError], mock: respx.MockRouter
) -> None:
    body = {"message": "Customer cus_1 not found", "code": "customer_not_found", "env": "sandbox"}
    mock.post("/v1/customers.get").mock(return_value=httpx.Response(status, json=body))
    with pytest.raises(error_class) as info:
        await call(make_transport(max_retries=0), mode, GET_PERSON, {"customer_id": "cus_1"}, Person)
    error = info.value
    assert isinstance(error, errors.AutumnDefaultError)
    assert type(error) is error_class
    assert error.status_code == status
    assert error.code == "customer_not_found"
    assert error.body == body
    assert error.response is not None and error.raw_response is error.response
    assert error.headers["content-type"] == "application/json"
    assert str(error) == (
        f"customer_not_found: Customer cus_1 not found (HTTP {status}, POST /v1/customers.get)"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_non_json_error_body_is_kept_as_text(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/customers.get").mock(return_value=httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(errors.InternalServerError) as info:
        await call(make_transport(max_retries=0), mode, GET_PERSON, {"customer_id": "c"}, Person)
    assert info.value.body == "<html>Bad gateway</html>"
    assert info.value.code is None
    assert str(info.value) == "<html>Bad gateway</html> (HTTP 502, POST /v1/customers.get)"


@pytest.mark.parametrize("mode", MODES)
async def test_response_validation_error_chains_pydantic_error(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json={"allowed": "maybe"}))
    with pytest.raises(errors.ResponseValidationError) as info:
        await call(make_transport(), mode, CHECK, {"customer_id": "c"}, GateResult)
    assert isinstance(info.value.__cause__, ValidationError)
    assert info.value.cause is info.value.__cause__
    assert info.value.body == {"allowed": "maybe"}


async def test_invalid_arguments_fail_before_sending(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check")
    with pytest.raises(ValidationError):
        make_transport().request(CHECK, {"customer_id": 5}, {}, GateResult)
    assert route.call_count == 0


# -- body and headers ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_headers_and_body(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(return_value=httpx.Response(200, json=ATTACH_OK))
    transport = make_transport(default_headers={"X-Team": "growth"})
    await call(
        transport,
        mode,
        ATTACH,
        {"customer_id": "cus_1", "plan_id": "pro", "unused": NOT_GIVEN},
        AttachResult,
        http_headers={"X-Trace": "abc"},
    )
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["x-api-version"] == "2.3.0"
    assert request.headers["User-Agent"].startswith("autumn-kit-python/0.1.0 (httpx ")
    assert "python 3." in request.headers["User-Agent"]
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Team"] == "growth"
    assert request.headers["X-Trace"] == "abc"
    assert request.content == b'{"customer_id":"cus_1","plan_id":"pro"}'


async def test_secret_key_callable_is_evaluated_per_request(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    keys = iter(["am_sk_one", "am_sk_two"])
    transport = make_transport(secret_key=lambda: next(keys))
    transport.request(CHECK, {"customer_id": "c"}, {}, GateResult)
    transport.request(CHECK, {"customer_id": "c"}, {}, GateResult)
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer am_sk_one",
        "Bearer am_sk_two",
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_server_url_per_call(mode: str, mock: respx.MockRouter) -> None:
    with respx.mock(base_url="https://eu.autumn.test") as eu:
        route = eu.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
        await call(
            make_transport(),
            mode,
            CHECK,
            {"customer_id": "c"},
            GateResult,
            server_url="https://eu.autumn.test/",
        )
    assert route.call_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_logs_never_contain_the_secret(
    mode: str, mock: respx.MockRouter, sdk_log: pytest.LogCaptureFixture
) -> None:
    mock.post("/v1/balances.check").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=CHECK_OK)]
    )
    await call(make_transport(), mode, CHECK, {"customer_id": "c"}, GateResult)
    text = sdk_log.text
    assert f"POST {TEST_URL}/v1/balances.check -> 503" in text
    assert f"POST {TEST_URL}/v1/balances.check -> 200" in text
    assert "Retrying check" in text
    assert TEST_KEY not in text


async def test_debug_logger_receives_request_lines(mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))

    class Collector:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def debug(self, msg: str, /) -> None:
            self.lines.append(msg)

    collector = Collector()
    make_transport(debug_logger=collector).request(CHECK, {"customer_id": "c"}, {}, GateResult)
    assert len(collector.lines) == 1
    assert collector.lines[0].startswith(f"POST {TEST_URL}/v1/balances.check -> 200 in ")


# -- fail-open and degraded responses --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fault", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.Response(503)], ids=repr
)
async def test_check_fails_open_on_outage(
    mode: str, fault: Any, mock: respx.MockRouter, sdk_log: pytest.LogCaptureFixture
) -> None:
    route = mock.post("/v1/balances.check")
    route.mock(return_value=fault) if isinstance(fault, httpx.Response) else route.mock(side_effect=fault)
    result = await call(make_transport(fail_open=True), mode, CHECK, {"customer_id": "cus_9"}, GateResult)
    assert result.allowed is True
    assert result.customer_id == "cus_9"
    assert is_fail_open(result)
    assert route.call_count == 3
    warnings = [r.getMessage() for r in sdk_log.records if r.levelname == "WARNING"]
    fail_open_warnings = [w for w in warnings if "failing open" in w]
    assert len(fail_open_warnings) == 1
    assert "operation=check" in fail_open_warnings[0]
    unreachable = [w for w in warnings if w.startswith("Cannot reach the Autumn server")]
    assert len(unreachable) == (1 if isinstance(fault, httpx.ConnectError) else 0)


@pytest.mark.parametrize("mode", MODES)
async def test_client_errors_never_fail_open(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(401, json={"message": "bad key"}))
    with pytest.raises(errors.AuthenticationError):
        await call(make_transport(fail_open=True), mode, CHECK, {"customer_id": "c"}, GateResult)


@pytest.mark.parametrize("mode", MODES)
async def test_degraded_202_is_surfaced(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(202, json=CHECK_OK))
    result = await call(make_transport(), mode, CHECK, {"customer_id": "c"}, GateResult)
    assert is_degraded(result)
    assert not is_fail_open(result)


# -- pagination ------------------------------------------------------------------------------


def _pages(route: respx.Route) -> None:
    route.mock(
        side_effect=[
            httpx.Response(200, json={"list": [{"id": "a"}, {"id": "b"}], "next_cursor": "c1"}),
            httpx.Response(200, json={"list": [{"id": "c"}], "next_cursor": "c2"}),
            httpx.Response(200, json={"list": [{"id": "d"}], "next_cursor": None}),
        ]
    )


def test_paginate_sync_walks_three_pages(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/customers.list")
    _pages(route)
    ids = [p.id for p in make_transport().paginate(LIST_PEOPLE, {"limit": 2}, {}, Person)]
    assert ids == ["a", "b", "c", "d"]
    sent = [json.loads(c.request.content) for c in route.calls]
    assert sent == [{"limit": 2}, {"limit": 2, "start_cursor": "c1"}, {"limit": 2, "start_cursor": "c2"}]


async def test_paginate_async_walks_three_pages(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/customers.list")
    _pages(route)
    ids = [p.id async for p in make_transport().paginate_async(LIST_PEOPLE, {"limit": 2}, {}, Person)]
    assert ids == ["a", "b", "c", "d"]
    assert route.call_count == 3


def test_paginate_stops_on_repeated_cursor(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/customers.list").mock(
        return_value=httpx.Response(200, json={"list": [{"id": "x"}], "next_cursor": "same"})
    )
    ids = [p.id for p in make_transport().paginate(LIST_PEOPLE, {}, {}, Person)]
    assert ids == ["x", "x"]
    assert route.call_count == 2


# -- client lifecycle ------------------------------------------------------------------------


def test_injected_clients_are_not_closed(mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    mine = httpx.Client(headers={"X-From-Client": "yes"})
    transport = Transport(make_transport().config, sync_client=mine)
    transport.request(CHECK, {"customer_id": "c"}, {}, GateResult)
    transport.close()
    assert not mine.is_closed
    assert mock.calls.last.request.headers["X-From-Client"] == "yes"
    mine.close()


async def test_own_clients_are_created_lazily_and_closed(mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    transport = make_transport()
    assert transport._sync_client is None and transport._async_client is None
    await transport.request_async(CHECK, {"customer_id": "c"}, {}, GateResult)
    assert transport._sync_client is None
    created = transport.async_client
    await transport.aclose()
    assert created.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        transport.request(CHECK, {"customer_id": "c"}, {}, GateResult)
