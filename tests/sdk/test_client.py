"""The public clients: construction from arguments and environment, fail-open per operation,
raw responses, pagination, ``*_async`` twins, lifecycle and light imports.

Faults are injected with respx; successful calls go to the local stub API over real HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

import autumn_sdk
from autumn_sdk import (
    AsyncAutumn,
    Autumn,
    AutumnDefaultError,
    BackoffStrategy,
    MissingSecretKeyError,
    RawResponse,
    RetryConfig,
    errors,
    is_fail_open,
    models,
)
from autumn_sdk._generated.operations import CUSTOMERS_GET

from .helpers import TEST_KEY, TEST_URL
from .stub_server import canned_response, serve

CHECK_OK = {"allowed": True, "customer_id": "cus_1", "balance": None, "flag": None}


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=TEST_URL, assert_all_called=False) as router:
        yield router


def sync_client(**kwargs: Any) -> Autumn:
    return Autumn(TEST_KEY, server_url=TEST_URL, **kwargs)


# -- construction ----------------------------------------------------------------------------


def test_secret_key_positional_keyword_and_env(
    monkeypatch: pytest.MonkeyPatch, mock: respx.MockRouter
) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    Autumn("am_sk_positional", server_url=TEST_URL).check(customer_id="c", feature_id="f")
    Autumn(secret_key="am_sk_keyword", server_url=TEST_URL).check(customer_id="c", feature_id="f")
    monkeypatch.setenv("AUTUMN_SECRET_KEY", "am_sk_from_env")
    Autumn(server_url=TEST_URL).check(customer_id="c", feature_id="f")
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer am_sk_positional",
        "Bearer am_sk_keyword",
        "Bearer am_sk_from_env",
    ]


@pytest.mark.parametrize("client_class", [Autumn, AsyncAutumn])
def test_missing_secret_key_says_how_to_set_it(client_class: type[Autumn] | type[AsyncAutumn]) -> None:
    with pytest.raises(MissingSecretKeyError, match="AUTUMN_SECRET_KEY") as info:
        client_class()
    assert isinstance(info.value, errors.AutumnError)


def test_server_url_from_argument_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Autumn(TEST_KEY).base_url == "https://api.useautumn.com"
    assert Autumn(TEST_KEY, server_url="http://localhost:8080/").base_url == "http://localhost:8080"
    monkeypatch.setenv("AUTUMN_URL", "http://127.0.0.1:9000/")
    assert Autumn(TEST_KEY).base_url == "http://127.0.0.1:9000"
    assert AsyncAutumn(TEST_KEY, server_url="https://x.test").base_url == "https://x.test"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AUTUMN_FAIL_OPEN", "false", False),
        ("AUTUMN_FAIL_OPEN", "0", False),
        ("AUTUMN_FAIL_OPEN", "No", False),
        ("AUTUMN_FAIL_OPEN", "off", False),
        ("AUTUMN_FAIL_OPEN", "true", True),
        ("FAIL_OPEN", "false", False),
        ("FAIL_OPEN", "1", True),
        ("AUTUMN_FAIL_OPEN", "", True),
    ],
)
def test_fail_open_env_is_parsed_properly(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: bool
) -> None:
    monkeypatch.setenv(variable, value)
    assert Autumn(TEST_KEY).fail_open is expected
    assert AsyncAutumn(TEST_KEY).fail_open is expected
    assert autumn_sdk.fail_open_enabled() is expected  # what autumn_handlers reads


def test_fail_open_argument_beats_env_and_bad_values_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")
    assert Autumn(TEST_KEY, fail_open=True).fail_open is True
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "sometimes")
    with pytest.raises(ValueError, match="AUTUMN_FAIL_OPEN"):
        Autumn(TEST_KEY)


def test_fail_open_defaults_are_public_for_the_handlers() -> None:
    customer = autumn_sdk.fail_open_default("customers.get_or_create")
    assert (customer["id"], customer["subscriptions"], customer["balances"]) == (None, [], {})
    assert autumn_sdk.fail_open_default("entities.get")["feature_id"] is None
    assert autumn_sdk.fail_open_default("check", {"customer_id": "c", "entity_id": "e"})["entity_id"] == "e"
    with pytest.raises(ValueError, match=r"billing\.attach does not fail open"):
        autumn_sdk.fail_open_default("billing.attach")


def test_no_http_client_is_created_before_the_first_call() -> None:
    autumn = Autumn(TEST_KEY)
    assert autumn._transport._sync_client is None
    assert autumn._transport._async_client is None


def test_official_compat_imports() -> None:
    from autumn_sdk.utils import BackoffStrategy as UtilsBackoff
    from autumn_sdk.utils import RetryConfig as UtilsRetry

    assert UtilsRetry is RetryConfig and UtilsBackoff is BackoffStrategy
    assert issubclass(errors.NotFoundError, AutumnDefaultError)
    assert autumn_sdk.__version__ == "0.1.0"


def test_cold_import_is_light() -> None:
    probe = (
        "import sys, autumn_sdk\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'autumn_sdk._generated.models') if m in sys.modules]\n"
        "print(heavy)\n"
        "autumn_sdk.Autumn\n"
        "print('autumn_sdk._generated.resources' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


# -- fail-open per operation -----------------------------------------------------------------

FAIL_OPEN_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "check": ("/v1/balances.check", {"customer_id": "cus_1", "feature_id": "messages"}),
    "track": ("/v1/balances.track", {"customer_id": "cus_1", "feature_id": "messages", "value": 2}),
    "customers.get_or_create": ("/v1/customers.get_or_create", {"customer_id": "cus_1"}),
    "plans.list": ("/v1/plans.list", {"request": {}}),
    "entities.get": ("/v1/entities.get", {"entity_id": "seat_1"}),
}
STRICT_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "customers.get": ("/v1/customers.get", {"customer_id": "cus_1"}),
    "billing.attach": ("/v1/billing.attach", {"customer_id": "cus_1", "plan_id": "pro"}),
    "entities.list": ("/v1/entities.list", {}),
    "features.list": ("/v1/features.list", {}),
    "balances.finalize": ("/v1/balances.finalize", {"lock_id": "lock_1", "action": "confirm"}),
}


def _method(root: Any, qualified: str, suffix: str = "") -> Callable[..., Any]:
    target = root
    *groups, name = qualified.split(".")
    for group in groups:
        target = getattr(target, group)
    method: Callable[..., Any] = getattr(target, name + suffix)
    return method


async def invoke(mode: str, qualified: str, kwargs: dict[str, Any], **client_kwargs: Any) -> Any:
    """Call ``qualified`` on Autumn (sync), Autumn's ``*_async`` twin, or AsyncAutumn."""
    if mode == "sync":
        return _method(sync_client(**client_kwargs), qualified)(**kwargs)
    if mode == "twin":
        return await _method(sync_client(**client_kwargs), qualified, "_async")(**kwargs)
    client = AsyncAutumn(TEST_KEY, server_url=TEST_URL, **client_kwargs)
    coroutine: Awaitable[Any] = _method(client, qualified)(**kwargs)
    return await coroutine


MODES = ["sync", "twin", "async"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("qualified", list(FAIL_OPEN_CALLS))
async def test_fail_open_operations_return_marked_defaults(
    mode: str, qualified: str, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    path, kwargs = FAIL_OPEN_CALLS[qualified]
    mock.post(path).mock(side_effect=httpx.ConnectError("connection refused"))
    result = await invoke(mode, qualified, kwargs)
    assert is_fail_open(result)
    assert f"operation={qualified}" in caplog.text
    assert "connection refused" in caplog.text
    if qualified == "check":
        assert isinstance(result, models.CheckResponse) and result.allowed is True
    elif qualified == "track":
        assert isinstance(result, models.TrackResponse) and result.value == 0 and result.balance is None
    elif qualified == "customers.get_or_create":
        assert isinstance(result, models.Customer) and result.id is None
    elif qualified == "plans.list":
        assert isinstance(result, models.ListPlansResponse) and result.list == []
    else:
        assert isinstance(result, models.Entity) and result.id is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("qualified", list(STRICT_CALLS))
async def test_other_operations_never_fail_open(mode: str, qualified: str, mock: respx.MockRouter) -> None:
    path, kwargs = STRICT_CALLS[qualified]
    mock.post(path).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(errors.APIConnectionError):
        await invoke(mode, qualified, kwargs)


@pytest.mark.parametrize("mode", MODES)
async def test_server_errors_fail_open_but_client_errors_raise(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.track").mock(
        return_value=httpx.Response(500, json={"message": "db down"})
    )
    kwargs = FAIL_OPEN_CALLS["track"][1]
    assert is_fail_open(await invoke(mode, "track", kwargs))
    assert route.call_count == 3  # retried first
    route.mock(return_value=httpx.Response(404, json={"message": "no such customer", "code": "not_found"}))
    with pytest.raises(errors.NotFoundError):
        await invoke(mode, "track", kwargs)


@pytest.mark.parametrize("mode", MODES)
async def test_fail_open_can_be_switched_off(
    mode: str, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock.post("/v1/balances.check").mock(side_effect=httpx.ConnectTimeout("timed out"))
    kwargs = FAIL_OPEN_CALLS["check"][1]
    with pytest.raises(errors.APITimeoutError):
        await invoke(mode, "check", kwargs, fail_open=False)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")
    with pytest.raises(errors.APITimeoutError):
        await invoke(mode, "check", kwargs)


# -- raw responses ---------------------------------------------------------------------------


def test_raw_response_sync(stub_url: str) -> None:
    with Autumn(TEST_KEY, server_url=stub_url) as autumn:
        raw = autumn.with_raw_response.customers.get(customer_id="cus_123")
        assert isinstance(raw, RawResponse)
        assert raw.status_code == 200
        assert raw.headers["content-type"] == "application/json"
        assert isinstance(raw.http_response, httpx.Response)
        customer = raw.parse()
        assert isinstance(customer, models.Customer)
        assert autumn.with_raw_response is autumn.with_raw_response


async def test_raw_response_async_client_and_twin(stub_url: str) -> None:
    async with AsyncAutumn(TEST_KEY, server_url=stub_url) as autumn:
        raw = await autumn.with_raw_response.check(customer_id="cus_123", feature_id="messages")
        assert raw.status_code == 200
        assert isinstance(raw.parse(), models.CheckResponse)
    async with Autumn(TEST_KEY, server_url=stub_url) as sync_autumn:
        twin = await sync_autumn.with_raw_response.plans.list_async(request={})
        assert isinstance(twin.parse(), models.ListPlansResponse)


def test_raw_calls_never_fail_open(mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(503, json={"message": "down"}))
    with pytest.raises(errors.InternalServerError):
        sync_client(max_retries=0).with_raw_response.check(customer_id="c", feature_id="f")


# -- pagination ------------------------------------------------------------------------------


def _three_pages(route: respx.Route, customer: dict[str, Any]) -> None:
    def page(ids: list[str], cursor: str | None) -> httpx.Response:
        return httpx.Response(200, json={"list": [{**customer, "id": i} for i in ids], "next_cursor": cursor})

    route.mock(side_effect=[page(["a", "b"], "p2"), page(["c"], "p3"), page(["d"], None)])


@pytest.fixture
def customer_json() -> dict[str, Any]:
    """A valid customer body: the stub's answer to customers.get (the spec example, repaired)."""
    _, body = canned_response(CUSTOMERS_GET)
    assert isinstance(body, dict)
    return body


def test_list_all_sync(mock: respx.MockRouter, customer_json: dict[str, Any]) -> None:
    route = mock.post("/v1/customers.list")
    _three_pages(route, customer_json)
    customers = list(sync_client().customers.list_all(limit=2))
    assert [c.id for c in customers] == ["a", "b", "c", "d"]
    assert all(isinstance(c, models.Customer) for c in customers)
    cursors = [json.loads(c.request.content).get("start_cursor") for c in route.calls]
    assert cursors == [None, "p2", "p3"]


async def test_list_all_async_client(mock: respx.MockRouter, customer_json: dict[str, Any]) -> None:
    _three_pages(mock.post("/v1/customers.list"), customer_json)
    autumn = AsyncAutumn(TEST_KEY, server_url=TEST_URL)
    assert [c.id async for c in autumn.customers.list_all(limit=2)] == ["a", "b", "c", "d"]


async def test_list_all_async_twin(mock: respx.MockRouter, customer_json: dict[str, Any]) -> None:
    _three_pages(mock.post("/v1/customers.list"), customer_json)
    assert [c.id async for c in sync_client().customers.list_all_async(limit=2)] == ["a", "b", "c", "d"]


# -- lifecycle and headers -------------------------------------------------------------------


def test_injected_sync_client_is_used_and_not_closed(stub_url: str) -> None:
    seen: list[httpx.Request] = []
    mine = httpx.Client(headers={"X-Custom-Header": "someValue"}, event_hooks={"request": [seen.append]})
    with Autumn(TEST_KEY, server_url=stub_url, client=mine) as autumn:
        autumn.check(customer_id="cus_123", feature_id="messages")
    assert not mine.is_closed
    assert seen[0].headers["X-Custom-Header"] == "someValue"
    with pytest.raises(RuntimeError, match="closed"):
        autumn.check(customer_id="cus_123", feature_id="messages")
    mine.close()


async def test_injected_async_client_is_not_closed(stub_url: str) -> None:
    mine = httpx.AsyncClient()
    async with AsyncAutumn(TEST_KEY, server_url=stub_url, http_client=mine) as autumn:
        await autumn.check(customer_id="cus_123", feature_id="messages")
    assert not mine.is_closed
    await mine.aclose()
    with pytest.raises(TypeError, match="AsyncClient"):
        AsyncAutumn(TEST_KEY, http_client=httpx.Client())  # type: ignore[arg-type]


async def test_own_clients_are_closed(stub_url: str) -> None:
    autumn = Autumn(TEST_KEY, server_url=stub_url)
    autumn.check(customer_id="cus_123", feature_id="messages")
    await autumn.check_async(customer_id="cus_123", feature_id="messages")
    sync_http, async_http = autumn._transport.sync_client, autumn._transport.async_client
    await autumn.aclose()
    assert sync_http.is_closed and async_http.is_closed


@pytest.mark.parametrize("mode", MODES)
async def test_headers_on_a_mutating_call(mode: str, mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(
        return_value=httpx.Response(200, json={"customer_id": "c", "payment_url": None})
    )
    await invoke(
        mode,
        "billing.attach",
        {"customer_id": "cus_1", "plan_id": "pro", "http_headers": {"X-Request-Source": "test"}},
        x_api_version="2.3.0",
    )
    headers = route.calls.last.request.headers
    assert headers["authorization"] == f"Bearer {TEST_KEY}"
    assert headers["x-api-version"] == "2.3.0"
    assert headers["user-agent"].startswith("autumn-kit-python/")
    assert len(headers["idempotency-key"]) == 36
    assert headers["x-request-source"] == "test"
    assert route.calls.last.request.extensions["timeout"]["read"] == 30.0


def test_nested_models_and_dicts_are_both_accepted(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/balances.check").mock(return_value=httpx.Response(200, json=CHECK_OK))
    autumn = sync_client()
    autumn.check(customer_id="c", feature_id="f", lock={"enabled": True, "lock_id": "l1"})
    autumn.check(customer_id="c", feature_id="f", lock=models.CheckLock(enabled=True, lock_id="l1"))
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert bodies[0] == bodies[1]
    assert bodies[0]["lock"]["lock_id"] == "l1"


# -- generic dispatch and GET operations -----------------------------------------------------


async def test_call_performs_any_operation_by_descriptor(stub_url: str) -> None:
    from autumn_sdk._generated import operations as ops

    with Autumn(TEST_KEY, server_url=stub_url) as autumn:
        customer = autumn.call(ops.CUSTOMERS_GET, {"customer_id": "cus_123"})
        features = await autumn.call_async(ops.FEATURES_LIST)
    assert isinstance(customer, models.Customer)
    assert isinstance(features, models.ListFeaturesResponse)
    async with AsyncAutumn(TEST_KEY, server_url=stub_url) as async_autumn:
        check = await async_autumn.call(ops.CHECK, {"customer_id": "cus_123", "feature_id": "messages"})
    assert isinstance(check, models.CheckResponse)


@pytest.mark.parametrize("mode", MODES)
async def test_get_operations_send_query_parameters(mode: str, mock: respx.MockRouter) -> None:
    route = mock.get("/v1/platform/organizations").mock(
        return_value=httpx.Response(200, json={"list": [], "total": 0})
    )
    await invoke(mode, "platform.list_organizations", {"limit": 5, "offset": 10})
    request = route.calls.last.request
    assert dict(request.url.params) == {"limit": "5", "offset": "10"}
    assert request.content == b""
    assert "content-type" not in request.headers
    assert "idempotency-key" not in request.headers


def test_timeout_message_names_the_limit(mock: respx.MockRouter) -> None:
    mock.post("/v1/customers.get").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(errors.APITimeoutError) as info:
        sync_client(max_retries=0).customers.get(customer_id="cus_1", timeout_ms=2500)
    assert str(info.value) == "Autumn did not answer within 2.5 s (ReadTimeout, POST /v1/customers.get)"


@pytest.mark.parametrize("mode", MODES)
async def test_degraded_answers_are_marked(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/balances.check").mock(return_value=httpx.Response(202, json=CHECK_OK))
    result = await invoke(mode, "check", FAIL_OPEN_CALLS["check"][1])
    assert isinstance(result, models.CheckResponse)
    assert autumn_sdk.is_degraded(result)
    assert not is_fail_open(result)


# -- strict keyword arguments ----------------------------------------------------------------

MISSPELT: list[tuple[str, dict[str, Any], str, str | None]] = [
    (
        "check",
        {"customer_id": "c", "feature_id": "f", "requried_balance": 2},
        "requried_balance",
        "required_balance",
    ),
    ("customers.get_or_create", {"customer_id": "c", "emial": "a@b.c"}, "emial", "email"),
    (
        "billing.attach",
        {"customer_id": "c", "plan_id": "p", "idempotencykey": "k"},
        "idempotencykey",
        "idempotency_key",
    ),
    (
        "features.create",
        {"feature_id": "f", "name": "F", "type_": "metered", "consumabel": True},
        "consumabel",
        "consumable",
    ),
    ("plans.list", {"requests": {}}, "requests", "request"),
    ("track", {"customer_id": "c", "feature_id": "f", "timeout": 5}, "timeout", "timeout_ms"),
    (
        "entities.list",
        {"owner": "A"},
        "owner",
        None,
    ),  # no such filter: every valid name is listed
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("qualified", "kwargs", "wrong", "suggestion"), MISSPELT, ids=[m[0] for m in MISSPELT]
)
async def test_misspelt_keywords_raise_type_error_with_the_closest_name(
    mode: str,
    qualified: str,
    kwargs: dict[str, Any],
    wrong: str,
    suggestion: str | None,
    mock: respx.MockRouter,
) -> None:
    """Nothing is sent: the call fails as a Python call with a wrong keyword does, naming the fix."""
    with pytest.raises(TypeError) as info:
        await invoke(mode, qualified, kwargs)
    message = str(info.value)
    method = qualified.rsplit(".", 1)[-1] + ("_async" if mode == "twin" else "")
    assert f".{method}() got an unexpected keyword argument {wrong!r}" in message
    if suggestion is not None:
        assert message.endswith(f"; did you mean {suggestion!r}?")
    else:
        assert "; valid names: start_cursor, limit, plans," in message and "total_timeout_ms" in message
    assert mock.calls.call_count == 0


async def test_unknown_keywords_are_refused_everywhere_else_too(mock: respx.MockRouter) -> None:
    from autumn_sdk._generated import operations as ops

    autumn = sync_client()
    with pytest.raises(
        TypeError,
        match=r"Entities\.list_all\(\) got an unexpected keyword argument 'limt'; did you mean 'limit'\?",
    ):
        autumn.entities.list_all(limt=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'limt'"):
        autumn.entities.list_all_async(limt=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"AsyncEntities\.list_all\(\)"):
        AsyncAutumn(TEST_KEY, server_url=TEST_URL).entities.list_all(limt=5)  # type: ignore[call-arg]
    with pytest.raises(
        TypeError,
        match=r"Autumn\.call\(\) got an unexpected keyword argument 'retry'; did you mean 'retries'\?",
    ):
        autumn.call(ops.CUSTOMERS_GET, {"customer_id": "c"}, retry=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"AsyncAutumn\.call\(\)"):
        await AsyncAutumn(TEST_KEY, server_url=TEST_URL).call(ops.CUSTOMERS_GET, {}, retry=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'owner_id'"):
        autumn.with_raw_response.entities.list(owner_id="A")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="valid names: entity_id, customer_id, http_headers, idempotency_key"):
        autumn.entities.get(customer_id="c", entity_id="e", zzz=1)  # type: ignore[call-arg]
    assert mock.calls.call_count == 0


# -- request ids, replays and the unreachable server -----------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_errors_carry_the_request_id(mode: str, mock: respx.MockRouter) -> None:
    mock.post("/v1/customers.get").mock(
        return_value=httpx.Response(
            404,
            json={"message": "Customer nobody not found", "code": "customer_not_found"},
            headers={"x-request-id": "req_7f3a"},
        )
    )
    with pytest.raises(errors.NotFoundError) as info:
        await invoke(mode, "customers.get", {"customer_id": "nobody"})
    assert info.value.request_id == "req_7f3a"
    assert str(info.value) == (
        "customer_not_found: Customer nobody not found (HTTP 404, POST /v1/customers.get) "
        "[request_id req_7f3a]"
    )
    mock.post("/v1/customers.get").mock(
        return_value=httpx.Response(400, json={"message": "bad", "code": "invalid_inputs"})
    )
    with pytest.raises(errors.BadRequestError) as without:
        await invoke(mode, "customers.get", {"customer_id": "nobody"})
    assert without.value.request_id is None
    assert "request_id" not in str(without.value)


def test_raw_responses_say_when_they_are_replayed(mock: respx.MockRouter) -> None:
    route = mock.post("/v1/billing.attach").mock(
        return_value=httpx.Response(
            200,
            json={"customer_id": "c", "payment_url": None},
            headers={"Idempotent-Replayed": "true", "x-request-id": "req_1"},
        )
    )
    raw = sync_client().with_raw_response.billing.attach(
        customer_id="c", plan_id="p", idempotency_key="order-1"
    )
    assert raw.replayed is True and raw.request_id == "req_1"
    route.mock(return_value=httpx.Response(200, json={"customer_id": "c", "payment_url": None}))
    fresh = sync_client().with_raw_response.billing.attach(customer_id="c", plan_id="p")
    assert fresh.replayed is False and fresh.request_id is None


def _unreachable_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.getMessage().startswith("Cannot reach the Autumn server")
    ]


@pytest.mark.parametrize("client_class", [Autumn, AsyncAutumn])
async def test_an_unreachable_server_is_announced_once_per_client(
    client_class: type[Autumn] | type[AsyncAutumn], caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused on a real loopback port: one WARNING naming the URL and the way out."""
    from reference_server.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for _ in range(2):
        client = client_class(TEST_KEY, server_url=url, max_retries=1)
        for _ in range(3):
            call = client.check(customer_id="c", feature_id="f")
            result = await call if isinstance(client, AsyncAutumn) else call
            assert is_fail_open(result)
        with pytest.raises(errors.APIConnectionError):
            call = client.customers.get(customer_id="c")
            await call if isinstance(client, AsyncAutumn) else call
    warnings = _unreachable_warnings(caplog)
    assert len(warnings) == 2  # one per client, however many calls
    assert url in warnings[0]
    assert "server_url=" in warnings[0] and "AUTUMN_URL" in warnings[0]
    assert "ConnectError" in warnings[0]
    assert "fail open (check answers allowed=True)" in warnings[0]


def test_the_unreachable_warning_says_calls_raise_when_fail_open_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from reference_server.testing import free_port

    url = f"http://127.0.0.1:{free_port()}"
    client = Autumn(TEST_KEY, server_url=url, max_retries=0, fail_open=False)
    with pytest.raises(errors.APIConnectionError):
        client.check(customer_id="c", feature_id="f")
    (warning,) = _unreachable_warnings(caplog)
    assert "raises APIConnectionError (fail-open is off)" in warning
    assert "allowed=True" not in warning


def test_unreachable_default_server_says_no_url_was_given(caplog: pytest.LogCaptureFixture) -> None:
    with respx.mock(base_url="https://api.useautumn.com") as cloud:
        cloud.post("/v1/balances.check").mock(side_effect=httpx.ConnectError("Name or service not known"))
        assert is_fail_open(Autumn(TEST_KEY).check(customer_id="c", feature_id="f"))
    (warning,) = _unreachable_warnings(caplog)
    assert "https://api.useautumn.com" in warning
    assert "no server_url= given and AUTUMN_URL not set" in warning


def test_timeouts_are_not_announced_as_unreachable(
    mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    mock.post("/v1/balances.check").mock(side_effect=httpx.ConnectTimeout("slow"))
    assert is_fail_open(sync_client().check(customer_id="c", feature_id="f"))
    assert _unreachable_warnings(caplog) == []
