"""Features, plans (versions, archive, delete), customers and tenancy (§1, §10, tenancy rules)."""

from __future__ import annotations

import httpx
import pytest

from .helpers import Api, new_org_key

MONTH = {"interval": "month"}


def test_feature_crud_and_errors(api: Api) -> None:
    f = api.feature("messages", event_names=["msg"])
    assert f == {
        "id": "messages",
        "name": "messages",
        "type": "metered",
        "consumable": True,
        "event_names": ["msg"],
        "credit_schema": [],
        "archived": False,
    }
    dup = api.error("features.create", feature_id="messages", name="m", type="metered")
    assert (dup.status, dup.code) == (409, "duplicate_feature_id")
    seats = api.feature("seats", consumable=False)
    assert seats["consumable"] is False
    bad = api.error(
        "features.create",
        feature_id="credits",
        name="c",
        type="credit_system",
        credit_schema=[{"metered_feature_id": "seats", "credit_cost": 1}],
    )
    assert (bad.status, bad.code) == (400, "invalid_feature")
    empty = api.error(
        "features.create", feature_id="credits", name="c", type="credit_system", credit_schema=[]
    )
    assert empty.code == "invalid_feature"
    api.feature(
        "credits", "credit_system", credit_schema=[{"metered_feature_id": "messages", "credit_cost": 2}]
    )
    assert api("features.get", feature_id="credits")["credit_schema"] == [
        {"metered_feature_id": "messages", "credit_cost": 2}
    ]
    assert {x["id"] for x in api("features.list")["list"]} == {"messages", "seats", "credits"}
    assert api("features.update", feature_id="seats", name="Seats")["name"] == "Seats"
    assert api.error("features.delete", feature_id="messages").status == 409  # used by the credit system
    assert api("features.delete", feature_id="seats") == {"success": True}
    missing = api.error("features.get", feature_id="seats")
    assert (missing.status, missing.code) == (404, "feature_not_found")
    assert missing.body["message"] == "Feature seats not found"
    invalid = api.error("features.create", feature_id="bad id", name="x", type="metered")
    assert invalid.status == 400


def test_plan_crud_versioning_and_delete(api: Api) -> None:
    api.feature("messages")
    plan = api.plan(
        "free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True, group="main"
    )
    assert plan["version"] == 1 and plan["price"] is None and plan["group"] == "main"
    assert plan["items"][0]["reset"] == {"interval": "month", "interval_count": 1}
    assert api.error("plans.create", plan_id="free", name="again").code == "product_already_exists"
    # No customers: updated in place.
    assert api("plans.update", plan_id="free", name="Free!")["version"] == 1
    api.customer("u1")
    updated = api(
        "plans.update", plan_id="free", items=[{"feature_id": "messages", "included": 200, "reset": MONTH}]
    )
    assert updated["version"] == 2
    # Grandfathered: u1 keeps version 1's grant; a new customer gets version 2.
    assert api.balance("u1", "messages")["granted"] == 100  # type: ignore[index]
    api.customer("u2")
    assert api.balance("u2", "messages")["granted"] == 200  # type: ignore[index]
    assert api("plans.get", plan_id="free", version=1)["items"][0]["included"] == 100
    assert api("plans.update", plan_id="free", archived=True)["archived"] is True
    assert api("plans.list")["list"] == []
    assert [p["id"] for p in api("plans.list", include_archived=True)["list"]] == ["free"]
    err = api.error("plans.delete", plan_id="free")
    assert err.status == 400 and "customers" in err.body["message"]
    missing = api.error("plans.get", plan_id="nope")
    assert (missing.status, missing.code) == (404, "product_not_found")
    assert missing.body["message"] == "Product nope not found"
    api.plan("spare", [])
    assert api("plans.delete", plan_id="spare") == {"success": True}


def test_plan_validation(api: Api) -> None:
    api.feature("messages")
    err = api.error(
        "plans.create", plan_id="p", name="P", auto_enable=True, price={"amount": 10, "interval": "month"}
    )
    assert err.status == 400
    err = api.error("plans.create", plan_id="p", name="P", items=[{"feature_id": "ghost"}])
    assert err.code == "feature_not_found"
    err = api.error(
        "plans.create",
        plan_id="p",
        name="P",
        items=[
            {
                "feature_id": "messages",
                "reset": {"interval": "day"},
                "price": {"amount": 1, "interval": "month", "billing_method": "usage_based"},
            }
        ],
    )
    assert err.status == 400


def test_d1_default_plan_on_create_and_get_or_create_fill(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    c = api.customer("u1", email="a@example.com")
    sub = c["subscriptions"][0]
    assert (sub["plan_id"], sub["auto_enable"], sub["status"]) == ("free", True, "active")
    assert sub["current_period_start"] is None and c["balances"]["messages"]["remaining"] == 100
    again = api.customer("u1", name="Filled", email="other@example.com")
    assert again["name"] == "Filled" and again["email"] == "a@example.com"
    assert len(again["subscriptions"]) == 1


def test_customer_get_expand_update_delete(api: Api) -> None:
    api.feature("seats", consumable=False)
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 10, "reset": MONTH}], auto_enable=True)
    api.customer("u1", metadata={"a": 1})
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat")
    full = api(
        "customers.get",
        customer_id="u1",
        expand=[
            "entities",
            "invoices",
            "trials_used",
            "rewards",
            "referrals",
            "payment_method",
            "subscriptions.plan",
            "balances.feature",
            "flags.feature",
        ],
    )
    assert full["entities"][0]["id"] == "e1" and full["invoices"] == [] and full["payment_method"] is None
    assert full["subscriptions"][0]["plan"]["id"] == "free"
    assert full["balances"]["messages"]["feature"]["id"] == "messages"
    upd = api(
        "customers.update",
        customer_id="u1",
        name="New",
        email="n@example.com",
        billing_controls={"spend_limits": [{"feature_id": "messages", "enabled": True, "overage_limit": 5}]},
    )
    assert upd["name"] == "New" and upd["billing_controls"]["spend_limits"][0]["overage_limit"] == 5
    assert upd["metadata"] == {"a": 1}
    dup = api.error(
        "customers.update",
        customer_id="u1",
        billing_controls={
            "spend_limits": [
                {"feature_id": "messages", "enabled": True, "overage_limit": 5},
                {"feature_id": "messages", "enabled": True, "overage_limit": 6},
            ]
        },
    )
    assert dup.status == 400
    renamed = api("customers.update", customer_id="u1", new_customer_id="u1b")
    assert renamed["id"] == "u1b"
    assert api("customers.delete", customer_id="u1b") == {"success": True}
    err = api.error("customers.get", customer_id="u1b")
    assert (err.status, err.code, err.body["message"]) == (
        404,
        "customer_not_found",
        "Customer u1b not found",
    )


def test_customers_list_pagination_and_filters(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 10, "reset": MONTH}], auto_enable=True)
    for i in range(7):
        api.customer(f"c{i}", name=f"Name {i}")
    seen: list[str] = []
    cursor = ""
    while True:
        page = api("customers.list", limit=3, start_cursor=cursor)
        seen += [c["id"] for c in page["list"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == [f"c{i}" for i in reversed(range(7))]  # newest first, as in Autumn
    assert [c["id"] for c in api("customers.list", search="Name 3")["list"]] == ["c3"]
    assert len(api("customers.list", plans=[{"id": "free"}])["list"]) == 7
    assert api("customers.list", plans=[{"id": "free", "versions": [2]}])["list"] == []


def test_tenancy_isolation(api: Api) -> None:
    api.feature("messages")
    api.customer("shared-id")
    other = httpx.Client(
        base_url=api.server.url, headers={"Authorization": f"Bearer {new_org_key(api.server)}"}
    )
    r = other.post("/v1/customers.get", json={"customer_id": "shared-id"})
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    r = other.post("/v1/features.get", json={"feature_id": "messages"})
    assert r.status_code == 404
    other.close()
    live_key = new_org_key(api.server, env="live")
    live = httpx.Client(base_url=api.server.url, headers={"Authorization": f"Bearer {live_key}"})
    r = live.post("/v1/customers.get_or_create", json={"customer_id": "x"})
    assert r.status_code == 200 and r.json()["env"] == "live"
    r = live.post("/v1/test_clocks.advance", json={"advance_by_ms": 1})
    assert r.status_code == 403 and r.json()["env"] == "live"
    live.close()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "no_secret_key"),
        ("Bearer sk_wrong", "invalid_request"),
        ("Bearer am_sk_test_nope", "invalid_secret_key"),
    ],
)
def test_auth_errors(api: Api, header: str | None, code: str) -> None:
    headers = {"Authorization": header} if header else {}
    r = httpx.post(api.server.url + "/v1/features.list", headers=headers, json={})
    assert r.status_code == 401 and r.json()["code"] == code and r.json()["env"] == "sandbox"


def test_validation_error_names_the_field(api: Api) -> None:
    r = api.raw("/v1/balances.check", {"feature_id": "x"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_inputs"
    assert r.json()["message"].startswith("customer_id")
    r = api.raw("/v1/balances.check", {"customer_id": 5, "feature_id": []})
    assert r.json()["message"].startswith("[Validation Errors]")
    r = api.http.post("/v1/balances.check", content=b"{not json")
    assert r.status_code == 400


def test_root_openapi_and_unknown_paid_billing(api: Api) -> None:
    root = httpx.get(api.server.url + "/").json()
    assert root["name"] == "autumn-reference-server" and root["version"]
    doc = httpx.get(api.server.url + "/openapi.json", timeout=60).json()  # 1.7 MB, built on first request
    assert "/v1/balances.check" in doc["paths"] and "/v1/billing.preview_attach" in doc["paths"]
    check = doc["paths"]["/v1/balances.check"]["post"]
    assert "customer_id" in check["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "allowed" in check["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert "/v1/test_clocks.advance" in doc["paths"]


def test_platform_organizations_and_users(api: Api) -> None:
    srv = api.server
    r = httpx.post(
        srv.url + "/v1/platform/organizations",
        headers=srv.headers,
        json={"user_email": "u@example.com", "name": "Tenant", "slug": "tenant-a", "env": "both"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["test_secret_key"].startswith("am_sk_test_") and body["live_secret_key"].startswith(
        "am_sk_live_"
    )
    orgs = httpx.get(
        srv.url + "/v1/platform/organizations", headers=srv.headers, params={"limit": 100}
    ).json()
    assert any(o["slug"] == "tenant-a" for o in orgs["list"])
    users = httpx.get(
        srv.url + "/v1/platform/users", headers=srv.headers, params={"expand": "organizations", "limit": 100}
    ).json()
    assert any(u["email"] == "u@example.com" for u in users["list"])
    r = httpx.post(
        srv.url + "/v1/platform/oauth_url",
        headers=srv.headers,
        json={"organization_slug": "tenant-a", "env": "test", "redirect_url": "https://x.test/cb"},
    )
    assert r.status_code == 200 and r.json()["oauth_url"].startswith("http")
    r = httpx.post(
        srv.url + "/v1/platform/organizations/stripe",
        headers=srv.headers,
        json={"organization_slug": "tenant-a", "test_account_id": "acct_1"},
    )
    assert r.status_code == 200 and r.json()["organization"]["slug"] == "tenant-a"


def test_unknown_route_version_header_and_idempotency_window(api: Api) -> None:
    r = api.raw("/v1/nothing.here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = api.http.post("/v1/features.list", json={}, headers={"x-api-version": "banana"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_api_version"
    assert api.http.post("/v1/features.list", json={}, headers={"x-api-version": "2.3.0"}).status_code == 200
    api.feature("messages")
    api.customer("u1")
    api.track("u1", "messages", idempotency_key="day-old")
    assert (
        api.error("track", customer_id="u1", feature_id="messages", idempotency_key="day-old").status == 409
    )
    api.advance(days=1, hours=1)
    api.track("u1", "messages", idempotency_key="day-old")  # a claim lives 24 hours
