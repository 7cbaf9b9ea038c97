"""The official SDK's arguments beyond Autumn's spec, through our SDK against the real server.

The official ``autumn-sdk`` 1.2.0 methods of 15 operations of ``spec/autumn-2026-08-22.yml`` take
keyword arguments that spec lacks; ``codegen/official_operations.py`` records them in
``spec/autumn-sdk-1.2.0-operations.yml`` (``x-official-arguments``) and ``codegen/overlay.py`` adds
them to our methods. Each is sent here through our SDK, sync and async, to the reference server over
real HTTP on SQLite and PostgreSQL: the ones it serves (``events.list`` ``range``, ``events.aggregate``
``measure`` and ``timezone``, ``invoices.list`` ``invoice_id`` and ``stripe_id``, the ``free_trial``
shorthand of attach, its preview and ``setup_payment``, ``billing.multi_update``'s
``refund_last_payment``, ``billing.update``'s and its preview's ``custom_line_items`` and ``free_trial``)
show in the answer that they were applied;
every other one is refused with 400 ``unsupported_field`` naming it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from autumn_sdk import AsyncAutumn, Autumn, errors, models
from reference_server.testing import RunningServer, fresh_database_url, postgres_available, run_server

DB_KINDS = ["sqlite", "postgres"]
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
NOW_MS = int(time.time() * 1000)

SEED: list[tuple[str, dict[str, Any]]] = [
    ("features.create", {"feature_id": "calls", "name": "Calls", "type": "metered", "consumable": True}),
    (
        "plans.create",
        {
            "plan_id": "pro_plan",
            "name": "Pro",
            "price": {"amount": 10, "interval": "month"},
            "items": [{"feature_id": "calls", "included": 1000, "reset": {"interval": "month"}}],
        },
    ),
    ("customers.get_or_create", {"customer_id": "cus_events"}),
    # Three events now (values 2, 3, 5) and one three days ago (value 7).
    *(
        ("balances.track", {"customer_id": "cus_events", "feature_id": "calls", "value": value})
        for value in (2, 3, 5)
    ),
    (
        "balances.track",
        {"customer_id": "cus_events", "feature_id": "calls", "value": 7, "timestamp": NOW_MS - 3 * DAY_MS},
    ),
    *(("customers.get_or_create", {"customer_id": f"cus_inv_{n}"}) for n in (1, 2)),
    *(
        (
            "billing.attach",
            {"customer_id": f"cus_inv_{n}", "plan_id": "pro_plan", "invoice_mode": {"enabled": True}},
        )
        for n in (1, 2)
    ),
]
"""What the calls act on, created over plain HTTP."""


@pytest.fixture(scope="module", params=DB_KINDS)
def database_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres" and not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must be available on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not available")
    return kind


@pytest.fixture(scope="module")
def server(database_kind: str) -> Iterator[RunningServer]:
    with fresh_database_url(database_kind) as url, run_server(url) as running:
        headers = {"Authorization": f"Bearer {running.secret_key}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=30) as http:
            for path, body in SEED:
                response = http.post(f"/v1/{path}", json=body)
                assert response.status_code < 400, (path, response.text)
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[Autumn]:
    with Autumn(secret_key=server.secret_key, server_url=server.url) as autumn:
        yield autumn


def _async_client(server: RunningServer) -> AsyncAutumn:
    return AsyncAutumn(secret_key=server.secret_key, server_url=server.url)


def test_events_list_range(client: Autumn, server: RunningServer) -> None:
    everything = client.events.list(customer_id="cus_events")
    assert sorted(e.value for e in everything.list) == [2, 3, 5, 7]
    last_day = client.events.list(customer_id="cus_events", range="24h")
    assert sorted(e.value for e in last_day.list) == [2, 3, 5]
    week = client.events.list(customer_id="cus_events", range="7d")
    assert sorted(e.value for e in week.list) == [2, 3, 5, 7]

    async def run() -> models.EventsListResponse:
        async with _async_client(server) as autumn:
            return await autumn.events.list(customer_id="cus_events", range="24h")

    assert asyncio.run(run()).list == last_day.list
    with pytest.raises(errors.BadRequestError) as both:
        client.events.list(customer_id="cus_events", range="7d", custom_range={"start": 0, "end": NOW_MS})
    assert both.value.code == "invalid_inputs"
    assert "range and custom_range" in str(both.value)


def test_events_aggregate_measure(client: Autumn, server: RunningServer) -> None:
    summed = client.events.aggregate(customer_id="cus_events", feature_id="calls", range="24h")
    counted = client.events.aggregate(
        customer_id="cus_events", feature_id="calls", range="24h", measure="count"
    )
    assert sum(p.values["calls"] for p in summed.list) == 10
    assert sum(p.values["calls"] for p in counted.list) == 3
    assert counted.total == summed.total  # ``measure`` changes the bins only

    async def run() -> models.EventsAggregateResponse:
        async with _async_client(server) as autumn:
            return await autumn.events.aggregate(
                customer_id="cus_events", feature_id="calls", range="24h", measure="count"
            )

    assert asyncio.run(run()).list == counted.list


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "UTC"])
def test_events_aggregate_timezone(client: Autumn, server: RunningServer, zone: str) -> None:
    """Day bins start at local midnight in the zone, and each event lands in its local day."""
    for bin_size in ("day", "week", "month"):
        answer = client.events.aggregate(
            customer_id="cus_events", feature_id="calls", range="7d", bin_size=bin_size, timezone=zone
        )
        starts = [datetime.fromtimestamp(int(p.period) / 1000, tz=ZoneInfo(zone)) for p in answer.list]
        assert all((s.hour, s.minute) == (0, 0) for s in starts), (bin_size, starts)
        assert sum(p.values["calls"] for p in answer.list) == 17
        if bin_size == "day":
            old_day = datetime.fromtimestamp((NOW_MS - 3 * DAY_MS) / 1000, tz=ZoneInfo(zone)).date()
            assert [
                p.values["calls"] for p, s in zip(answer.list, starts, strict=True) if s.date() == old_day
            ] == [7]
    hourly = client.events.aggregate(
        customer_id="cus_events", feature_id="calls", range="24h", bin_size="hour", timezone=zone
    )
    assert all(int(p.period) % HOUR_MS == 0 for p in hourly.list)  # hour bins stay UTC's


def test_events_aggregate_timezone_async_and_unknown(client: Autumn, server: RunningServer) -> None:
    async def run() -> models.EventsAggregateResponse:
        async with _async_client(server) as autumn:
            return await autumn.events.aggregate(
                customer_id="cus_events", feature_id="calls", range="7d", timezone="Asia/Kolkata"
            )

    shifted = asyncio.run(run())
    # Kolkata is UTC+5:30: its midnights are 18:30 UTC
    assert all(int(p.period) % DAY_MS == 18 * HOUR_MS + HOUR_MS // 2 for p in shifted.list)
    for name in ("Mars/Olympus", "America", "../etc/passwd", "x" * 5000, ""):
        with pytest.raises(errors.BadRequestError) as unknown:
            client.events.aggregate(customer_id="cus_events", feature_id="calls", timezone=name)
        assert unknown.value.code == "invalid_inputs"
        assert "timezone" in str(unknown.value)


def test_invoices_list_by_id(client: Autumn, server: RunningServer) -> None:
    every = (
        client.invoices.list(customer_id="cus_inv_1").list
        + client.invoices.list(customer_id="cus_inv_2").list
    )
    assert len(every) == 2
    first, second = every
    by_id = client.invoices.list(invoice_id=first.id)
    assert [i.id for i in by_id.list] == [first.id]
    by_stripe_id = client.invoices.list(stripe_id=second.stripe_id)
    assert [i.id for i in by_stripe_id.list] == [second.id]
    assert client.invoices.list(invoice_id=first.id, customer_id="cus_inv_2").list == []
    assert client.invoices.list(stripe_id="in_none").list == []

    async def run() -> models.ListInvoicesResponse:
        async with _async_client(server) as autumn:
            return await autumn.invoices.list(invoice_id=second.id)

    assert [i.id for i in asyncio.run(run()).list] == [second.id]


def test_attach_free_trial_shorthand(client: Autumn, server: RunningServer) -> None:
    """``free_trial`` gives the plan a trial as ``customize.free_trial`` does, which wins over it."""
    client.customers.get_or_create(customer_id="cus_trial")
    plain = client.billing.preview_attach(customer_id="cus_trial", plan_id="pro_plan")
    assert plain.total == 10
    trial = client.billing.preview_attach(customer_id="cus_trial", plan_id="pro_plan", free_trial=_TRIAL)
    assert trial.total == 0
    overridden = client.billing.preview_attach(
        customer_id="cus_trial", plan_id="pro_plan", free_trial=_TRIAL, customize={"free_trial": None}
    )
    assert overridden.total == 10

    async def run() -> models.PreviewAttachResponse:
        async with _async_client(server) as autumn:
            return await autumn.billing.preview_attach(
                customer_id="cus_trial", plan_id="pro_plan", free_trial=_TRIAL
            )

    assert asyncio.run(run()).total == 0
    attached = client.billing.attach(
        customer_id="cus_trial", plan_id="pro_plan", free_trial=_TRIAL, invoice_mode={"enabled": True}
    )
    assert attached.invoice is None  # a no-card trial starts at once: nothing to bill now
    customer = client.customers.get(customer_id="cus_trial")
    [subscription] = [s for s in customer.subscriptions if s.plan_id == "pro_plan"]
    assert subscription.trial_ends_at is not None
    assert abs(subscription.trial_ends_at - subscription.started_at - 7 * DAY_MS) < DAY_MS
    client.customers.get_or_create(customer_id="cus_trial_setup")
    setup = client.billing.setup_payment(customer_id="cus_trial_setup", plan_id="pro_plan", free_trial=_TRIAL)
    card = {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
    assert httpx.post(setup.url, data=card).status_code == 303  # the card set up: the plan attaches
    after_setup = client.customers.get(customer_id="cus_trial_setup")
    [trialing] = [s for s in after_setup.subscriptions if s.plan_id == "pro_plan"]
    assert trialing.trial_ends_at is not None
    assert abs(trialing.trial_ends_at - trialing.started_at - 7 * DAY_MS) < DAY_MS


def test_multi_update_refund_last_payment(client: Autumn, server: RunningServer) -> None:
    """An immediate cancel refunds the plan's last payment instead of crediting its unused time."""
    card = {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
    for customer_id in ("cus_refund", "cus_credit"):
        client.customers.get_or_create(customer_id=customer_id)
        setup = client.billing.setup_payment(customer_id=customer_id)
        assert httpx.post(setup.url, data=card).status_code == 303
        assert client.billing.attach(customer_id=customer_id, plan_id="pro_plan").payment_url is None
    cancel = [{"plan_id": "pro_plan", "cancel_action": "cancel_immediately"}]
    with pytest.raises(errors.BadRequestError) as not_cancelling:
        client.billing.multi_update(
            customer_id="cus_refund",
            updates=[{"plan_id": "pro_plan", "cancel_action": "uncancel"}],
            refund_last_payment="full",
        )
    assert not_cancelling.value.code == "invalid_inputs"
    assert "cancel_immediately" in str(not_cancelling.value)

    async def preview(customer_id: str, **refund: Any) -> models.PreviewMultiUpdateResponse:
        async with _async_client(server) as autumn:
            return await autumn.billing.preview_multi_update(
                customer_id=customer_id, updates=cancel, **refund
            )

    credited = asyncio.run(preview("cus_credit"))
    refunded = asyncio.run(preview("cus_refund", refund_last_payment="full"))
    assert credited.total < 0  # the unused time, credited
    assert refunded.total == 0  # no credit: the payment itself goes back
    client.billing.multi_update(customer_id="cus_refund", updates=cancel, refund_last_payment="full")
    client.billing.multi_update(customer_id="cus_credit", updates=cancel)
    [paid_back] = client.invoices.list(customer_id="cus_refund").list
    assert (paid_back.total, paid_back.refunded_amount) == (10, 10)
    credit_invoices = client.invoices.list(customer_id="cus_credit").list
    assert [i.refunded_amount for i in credit_invoices] == [0, 0]  # the payment kept, a credit invoiced
    assert sorted(i.total for i in credit_invoices) == [credited.total, 10]


def test_update_custom_line_items(client: Autumn, server: RunningServer) -> None:
    """The given lines are what the update bills, in place of its computed invoice (or alone)."""
    client.customers.get_or_create(customer_id="cus_lines")
    setup = client.billing.setup_payment(customer_id="cus_lines")
    card = {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
    assert httpx.post(setup.url, data=card).status_code == 303
    assert client.billing.attach(customer_id="cus_lines", plan_id="pro_plan").payment_url is None
    lines = [_LINE, {"amount": -1.25, "description": "Credit"}]

    async def preview() -> models.PreviewUpdateResponse:
        async with _async_client(server) as autumn:
            return await autumn.billing.preview_update(
                customer_id="cus_lines", plan_id="pro_plan", custom_line_items=lines
            )

    previewed = asyncio.run(preview())
    assert previewed.total == 3.75
    assert [line.total for line in previewed.line_items] == [5, -1.25]
    updated = client.billing.update(customer_id="cus_lines", plan_id="pro_plan", custom_line_items=lines)
    assert updated.invoice is not None and updated.invoice.total == 3.75
    with pytest.raises(errors.BadRequestError) as cancelling:
        client.billing.update(
            customer_id="cus_lines",
            plan_id="pro_plan",
            cancel_action="cancel_end_of_cycle",
            custom_line_items=lines,
        )
    assert cancelling.value.code == "invalid_request"
    assert "cancel_action" in str(cancelling.value)
    assert sorted(i.total for i in client.invoices.list(customer_id="cus_lines").list) == [3.75, 10]


def test_update_free_trial(client: Autumn, server: RunningServer) -> None:
    """``free_trial`` starts a trial on the subscription now (crediting its unused time); ``null`` ends it."""
    client.customers.get_or_create(customer_id="cus_update_trial")
    setup = client.billing.setup_payment(customer_id="cus_update_trial")
    card = {"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"}
    assert httpx.post(setup.url, data=card).status_code == 303
    assert client.billing.attach(customer_id="cus_update_trial", plan_id="pro_plan").payment_url is None

    async def preview(**trial: Any) -> models.PreviewUpdateResponse:
        async with _async_client(server) as autumn:
            return await autumn.billing.preview_update(
                customer_id="cus_update_trial", plan_id="pro_plan", **trial
            )

    started = asyncio.run(preview(free_trial=_TRIAL))
    assert started.total == -10  # the month just paid, unused: credited
    assert started.next_cycle is not None and started.next_cycle.total == 10
    assert asyncio.run(preview(free_trial=None)).total == 0  # no trial running: nothing to end
    client.billing.update(customer_id="cus_update_trial", plan_id="pro_plan", free_trial=_TRIAL)
    [trialing] = client.customers.get(customer_id="cus_update_trial").subscriptions
    assert trialing.trial_ends_at is not None
    assert abs(trialing.trial_ends_at - started.next_cycle.starts_at) < 1000
    client.billing.update(customer_id="cus_update_trial", plan_id="pro_plan", free_trial=None)
    [billed] = client.customers.get(customer_id="cus_update_trial").subscriptions
    assert billed.trial_ends_at is None
    totals = sorted(i.total for i in client.invoices.list(customer_id="cus_update_trial").list)
    assert totals == [-10, 10, 10]


_ATTACH = {"customer_id": "cus_inv_1", "plan_id": "pro_plan"}
_UPDATE = {"customer_id": "cus_inv_1", "plan_id": "pro_plan"}
_MULTI_UPDATE = {
    "customer_id": "cus_inv_1",
    "updates": [{"plan_id": "pro_plan", "cancel_action": "uncancel"}],
}
_BILLING_DETAILS = {"address": {"country": "DE"}, "tax_exempt": "reverse"}
_LINE = {"amount": 5, "description": "Setup"}
_TRIAL = {"duration_length": 7, "duration_type": "day"}
_REFUSED_ARGUMENTS: list[tuple[str, dict[str, Any], str, Any]] = [
    ("customers.get_or_create", {"customer_id": "cus_new"}, "billing_details", _BILLING_DETAILS),
    ("customers.update", {"customer_id": "cus_inv_1"}, "billing_details", {"tax_exempt": "exempt"}),
    ("features.create", {"feature_id": "f", "name": "F", "type_": "metered"}, "combine", "max"),
    ("features.update", {"feature_id": "calls"}, "combine", "min"),
    *(
        (operation, _ATTACH, argument, value)
        for operation in ("billing.attach", "billing.preview_attach", "billing.setup_payment")
        for argument, value in (
            ("add_lines", [_LINE]),
            ("remove_lines", [{"plan_id": "pro_plan"}]),
            ("billing_details", _BILLING_DETAILS),
            ("tax", {"rate_id": "txr_1"}),
        )
    ),
    # (attach's and update's remove_discounts are served: tests/billing/test_discounts.py)
    ("billing.setup_payment", _ATTACH, "remove_discounts", [{"reward_id": "rew_1"}]),
    *(
        (operation, _UPDATE, argument, value)
        for operation in ("billing.update", "billing.preview_update")
        for argument, value in (
            ("add_lines", [_LINE]),
            ("remove_lines", [{"plan_id": "pro_plan"}]),
            ("subscription_params", {"description": "x"}),
        )
    ),
    *(
        (operation, _MULTI_UPDATE, argument, value)
        for operation in ("billing.multi_update", "billing.preview_multi_update")
        for argument, value in (("subscription_params", {"description": "x"}),)
    ),
    (
        "referrals.create_program",
        {"id": "prog", "reward_id": "rew", "redeem_on": "checkout", "received_by": "all"},
        "internal_id",
        "rp_internal",
    ),
]
"""(operation, the arguments it needs, the refused argument, a value of it that asks for something)."""


def _method(client: Any, operation: str) -> Any:
    for part in operation.split("."):
        client = getattr(client, part)
    return client


@pytest.mark.parametrize(
    ("operation", "needed", "argument", "value"),
    _REFUSED_ARGUMENTS,
    ids=[f"{op}-{arg}" for op, _, arg, _ in _REFUSED_ARGUMENTS],
)
def test_arguments_the_server_refuses(
    client: Autumn, server: RunningServer, operation: str, needed: dict[str, Any], argument: str, value: Any
) -> None:
    """Each is refused by name before anything is written, sync and async."""
    with pytest.raises(errors.BadRequestError) as refused:
        _method(client, operation)(**needed, **{argument: value})
    assert refused.value.code == "unsupported_field"
    assert f"unsupported_field: {argument} is part of Autumn's API" in str(refused.value)

    async def run() -> None:
        async with _async_client(server) as autumn:
            await _method(autumn, operation)(**needed, **{argument: value})

    with pytest.raises(errors.BadRequestError) as refused_async:
        asyncio.run(run())
    assert refused_async.value.code == "unsupported_field"
    if operation == "customers.get_or_create":
        with pytest.raises(errors.NotFoundError):
            client.customers.get(customer_id="cus_new")  # nothing was written
