"""Autumn's ``sandboxes.*`` (official SDK shapes): child organizations with their own key, over real HTTP."""

from __future__ import annotations

from reference_server.clock import ManualClock
from reference_server.testing import RunningServer

from .helpers import Api, new_org_key


def _sandbox_api(api: Api, key: str) -> Api:
    return Api(api.server, key, api.clock)


def test_create_list_use_and_delete(api: Api) -> None:
    first = api("sandboxes.create", name="staging", color="blue")
    assert first["secret_key"].startswith("am_sk_test_")
    assert (first["name"], first["slug"], first["color"], first["icon"]) == (
        "staging",
        "staging",
        "blue",
        "Flask",
    )
    api.clock.advance(1_000)
    second = api("sandboxes.create", name="QA_Team")
    assert (second["slug"], second["color"]) == ("qa_team", "gray")
    listed = api("sandboxes.list")["list"]
    assert [s["id"] for s in listed] == [second["id"], first["id"]]  # newest first
    assert all("secret_key" not in s for s in listed)

    sandbox = _sandbox_api(api, first["secret_key"])
    try:
        sandbox.feature("messages")
        sandbox.customer("inside")
        assert [c["id"] for c in sandbox("customers.list")["list"]] == ["inside"]
        assert api("customers.list")["list"] == []  # the parent's catalogue and customers are its own
        nested = sandbox.error("sandboxes.create", name="nested")
        assert nested.status == 400 and "main organization" in nested.body["message"]

        assert api("sandboxes.delete", id=first["id"]) == {"success": True}
        assert [s["id"] for s in api("sandboxes.list")["list"]] == [second["id"]]
        assert sandbox.raw("/v1/customers.list").status_code == 401  # its key went with it
    finally:
        sandbox.http.close()
    missing = api.error("sandboxes.delete", id=first["id"])
    assert (missing.status, missing.code) == (404, "sandbox_not_found")


def test_names_are_checked(api: Api) -> None:
    api("sandboxes.create", name="dev-1")
    for name, fragment in (
        ("dev-1", "already exists"),
        ("my sandbox", "can't contain spaces"),
        ("live", "reserved"),
        ("Settings", "reserved"),
        ("!!!", "at least one letter"),
    ):
        error = api.error("sandboxes.create", name=name)
        assert error.status == 400 and fragment in error.body["message"], (name, error.body)
    assert api.error("sandboxes.create", name="ok", color="purple").status == 400


def test_reset_empties_the_sandbox_env_only(api: Api, server: tuple[RunningServer, ManualClock]) -> None:
    created = api("sandboxes.create", name="resettable")
    sandbox = _sandbox_api(api, created["secret_key"])
    try:
        sandbox.feature("messages")
        sandbox.plan("pro", [{"feature_id": "messages", "included": 10}], auto_enable=True)
        sandbox.customer("c1")
        assert sandbox("sandboxes.reset") == {"success": True}
        assert sandbox("customers.list")["list"] == []
        assert sandbox("plans.list")["list"] == []
        assert sandbox("features.list")["list"] == []
        sandbox.feature("messages")  # the key and the organization stay
        assert [s["id"] for s in api("sandboxes.list")["list"]] == [created["id"]]
    finally:
        sandbox.http.close()

    srv, clock = server
    live = Api(srv, new_org_key(srv, env="live"), clock)
    try:
        refused = live.error("sandboxes.reset")
        assert refused.status == 400 and "Only sandboxes can be reset" in refused.body["message"]
    finally:
        live.http.close()
