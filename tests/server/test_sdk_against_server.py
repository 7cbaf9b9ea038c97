"""The typed SDK (``autumn_sdk.Autumn`` / ``AsyncAutumn``) against the real server: the full round trip."""

from __future__ import annotations

import pytest

from autumn_sdk import AsyncAutumn, Autumn
from autumn_sdk.errors import NotFoundError

from .helpers import Api


def _catalogue(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free", [{"feature_id": "messages", "included": 5, "reset": {"interval": "month"}}], auto_enable=True
    )


def test_sync_client_round_trip(api: Api) -> None:
    _catalogue(api)
    with Autumn(api.key, server_url=api.server.url, max_retries=0) as autumn:
        customer = autumn.customers.get_or_create(customer_id="sdk-user", name="SDK")
        assert customer.id == "sdk-user" and customer.balances["messages"].remaining == 5
        tracked = autumn.track(customer_id="sdk-user", feature_id="messages", value=3)
        assert tracked.balance is not None and tracked.balance.remaining == 2
        decision = autumn.check(customer_id="sdk-user", feature_id="messages", required_balance=3)
        assert decision.allowed is False and decision.balance is not None and decision.balance.remaining == 2
        with pytest.raises(NotFoundError):
            autumn.customers.get(customer_id="nobody")


async def test_async_client_round_trip(api: Api) -> None:
    _catalogue(api)
    async with AsyncAutumn(api.key, server_url=api.server.url, max_retries=0) as autumn:
        await autumn.customers.get_or_create(customer_id="sdk-async")
        res = await autumn.check(customer_id="sdk-async", feature_id="messages", send_event=True)
        assert res.allowed is True
        events = await autumn.events.list(customer_id="sdk-async")
        assert [e.value for e in events.list] == [1]
