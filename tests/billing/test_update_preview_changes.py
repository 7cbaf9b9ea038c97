"""``billing.preview_update``'s ``incoming`` and ``outgoing`` for a cancel or an uncancel, through the
real server over HTTP on SQLite and PostgreSQL.

As Autumn builds every preview's changes in one place, the single preview lists what each subscription
of ``billing.preview_multi_update`` lists for the same update: in come the group's free default a
cancelled main plan brings back (now, or scheduled from the plan's end), then the plan itself when it
stays (cancelled at its period's end, or uncancelled); out goes the plan a cancel ends, or the
uncancelled plan as it stood (with its cancellation). A scheduled incoming plan says when it starts,
whether an attach or a cancel schedules it. The update then does what it previewed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import (
    DATABASES,
    DAY,
    START,
    Api,
    change,
    create_addon,
    create_prepaid_team_plan,
    running_api,
    with_card,
)

PERIOD_END = START + 30 * DAY  # April 2026 has 30 days
NOW = START + 15 * DAY
PACKS = [{"feature_id": "messages", "quantity": 300}]


@pytest.fixture(params=DATABASES)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(request, monkeypatch, request.param) as client:
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        monthly = {"feature_id": "messages", "included": 50, "reset": {"interval": "month"}}
        client("plans.create", plan_id="free", name="Free", group="main", auto_enable=True, items=[monthly])
        create_prepaid_team_plan(client, group="main")
        create_addon(client)
        yield client


def _on_team(api: Api) -> list[dict[str, Any]]:
    """Customer ``c`` on Team with 300 prepaid messages and the add-on, half a month in; Team's
    ``feature_quantities`` as its attach preview listed them."""
    with_card(api, "c")
    attach = api("billing.preview_attach", customer_id="c", plan_id="team", feature_quantities=PACKS)
    api("billing.attach", customer_id="c", plan_id="team", feature_quantities=PACKS)
    api("billing.attach", customer_id="c", plan_id="addon")
    api.clock.advance(15 * DAY)
    quantities: list[dict[str, Any]] = attach["incoming"][0]["feature_quantities"]
    assert quantities  # the prepaid messages
    return quantities


def _previews(api: Api, update: dict[str, Any]) -> dict[str, Any]:
    """``billing.preview_update``'s body for ``update``, checked to list the same changes as the
    subscription of ``billing.preview_multi_update`` making that update alone."""
    single = api("billing.preview_update", customer_id="c", **update)
    multi = api("billing.preview_multi_update", customer_id="c", updates=[update])
    [sub] = multi["subscriptions"]
    assert (sub["incoming"], sub["outgoing"]) == (single["incoming"], single["outgoing"])
    assert sub["total"] == single["total"]
    return single


def test_cancel_at_period_end_then_uncancel(api: Api) -> None:
    packs = _on_team(api)
    cancel = {"plan_id": "team", "cancel_action": "cancel_end_of_cycle"}
    preview = _previews(api, cancel)
    assert preview["intent"] == "cancel_end_of_cycle"
    assert preview["incoming"] == [
        change("free", [], effective_at=PERIOD_END),  # the group's default, from Team's end
        change("team", packs, canceled_at=NOW, expires_at=PERIOD_END),  # Team, staying until then
    ]
    assert preview["outgoing"] == [
        change("team", packs, effective_at=PERIOD_END, canceled_at=NOW, expires_at=PERIOD_END)
    ]
    # an attach that schedules the free plan says it starts when the cancel's default does
    attach = api("billing.preview_attach", customer_id="c", plan_id="free")
    assert [(i["plan_id"], i["effective_at"]) for i in attach["incoming"]] == [("free", PERIOD_END)]

    api("billing.update", customer_id="c", **cancel)
    shown = {s["plan_id"]: s for s in api.customer("c")["subscriptions"]}
    assert shown["free"]["status"] == "scheduled" and shown["free"]["started_at"] == PERIOD_END
    assert (shown["team"]["canceled_at"], shown["team"]["expires_at"]) == (NOW, PERIOD_END)

    # a day later, uncancelling brings Team back without its cancellation; Team as it stood goes out now
    api.clock.advance(DAY)
    later = NOW + DAY
    uncancel = {"plan_id": "team", "cancel_action": "uncancel"}
    preview = _previews(api, uncancel)
    assert preview["intent"] == "uncancel" and preview["total"] == 0
    assert preview["incoming"] == [change("team", packs)]
    assert preview["outgoing"] == [
        change("team", packs, effective_at=later, canceled_at=NOW, expires_at=PERIOD_END)
    ]

    api("billing.update", customer_id="c", **uncancel)
    shown = {s["plan_id"]: s for s in api.customer("c")["subscriptions"]}
    assert "free" not in shown  # the scheduled default is gone
    assert (shown["team"]["canceled_at"], shown["team"]["expires_at"]) == (None, None)


def test_cancel_now_brings_the_default_in_now(api: Api) -> None:
    packs = _on_team(api)
    cancel = {"plan_id": "team", "cancel_action": "cancel_immediately"}
    preview = _previews(api, cancel)
    assert preview["intent"] == "cancel_immediately"
    assert preview["total"] < 0  # the unused half month is credited
    assert preview["incoming"] == [change("free", [])]  # active at once
    assert preview["outgoing"] == [change("team", packs, effective_at=NOW, expires_at=NOW)]

    api("billing.update", customer_id="c", **cancel)
    assert api.plans_of("c") == {"free": "active", "addon": "active"}


def test_an_add_on_brings_no_default(api: Api) -> None:
    _on_team(api)
    cancel = {"plan_id": "addon", "cancel_action": "cancel_end_of_cycle"}
    preview = _previews(api, cancel)
    assert preview["incoming"] == [change("addon", [], canceled_at=NOW, expires_at=PERIOD_END)]
    assert preview["outgoing"] == [
        change("addon", [], effective_at=PERIOD_END, canceled_at=NOW, expires_at=PERIOD_END)
    ]
    api("billing.update", customer_id="c", **cancel)

    uncancel = {"plan_id": "addon", "cancel_action": "uncancel"}
    preview = _previews(api, uncancel)
    assert preview["incoming"] == [change("addon", [])]
    assert preview["outgoing"] == [
        change("addon", [], effective_at=NOW, canceled_at=NOW, expires_at=PERIOD_END)
    ]
    api("billing.update", customer_id="c", **uncancel)
    assert api.plans_of("c") == {"team": "active", "addon": "active"}
