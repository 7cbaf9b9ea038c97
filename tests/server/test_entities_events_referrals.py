"""Entities (§6), events (§7), referrals and rewards (§8)."""

from __future__ import annotations

from .helpers import Api

MONTH = {"interval": "month"}


def test_e1_entities_use_seats(api: Api) -> None:
    api.feature("users", consumable=False)
    api.plan("free", [{"feature_id": "users", "included": 5}], auto_enable=True)
    api.customer("u1")
    e = api("entities.create", customer_id="u1", entity_id="e1", feature_id="users", name="Ann")
    assert e["id"] == "e1" and e["customer_id"] == "u1" and e["env"] == "sandbox"
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="users")
    b = api.balance("u1", "users")
    assert b is not None and (b["granted"], b["remaining"], b["usage"]) == (5, 3, 2)
    dup = api.error("entities.create", customer_id="u1", entity_id="e2", feature_id="users")
    assert (dup.status, dup.code) == (409, "entity_already_exists")
    assert api("entities.delete", customer_id="u1", entity_id="e2") == {"success": True}
    b = api.balance("u1", "users")
    assert b is not None and (b["remaining"], b["usage"]) == (4, 1)
    missing = api.error("entities.get", customer_id="u1", entity_id="e2")
    assert (missing.status, missing.code) == (404, "entity_not_found")
    listed = api("entities.list", customer_id="u1")
    assert [x["id"] for x in listed["list"]] == ["e1"] and listed["next_cursor"] is None


def test_seats_exhausted_denies_check(api: Api) -> None:
    api.feature("users", consumable=False)
    api.plan("free", [{"feature_id": "users", "included": 1}], auto_enable=True)
    api.customer("u1")
    assert api.check("u1", "users")["allowed"] is True
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="users")
    assert api.check("u1", "users")["allowed"] is False
    api("entities.create", customer_id="u1", entity_id="e2", feature_id="users")  # free seats go negative
    b = api.balance("u1", "users")
    assert b is not None and (b["remaining"], b["usage"]) == (0, 2)


def test_entity_requires_continuous_feature_and_creates_customer(api: Api) -> None:
    api.feature("messages")
    api.feature("users", consumable=False)
    err = api.error("entities.create", customer_id="u1", entity_id="e1", feature_id="messages")
    assert err.status == 400
    api(
        "entities.create",
        customer_id="new-cus",
        entity_id="e1",
        feature_id="users",
        customer_data={"name": "Made by entity"},
    )
    assert api("customers.get", customer_id="new-cus")["name"] == "Made by entity"


def test_e3_e4_entity_scoping(api: Api) -> None:
    api.feature("users", consumable=False)
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    for eid in ("e1", "e2"):
        api("entities.create", customer_id="u1", entity_id=eid, feature_id="users")
    api("balances.create", customer_id="u1", entity_id="e1", feature_id="messages", included_grant=500)
    api("balances.create", customer_id="u1", entity_id="e2", feature_id="messages", included_grant=300)
    e1 = api.balance("u1", "messages", entity_id="e1")
    assert e1 is not None and e1["granted"] == 600 and len(e1["breakdown"]) == 2
    assert api.balance("u1", "messages")["granted"] == 900  # type: ignore[index]
    denied = api.check("u1", "messages", entity_id="e2", required_balance=401)
    assert (
        denied["allowed"] is False and denied["balance"]["remaining"] == 400 and denied["entity_id"] == "e2"
    )
    # Entity tracks drain the entity's own source first, then the shared one.
    api.track("u1", "messages", 550, entity_id="e1")
    rows = {r["plan_id"]: r for r in api.balance("u1", "messages", entity_id="e1")["breakdown"]}  # type: ignore[index]
    assert rows[None]["remaining"] == 0 and rows["free"]["remaining"] == 50
    assert api.balance("u1", "messages", entity_id="e2")["remaining"] == 350  # type: ignore[index]
    # Without an entity, customer-level sources come first.
    api.track("u1", "messages", 60)
    rows = {r["plan_id"]: r["remaining"] for r in api.balance("u1", "messages", entity_id="e2")["breakdown"]}  # type: ignore[index]
    assert rows == {"free": 0, None: 290}


def test_entity_billing_controls_override(api: Api) -> None:
    api.feature("users", consumable=False)
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 10, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    api("entities.create", customer_id="u1", entity_id="e1", feature_id="users")
    upd = api(
        "entities.update",
        customer_id="u1",
        entity_id="e1",
        billing_controls={"overage_allowed": [{"feature_id": "messages", "enabled": True}]},
    )
    assert upd["billing_controls"]["overage_allowed"][0]["enabled"] is True
    api.track("u1", "messages", 15, entity_id="e1")
    assert api.balance("u1", "messages")["usage"] == 15  # type: ignore[index]
    api.customer("u2")
    api.track("u2", "messages", 15)
    assert api.balance("u2", "messages")["usage"] == 10  # type: ignore[index]


def test_ev1_events_list_and_aggregate(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 100, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    for v in (1, 2, 3, 4, 5):
        api.track("u1", "messages", v, properties={"kind": "a" if v % 2 else "b"})
    listed = api("events.list", customer_id="u1")
    assert [e["value"] for e in listed["list"]] == [5, 4, 3, 2, 1] and listed["next_cursor"] is None
    assert all(e["id"].startswith("evt_") and e["feature_id"] == "messages" for e in listed["list"])
    pages: list[float] = []
    cursor = ""
    while True:
        page = api("events.list", customer_id="u1", limit=2, start_cursor=cursor)
        pages += [e["value"] for e in page["list"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert pages == [5, 4, 3, 2, 1]
    agg = api("events.aggregate", customer_id="u1", feature_id="messages", range="7d")
    assert agg["total"]["messages"] == {"count": 5, "sum": 15}
    assert agg["list"][-1]["values"]["messages"] == 15
    assert all(b["values"]["messages"] == 0 for b in agg["list"][:-1])
    grouped = api(
        "events.aggregate", customer_id="u1", feature_id="messages", range="24h", group_by="properties.kind"
    )
    last = next(b for b in grouped["list"] if b["values"]["messages"])
    assert last["grouped_values"]["messages"] == {"a": 9, "b": 6}
    assert (
        api.error(
            "events.aggregate", feature_id="messages", range="7d", custom_range={"start": 0, "end": 1}
        ).status
        == 400
    )
    assert api.error("events.aggregate", feature_id="messages", group_by="kind").status == 400
    assert api.error("events.list", customer_id="ghost").status == 404


def test_events_filters_and_custom_range(api: Api) -> None:
    api.feature("messages")
    api.feature("tokens")
    api.customer("u1")
    api.track("u1", "messages", 1)
    start = api.clock.now_ms()
    api.advance(hours=2)
    api.track("u1", "tokens", 2)
    assert [e["feature_id"] for e in api("events.list", customer_id="u1", feature_id="tokens")["list"]] == [
        "tokens"
    ]
    ranged = api(
        "events.list",
        customer_id="u1",
        custom_range={"start": start + 3_600_000, "end": start + 10 * 3_600_000},
    )
    assert [e["value"] for e in ranged["list"]] == [2]


def _reward_setup(api: Api) -> None:
    api.feature("messages")
    api(
        "rewards.create",
        feature_grant={
            "id": "msg10",
            "name": "10 messages",
            "grants": [{"feature_id": "messages", "included": 10, "expiry": None}],
            "promo_codes": [
                {"code": "MESSAGES10", "max_uses": None},
                {"code": "LIMITEDMSG", "max_uses": 5},
                {"code": "NODUPE", "max_uses": None},
            ],
        },
    )


def test_rw1_promo_rewards(api: Api) -> None:
    _reward_setup(api)
    api.customer("u1")
    res = api("rewards.redeem", code="MESSAGES10", customer_id="u1")
    assert res == {"reward_id": "msg10", "entitlements_granted": [{"feature_id": "messages", "balance": 10}]}
    assert api.check("u1", "messages")["balance"]["remaining"] == 10
    for i in range(5):
        api.customer(f"l{i}")
        api("rewards.redeem", code="LIMITEDMSG", customer_id=f"l{i}")
    api.customer("l5")
    err = api.error("rewards.redeem", code="LIMITEDMSG", customer_id="l5")
    assert (err.status, err.code) == (400, "referral_code_max_redemptions_reached")
    api("rewards.redeem", code="NODUPE", customer_id="l5")
    err = api.error("rewards.redeem", code="NODUPE", customer_id="l5")
    assert (err.status, err.code) == (400, "customer_already_redeemed_referral_code")
    err = api.error("rewards.redeem", code="NOPE", customer_id="l5")
    assert (err.status, err.code) == (404, "reward_not_found")


def test_referral_codes(api: Api) -> None:
    _reward_setup(api)
    api(
        "referrals.create_program",
        id="prog",
        reward_id="msg10",
        redeem_on="customer_creation",
        received_by="all",
        max_redemptions=2,
    )
    api.customer("ref", name="Referrer", email="r@example.com")
    code = api("referrals.create_code", customer_id="ref", program_id="prog")
    assert len(code["code"]) == 6 and code["code"].isalnum() and code["code"].upper() == code["code"]
    assert api("referrals.create_code", customer_id="ref", program_id="prog")["code"] == code["code"]
    assert (
        api.error("referrals.create_code", customer_id="ref", program_id="nope").code
        == "reward_program_not_found"
    )
    assert (
        api.error("referrals.create_code", customer_id="ghost", program_id="prog").code
        == "customer_not_found"
    )
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="ref").code
        == "customer_cannot_redeem_own_code"
    )
    api.customer("new1")
    res = api("referrals.redeem_code", code=code["code"], customer_id="new1")
    assert res["id"].startswith("rr_") and res["referrer"]["id"] == "ref" and res["redeemer"]["id"] == "new1"
    assert api.balance("ref", "messages")["remaining"] == 10  # type: ignore[index]
    assert api.balance("new1", "messages")["remaining"] == 10  # type: ignore[index]
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="new1").code
        == "customer_already_redeemed_referral_code"
    )
    api.customer("new2")
    api("referrals.redeem_code", code=code["code"], customer_id="new2")
    api.customer("new3")
    assert (
        api.error("referrals.redeem_code", code=code["code"], customer_id="new3").code
        == "referral_code_max_redemptions_reached"
    )
    assert (
        api.error("referrals.redeem_code", code="ZZZZZZ", customer_id="new3").code
        == "referral_code_not_found"
    )
    referrals = api("customers.get", customer_id="ref", expand=["referrals"])["referrals"]
    assert [r["customer"]["id"] for r in referrals] == ["new1", "new2"]


def test_aggregate_billing_cycle_and_month_bins(api: Api) -> None:
    api.feature("messages")
    api.plan("free", [{"feature_id": "messages", "included": 1000, "reset": MONTH}], auto_enable=True)
    api.customer("u1")
    api.track("u1", "messages", 4)
    api.advance(days=40)  # next cycle
    api.track("u1", "messages", 6)
    current = api("events.aggregate", customer_id="u1", feature_id="messages")  # range defaults to 1bc
    assert current["total"]["messages"] == {"count": 1, "sum": 6}
    last = api("events.aggregate", customer_id="u1", feature_id="messages", range="last_cycle")
    assert last["total"]["messages"] == {"count": 1, "sum": 4}
    monthly = api(
        "events.aggregate", customer_id="u1", feature_id=["messages"], range="90d", bin_size="month"
    )
    assert sum(b["values"]["messages"] for b in monthly["list"]) == 10
    assert len(monthly["list"]) in (3, 4)
    assert monthly["total"]["messages"]["count"] == 2
