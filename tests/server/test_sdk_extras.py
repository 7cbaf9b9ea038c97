"""Operations the official SDK has beyond the spec: balances.list, subscriptions.list, purchases.list,
billing.verify, logs.search, platform.get_stripe_connection and platform.disconnect_stripe, over HTTP.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx

from reference_server.testing import RunningServer

from .helpers import Api

DAY = 86_400_000
MONTH = {"interval": "month"}


def _world(api: Api) -> None:
    """Two customers on a free plan, one with an entity-scoped add-on and a one-off purchase."""
    api.feature("messages")
    api.feature("credits")
    api.feature("seats", consumable=False)
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=False)
    api.plan("boost", [{"feature_id": "messages", "included": 50}], add_on=True)
    api.plan("pack", [{"feature_id": "credits", "included": 100}], price={"amount": 5, "interval": "one_off"})
    for cid in ("u1", "u2"):
        api.customer(cid)
        api("billing.attach", customer_id=cid, plan_id="free")
    api("entities.create", customer_id="u2", entity_id="e1", feature_id="seats", name="Seat 1")
    api("billing.attach", customer_id="u2", entity_id="e1", plan_id="boost")
    api(
        "billing.attach",
        customer_id="u2",
        plan_id="pack",
        invoice_mode={"enabled": True, "enable_plan_immediately": True},
    )


def _walk(api: Api, op: str, **body: Any) -> list[dict[str, Any]]:
    """Every row of a list, one page (``limit`` 1) at a time."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        paging: dict[str, Any] = {"limit": 1, "start_cursor": cursor} if cursor else {"limit": 1}
        page = api(op, **body, **paging)
        assert len(page["list"]) <= 1
        rows += page["list"]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return rows
        cursor = page["next_cursor"]
        assert isinstance(cursor, str) and cursor
    raise AssertionError("the walk did not end")


def test_list_subscriptions_and_purchases(api: Api) -> None:
    _world(api)
    subs = api("subscriptions.list")
    assert subs["has_more"] is False and subs["next_cursor"] is None
    # newest customer first, then newest row first
    assert [(r["customer_id"], r["plan_id"], r["entity_id"]) for r in subs["list"]] == [
        ("u2", "boost", "e1"),
        ("u2", "free", None),
        ("u1", "free", None),
    ]
    row = subs["list"][1]
    assert row["status"] == "active" and row["past_due"] is False and row["add_on"] is False
    assert set(row) >= {"id", "started_at", "current_period_end", "quantity", "created_at", "canceled_at"}
    assert "plan" not in row
    assert _walk(api, "subscriptions.list") == subs["list"]

    purchases = api("purchases.list")["list"]
    assert [(r["customer_id"], r["plan_id"], r["status"], r["quantity"]) for r in purchases] == [
        ("u2", "pack", "active", 1)
    ]
    assert set(purchases[0]) == {
        "id",
        "plan_id",
        "expires_at",
        "started_at",
        "quantity",
        "status",
        "customer_id",
        "entity_id",
        "created_at",
    }

    # narrowed: to a customer, an entity, a plan
    assert [r["plan_id"] for r in api("subscriptions.list", customer_id="u1")["list"]] == ["free"]
    assert [r["plan_id"] for r in api("subscriptions.list", customer_id="u2", entity_id="e1")["list"]] == [
        "boost"
    ]
    assert [r["customer_id"] for r in api("subscriptions.list", plan_id="free")["list"]] == ["u2", "u1"]
    assert api("purchases.list", customer_id="u1")["list"] == []
    assert api("subscriptions.list", statuses=["past_due"])["list"] == []  # no failed renewal

    # a canceled plan is expired: listed only when asked for
    api("billing.update", customer_id="u1", plan_id="free", cancel_action="cancel_immediately")
    assert api("subscriptions.list", customer_id="u1")["list"] == []
    expired = api("subscriptions.list", customer_id="u1", statuses=["expired"])["list"]
    assert [(r["plan_id"], r["status"]) for r in expired] == [("free", "expired")]


def test_list_balances(api: Api) -> None:
    _world(api)
    now = api.clock.now_ms()
    api("balances.create", customer_id="u1", feature_id="credits", included_grant=30, expires_at=now + DAY)
    api.track("u1", "messages", 7)
    page = api("balances.list")
    rows = page["list"]
    assert page["has_more"] is False
    assert [(r["customer_id"], r["feature_id"], r["plan_id"], r["entity_id"]) for r in rows] == [
        ("u2", "credits", "pack", None),
        ("u2", "messages", "boost", "e1"),
        ("u2", "messages", "free", None),
        ("u1", "credits", None, None),
        ("u1", "messages", "free", None),
    ]
    used = rows[-1]
    assert (used["included_grant"], used["usage"], used["remaining"], used["status"]) == (
        100,
        7,
        93,
        "active",
    )
    assert used["reset"]["interval"] == "month" and used["rollovers"] == [] and used["price"] is None
    assert set(used) >= {"id", "prepaid_grant", "unlimited", "expires_at", "created_at"}
    assert _walk(api, "balances.list") == rows

    assert [r["plan_id"] for r in api("balances.list", customer_id="u1")["list"]] == [None, "free"]
    assert [r["plan_id"] for r in api("balances.list", customer_id="u2", entity_id="e1")["list"]] == ["boost"]
    assert [r["customer_id"] for r in api("balances.list", plan_id=None)["list"]] == ["u1"]  # standalone
    assert [r["customer_id"] for r in api("balances.list", plan_id="free")["list"]] == ["u2", "u1"]
    assert [r["plan_id"] for r in api("balances.list", feature_id="credits")["list"]] == ["pack", None]
    assert api("balances.list", statuses=["expired"])["list"] == []

    # the standalone grant expires with the (customer's) clock
    api.advance(days=2)
    assert [r["plan_id"] for r in api("balances.list", customer_id="u1")["list"]] == ["free"]
    expired = api("balances.list", statuses=["expired"])["list"]
    assert [(r["customer_id"], r["feature_id"], r["status"]) for r in expired] == [
        ("u1", "credits", "expired")
    ]
    both = api("balances.list", customer_id="u1", statuses=["active", "expired"])["list"]
    assert [r["status"] for r in both] == ["expired", "active"]


def test_lists_refuse_bad_input(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    for op in ("balances.list", "subscriptions.list", "purchases.list"):
        err = api.error(op, entity_id="e1")
        assert (err.status, err.code) == (400, "invalid_inputs") and "requires customer_id" in err.body[
            "message"
        ]
        assert (api.error(op, customer_id="nobody").status, api.error(op, customer_id="nobody").code) == (
            404,
            "customer_not_found",
        )
        assert api.error(op, customer_id="u1", entity_id="ghost").code == "entity_not_found"
        assert api.error(op, limit=0).code == "invalid_inputs"
        assert api.error(op, limit=201).code == "invalid_inputs"
        assert api.error(op, start_cursor="not-a-cursor").code == "invalid_inputs"
        assert api.error(op, statuses=[]).code == "invalid_inputs"
        assert api.error(op, statuses=["gone"]).code == "invalid_inputs"
        assert api.error(op, customer_id=7).code == "invalid_inputs"
    # a cursor of one list is not one of another
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=1)
    api("balances.create", customer_id="u1", feature_id="messages", included_grant=2, balance_id="second")
    cursor = api("balances.list", limit=1)["next_cursor"]
    assert isinstance(cursor, str)
    assert api.error("subscriptions.list", start_cursor=cursor).code == "invalid_inputs"


def test_verify(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 10}])
    api.customer("u1")
    api("billing.attach", customer_id="u1", plan_id="free")
    assert api("billing.verify", customer_id="u1") == {
        "customer_id": "u1",
        "customer_mismatches": [],
        "subscriptions": [],
    }
    assert (
        api("billing.verify", customer_id="u1", subscription_ids=["sub_x"], strict=True)["subscriptions"]
        == []
    )
    err = api.error("billing.verify", customer_id="nobody")
    assert (err.status, err.code) == (404, "customer_not_found")
    assert api.error("billing.verify").code == "invalid_inputs"
    # a customer billed through Stripe would need Stripe read: refused, not answered clean
    api.customer("u2", stripe_id="cus_Stripe123")
    err = api.error("billing.verify", customer_id="u2")
    assert err.status == 400 and err.code == "unsupported_operation" and "Stripe" in err.body["message"]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def test_logs_search(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    api.error("customers.get", customer_id="nobody")
    api.track("u1", "messages", 1)
    logs = api("logs.search")["list"]
    paths = [entry["request"]["path"] for entry in logs]
    assert paths[:4] == [
        "/v1/balances.track",
        "/v1/customers.get",
        "/v1/customers.get_or_create",
        "/v1/features.create",
    ]
    first = logs[0]
    assert first["source"] == "api_request" and first["status_code"] == 200
    assert first["request"] == {"method": "POST", "url": "/v1/balances.track", "path": "/v1/balances.track"}
    assert first["context"]["org_id"] and first["context"]["customer_id"] is None
    assert first["stripe"] == {"event_id": None, "event_type": None, "object_id": None}
    assert first["request_body"] is None and first["response_body"] is None
    assert first["timestamp"].endswith("Z")

    failed = api("logs.search", query="where status_code >= 400")["list"]
    assert [(e["request"]["path"], e["status_code"]) for e in failed] == [("/v1/customers.get", 404)]
    query = (
        "where request_path startswith '/v1/customers' or request_path == '/v1/features.create'"
        " | order by timestamp asc"
    )
    ordered = [e["request"]["path"] for e in api("logs.search", query=query)["list"]]
    assert ordered[:3] == ["/v1/features.create", "/v1/customers.get_or_create", "/v1/customers.get"]
    assert len(api("logs.search", query="where source == 'api_request' | limit 2")["list"]) == 2
    assert len(api("logs.search", limit=1)["list"]) == 1
    by_status = api("logs.search", query="where status_code in (404, 500) | order by status_code desc")[
        "list"
    ]
    assert [e["status_code"] for e in by_status] == [404]

    # the range: the last 30 minutes by default, at most 7 days
    now = api.clock.now_ms()
    assert (
        api("logs.search", range={"start_date": _iso(now + DAY), "end_date": _iso(now + 2 * DAY)})["list"]
        == []
    )
    api.clock.advance(31 * 60 * 1000)
    recent = {e["request"]["path"] for e in api("logs.search")["list"]}
    assert recent <= {"/v1/logs.search"}  # the rest is 31 minutes old (a search is logged as it ends)
    older = api("logs.search", range={"start_date": _iso(now - DAY)})["list"]
    assert "/v1/features.create" in [e["request"]["path"] for e in older]

    refusals: list[tuple[dict[str, Any], str]] = [
        ({"range": {"start_date": _iso(now - 8 * DAY), "end_date": _iso(now)}}, "cannot exceed 7 days"),
        ({"range": {"start_date": _iso(now), "end_date": _iso(now - 1000)}}, "must be before"),
        ({"range": {"start_date": "yesterday"}}, "ISO datetime"),
        ({"query": "where customer_id == 'u1'"}, "does not keep customer_id"),
        ({"query": "where request_body.feature_id == 'messages'"}, "does not keep request_body"),
        ({"query": "summarize count() by request_path"}, "only available on the logs.query endpoint"),
        ({"query": "where status_code >> 4"}, "Invalid logs query"),
        ({"query": "where nonsense == 1"}, "unknown field"),
        ({"query": "where (status_code == 1"}, "Invalid logs query"),
        ({"limit": 500}, ""),
    ]
    for body, fragment in refusals:
        err = api.error("logs.search", **body)
        assert (err.status, err.code) == (400, "invalid_inputs") and fragment in err.body["message"], body


def _tenant(srv: RunningServer) -> str:
    slug = "t-" + secrets.token_hex(5)
    r = httpx.post(
        srv.url + "/v1/platform/organizations",
        headers=srv.headers,
        json={"user_email": "owner@example.com", "name": "Tenant", "slug": slug, "env": "test"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return slug


def _post(srv: RunningServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(srv.url + path, headers=srv.headers, json=body, timeout=30)


def test_stripe_connection(api: Api) -> None:
    srv = api.server
    slug = _tenant(srv)
    for env in ("test", "live"):
        r = _post(srv, "/v1/platform.get_stripe_connection", {"organization_slug": slug, "env": env})
        assert r.status_code == 200 and r.json() == {
            "connected": False,
            "account_id": None,
            "connected_at": None,
        }
        r = _post(srv, "/v1/platform.disconnect_stripe", {"organization_slug": slug, "env": env})
        assert r.status_code == 200 and r.json() == {"success": True}
    # a connected account set through the platform is not an OAuth connection
    r = _post(
        srv, "/v1/platform/organizations/stripe", {"organization_slug": slug, "test_account_id": "acct_9"}
    )
    assert r.status_code == 200, r.text
    r = _post(srv, "/v1/platform.get_stripe_connection", {"organization_slug": slug, "env": "test"})
    assert r.json()["connected"] is False
    r = _post(srv, "/v1/platform.disconnect_stripe", {"organization_slug": slug, "env": "test"})
    assert r.status_code == 400 and "not OAuth connections" in r.json()["message"]
    assert (
        _post(srv, "/v1/platform.disconnect_stripe", {"organization_slug": slug, "env": "live"}).status_code
        == 200
    )
    for path in ("/v1/platform.get_stripe_connection", "/v1/platform.disconnect_stripe"):
        r = _post(srv, path, {"organization_slug": "no-such-org", "env": "test"})
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = _post(srv, path, {"organization_slug": slug, "env": "prod"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_input"  # the platform API's codes
        assert _post(srv, path, {"env": "test"}).status_code == 400
