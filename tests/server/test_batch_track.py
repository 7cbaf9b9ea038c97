"""``balances.batch_track``: every item applied as ``track`` applies it, all or none, before the 202."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import OPS_BY_NAME, Api

MONTH = {"interval": "month"}
PATH = OPS_BY_NAME["batch_track"].path


def _setup(api: Api) -> None:
    api.feature("messages", event_names=["message.sent"])
    api.feature("calls")
    api.plan(
        "free",
        [
            {"feature_id": "messages", "included": 100, "reset": MONTH},
            {"feature_id": "calls", "included": 10, "reset": MONTH},
        ],
        auto_enable=True,
    )
    api.customer("u1")
    api.customer("u2")


def _batch(api: Api, items: Any) -> httpx.Response:
    return api.http.post(PATH, json=items)


def _usage(api: Api, cid: str, fid: str) -> float:
    balance = api.balance(cid, fid)
    assert balance is not None
    return float(balance["usage"])


def test_batch_applies_every_item_before_answering(api: Api) -> None:
    _setup(api)
    stamp = api.clock.now_ms() - 60_000
    r = _batch(
        api,
        [
            {"customer_id": "u1", "feature_id": "messages", "value": 3},
            {"customer_id": "u2", "feature_id": "messages"},
            {"customer_id": "u1", "event_name": "message.sent", "value": 2, "properties": {"k": "v"}},
            {"customer_id": "u1", "feature_id": "calls", "value": 25, "timestamp": stamp},
            {"customer_id": "u2", "feature_id": "calls", "value": 25, "overage_behavior": "overflow"},
            {"customer_id": "u1", "feature_id": "messages", "value": -1},
        ],
    )
    assert r.status_code == 202 and r.json() == {"success": True}
    assert _usage(api, "u1", "messages") == 4 and _usage(api, "u2", "messages") == 1
    assert _usage(api, "u1", "calls") == 10  # capped at the 10 included
    assert _usage(api, "u2", "calls") == 25  # overflow: the full value
    events = api("events.list", customer_id="u1")["list"]
    assert len(events) == 4
    by_value = {e["value"]: e for e in events}
    assert by_value[2]["properties"] == {"k": "v"} and by_value[2]["feature_id"] == "message.sent"
    assert by_value[25]["timestamp"] == stamp and by_value[25]["feature_id"] == "calls"
    assert by_value[25]["deductions"][0]["value"] == 10
    assert all(e["deductions"] for e in events)


def test_one_bad_item_refuses_the_whole_batch(api: Api) -> None:
    _setup(api)
    good = {"customer_id": "u1", "feature_id": "messages", "value": 5}
    unknown_feature = _batch(api, [good, {"customer_id": "u1", "feature_id": "nope"}])
    assert unknown_feature.status_code == 404
    assert unknown_feature.json()["code"] == "feature_not_found"
    assert "Item 1" in unknown_feature.json()["message"]
    unknown_event = _batch(api, [good, good, {"customer_id": "u1", "event_name": "nothing.listens"}])
    assert unknown_event.status_code == 404 and "Item 2" in unknown_event.json()["message"]
    neither = _batch(api, [{"customer_id": "u1", "value": 1}])
    assert neither.status_code == 400 and neither.json()["code"] == "invalid_inputs"
    assert "Item 0" in neither.json()["message"]
    # an unknown customer is found while applying: nothing of the batch is kept
    unknown_customer = _batch(api, [good, {"customer_id": "ghost", "feature_id": "messages"}])
    assert unknown_customer.status_code == 404 and unknown_customer.json()["code"] == "customer_not_found"
    assert "Item 1" in unknown_customer.json()["message"]
    assert _usage(api, "u1", "messages") == 0
    assert api("events.list", customer_id="u1")["list"] == []


def test_batch_shape_refusals(api: Api) -> None:
    _setup(api)
    item = {"customer_id": "u1", "feature_id": "messages"}
    assert _batch(api, []).status_code == 400
    assert _batch(api, item).status_code == 400  # an object, not an array
    too_many = _batch(api, [item] * 1001)
    assert too_many.status_code == 400 and too_many.json()["code"] == "invalid_inputs"
    bad_type = _batch(api, [item, {"customer_id": "u1", "feature_id": "messages", "value": "x"}])
    assert bad_type.status_code == 400 and "Item 1" in bad_type.json()["message"]
    unknown = _batch(api, [{**item, "overage_behavior": "explode"}])
    assert unknown.status_code == 400
    assert _usage(api, "u1", "messages") == 0


def test_full_batch_of_1000(api: Api) -> None:
    _setup(api)
    items = [
        {"customer_id": "u1" if i % 2 else "u2", "feature_id": "messages", "value": 0.1} for i in range(1000)
    ]
    r = _batch(api, items)
    assert r.status_code == 202
    assert _usage(api, "u1", "messages") == 50 and _usage(api, "u2", "messages") == 50
