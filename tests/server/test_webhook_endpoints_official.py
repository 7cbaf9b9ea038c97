"""Autumn's ``webhooks.*`` operations (official SDK shapes) on this server's endpoints, over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.billing.receiver import Receiver

from .helpers import Api


def _webhook(api: Api, **body: Any) -> dict[str, Any]:
    return api("webhooks.create", **body)


def test_create_get_list_update_delete(api: Api) -> None:
    created = _webhook(
        api,
        id="orders-prod",
        url="https://example.com/hooks",
        events=["billing.updated", "balances.limit_reached"],
        description="Orders",
    )
    assert created["secret"].startswith("whsec_")
    assert created["created_at"] == created["updated_at"]
    expected = {
        "id": "orders-prod",
        "url": "https://example.com/hooks",
        "description": "Orders",
        "events": ["billing.updated", "balances.limit_reached"],
        "disabled": False,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    assert {k: v for k, v in created.items() if k != "secret"} == expected
    assert api("webhooks.get", id="orders-prod") == expected
    assert api("webhooks.list")["list"] == [expected]

    api.clock.advance(1_000)
    updated = api("webhooks.update", id="orders-prod", disabled=True, description="")
    assert updated["disabled"] is True and updated["description"] is None
    assert updated["url"] == expected["url"] and updated["events"] == expected["events"]
    assert updated["updated_at"] == created["updated_at"] + 1_000
    assert api("webhooks.get", id="orders-prod") == updated
    # the same store as the server's own endpoint paths
    legacy = api("webhooks.list_endpoints")["list"]
    assert [(e["url"], e["enabled"]) for e in legacy] == [("https://example.com/hooks", False)]

    assert api("webhooks.delete", id="orders-prod") == {"success": True}
    assert api("webhooks.list") == {"list": []}
    assert api.error("webhooks.get", id="orders-prod").status == 404


def test_refusals(api: Api) -> None:
    _webhook(api, id="one", url="https://example.com/a")
    dup = api.error("webhooks.create", id="one", url="https://example.com/b")
    assert (dup.status, dup.code) == (409, "duplicate_webhook_id")
    missing = api.error("webhooks.update", id="nope", disabled=True)
    assert (missing.status, missing.code) == (404, "webhook_not_found")
    assert api.error("webhooks.delete", id="nope").code == "webhook_not_found"
    for body in (
        {"id": "bad id", "url": "https://example.com/a"},
        {"id": "two"},
        {"id": "two", "url": "ftp://example.com"},
        {"id": "two", "url": "https://example.com/a", "events": []},
        {"id": "two", "url": "https://example.com/a", "events": ["no.such_event"]},
        {"id": "two", "url": 5},
    ):
        error = api.error("webhooks.create", **body)
        assert (error.status, error.code) == (400, "invalid_inputs"), body
    unsent = api.error("webhooks.create", id="two", url="https://example.com/a", events=["invoice.finalized"])
    assert "never sends invoice.finalized" in unsent.body["message"]
    dupes = api.error(
        "webhooks.sync",
        webhooks=[{"id": "x", "url": "https://example.com/x"}, {"id": "x", "url": "https://example.com/y"}],
    )
    assert dupes.status == 400
    assert [w["id"] for w in api("webhooks.list")["list"]] == ["one"]


def test_sync_adopts_updates_creates_and_deletes(api: Api) -> None:
    legacy = api("webhooks.create_endpoint", url="https://example.com/legacy")
    _webhook(api, id="kept", url="https://example.com/kept", events=["billing.updated"])
    _webhook(api, id="stale", url="https://example.com/stale")
    listed = [
        {"id": "adopted", "url": "https://example.com/legacy", "description": "from the dashboard"},
        {"id": "kept", "url": "https://example.com/kept", "events": ["balances.limit_reached"]},
        {"id": "fresh", "url": "https://example.com/fresh"},
    ]
    by_legacy_id = api("webhooks.get", id=legacy["id"])
    assert by_legacy_id["description"] is None and by_legacy_id["events"] == []

    preview = api("webhooks.preview_sync", webhooks=listed)
    assert [(c["action"], c["id"]) for c in preview["changes"]] == [
        ("adopt", "adopted"),
        ("update", "kept"),
        ("create", "fresh"),
        ("unmanaged", "stale"),
    ]
    assert preview["errors"] == []
    assert {w["id"] for w in api("webhooks.list")["list"]} == {legacy["id"], "kept", "stale"}  # unchanged

    gone = api("webhooks.preview_sync", webhooks=listed, skip_deletions=False)["changes"][-1]
    assert (gone["action"], gone["id"]) == ("delete", "stale")

    result = api("webhooks.sync", webhooks=listed, skip_deletions=False)
    assert [w["id"] for w in result["webhooks"]] == ["adopted", "kept", "fresh"]
    assert [s["id"] for s in result["secrets"]] == ["fresh"]  # the adopted one keeps its secret
    assert result["errors"] == []
    assert {w["id"] for w in api("webhooks.list")["list"]} == {"adopted", "kept", "fresh"}
    assert api("webhooks.get", id="kept")["events"] == ["balances.limit_reached"]
    assert api("webhooks.get", id="adopted")["description"] == "from the dashboard"
    # the server's own path still sees the adopted endpoint under its ep_ id and secret
    assert legacy["id"] in {e["id"] for e in api("webhooks.list_endpoints")["list"]}

    again = api("webhooks.preview_sync", webhooks=listed)
    assert [c["action"] for c in again["changes"]] == []


def test_sync_refuses_an_ambiguous_adoption(api: Api) -> None:
    api("webhooks.create_endpoint", url="https://example.com/same")
    api("webhooks.create_endpoint", url="https://example.com/same")
    listed = [{"id": "one", "url": "https://example.com/same"}]
    preview = api("webhooks.preview_sync", webhooks=listed)
    assert [e["id"] for e in preview["errors"]] == ["one"]
    refused = api.error("webhooks.sync", webhooks=listed)
    assert refused.status == 400 and "2 webhooks without an id" in refused.body["message"]


def test_a_created_webhook_receives_signed_events(api: Api) -> None:
    receiver = Receiver("whsec_" + "A" * 32, failures=0)
    try:
        created = _webhook(api, id="alerts", url=receiver.url, events=["balances.limit_reached"])
        receiver.secret = created["secret"]  # the receiver verifies with the secret shown once
        api.feature("messages")
        api.plan(
            "free",
            [{"feature_id": "messages", "included": 5, "reset": {"interval": "month"}}],
            auto_enable=True,
        )
        api.customer("u1")
        api.track("u1", "messages", 5)
        messages = receiver.wait_for(1)
        assert [m["type"] for m in messages] == ["balances.limit_reached"]
        assert messages[0]["data"] == {
            "customer_id": "u1",
            "feature_id": "messages",
            "limit_type": "included",
        }
    finally:
        receiver.close()
