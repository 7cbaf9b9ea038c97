"""``billing.preview_multi_update``'s ``incoming`` and ``outgoing``, through the real server over HTTP
on SQLite and PostgreSQL.

Each subscription's preview is built as ``billing.preview_update`` builds its body: a plan's paid seat
pools (stored among its prepaid quantities) are no feature and never show in ``feature_quantities``.
``incoming`` lists what comes in as Autumn's update previews do: the group's free default that a
cancelled main plan brings back (now, or scheduled from the plan's end), then the plan itself when it
stays (cancelled at its period's end, or uncancelled). The multi update then does what it previewed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import DATABASES, DAY, START, Api, create_addon, create_seat_license, running_api, with_card

PERIOD_END = START + 30 * DAY  # April 2026 has 30 days
SEATS = [{"license_plan_id": "seat", "quantity": 3}]  # 1 included, 2 paid


@pytest.fixture(params=DATABASES)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with running_api(request, monkeypatch, request.param) as client:
        monthly = create_seat_license(client)
        client("plans.create", plan_id="free", name="Free", group="main", auto_enable=True, items=[monthly])
        client(
            "plans.create",
            plan_id="team",
            name="Team",
            group="main",
            price={"amount": 40, "interval": "month"},
            items=[monthly],
            licenses=[{"license_plan_id": "seat", "included": 1}],
        )
        create_addon(client)
        yield client


def _subscribed(api: Api, customer_id: str) -> None:
    """Team with a seat pool of 3 (2 of them paid) and the add-on."""
    with_card(api, customer_id)
    api("billing.attach", customer_id=customer_id, plan_id="team", license_quantities=SEATS)
    api("billing.attach", customer_id=customer_id, plan_id="addon")


def _by_plans(preview: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(s["plan_ids"]): s for s in preview["subscriptions"]}


def _quantities(preview: dict[str, Any]) -> list[str]:
    return [
        fq["feature_id"]
        for s in preview["subscriptions"]
        for plan in [*s["incoming"], *s["outgoing"]]
        for fq in plan["feature_quantities"]
    ]


def _as_single(single: dict[str, Any]) -> dict[str, Any]:
    """A ``billing.preview_update`` body's keys that a multi update's subscription preview shares."""
    shared = ("customer_id", "line_items", "subtotal", "total", "currency", "next_cycle", "outgoing")
    return {k: single[k] for k in shared if k in single}


def test_cancel_at_period_end_previews_the_default_and_the_cancelled_plan(api: Api) -> None:
    _subscribed(api, "c")
    api.clock.advance(15 * DAY)
    now = START + 15 * DAY
    updates: list[dict[str, Any]] = [
        {"plan_id": "team", "cancel_action": "cancel_end_of_cycle"},
        {"plan_id": "addon", "cancel_action": "cancel_end_of_cycle"},
    ]
    preview = api("billing.preview_multi_update", customer_id="c", updates=updates)
    assert _quantities(preview) == []  # the seat pool is no feature
    subs = _by_plans(preview)
    assert set(subs) == {("team",), ("addon",)}
    team, addon = subs[("team",)], subs[("addon",)]
    assert team["incoming"] == [
        {  # the group's free default, scheduled from team's end
            "plan_id": "free",
            "feature_quantities": [],
            "effective_at": PERIOD_END,
            "canceled_at": None,
            "expires_at": None,
        },
        {  # team itself, cancelled now and ending at its period's end
            "plan_id": "team",
            "feature_quantities": [],
            "effective_at": None,
            "canceled_at": now,
            "expires_at": PERIOD_END,
        },
    ]
    assert addon["incoming"] == [  # an add-on brings no default back
        {
            "plan_id": "addon",
            "feature_quantities": [],
            "effective_at": None,
            "canceled_at": now,
            "expires_at": PERIOD_END,
        }
    ]
    assert [(o["plan_id"], o["effective_at"], o["expires_at"]) for o in team["outgoing"]] == [
        ("team", PERIOD_END, PERIOD_END)
    ]
    # each subscription's preview is what billing.preview_update answers for its update alone
    for update in updates:
        single = api("billing.preview_update", customer_id="c", **update)
        assert {k: subs[(update["plan_id"],)].get(k) for k in _as_single(single)} == _as_single(single)

    api("billing.multi_update", customer_id="c", updates=updates)
    shown = {s["plan_id"]: s for s in api.customer("c")["subscriptions"]}
    assert shown["free"]["status"] == "scheduled" and shown["free"]["started_at"] == PERIOD_END
    assert shown["team"]["canceled_at"] == now and shown["team"]["expires_at"] == PERIOD_END
    assert shown["addon"]["canceled_at"] == now and shown["addon"]["expires_at"] == PERIOD_END

    # uncancelling brings each plan back as it was, with no cancellation
    back = [
        {"plan_id": "team", "cancel_action": "uncancel"},
        {"plan_id": "addon", "cancel_action": "uncancel"},
    ]
    preview = api("billing.preview_multi_update", customer_id="c", updates=back)
    assert _quantities(preview) == []
    assert {k: s["incoming"] for k, s in _by_plans(preview).items()} == {
        (plan_id,): [
            {
                "plan_id": plan_id,
                "feature_quantities": [],
                "effective_at": None,
                "canceled_at": None,
                "expires_at": None,
            }
        ]
        for plan_id in ("team", "addon")
    }


def test_cancel_now_previews_the_default_coming_back_now(api: Api) -> None:
    _subscribed(api, "c")
    api.clock.advance(15 * DAY)
    updates: list[dict[str, Any]] = [
        {"plan_id": "team", "cancel_action": "cancel_immediately"},
        {"plan_id": "addon", "cancel_action": "cancel_immediately"},
    ]
    preview = api("billing.preview_multi_update", customer_id="c", updates=updates)
    assert _quantities(preview) == []
    subs = _by_plans(preview)
    assert subs[("team",)]["incoming"] == [
        {
            "plan_id": "free",
            "feature_quantities": [],
            "effective_at": None,
            "canceled_at": None,
            "expires_at": None,
        }
    ]
    assert subs[("addon",)]["incoming"] == []
    assert preview["total"] == subs[("team",)]["total"] + subs[("addon",)]["total"]
    for update in updates:
        single = api("billing.preview_update", customer_id="c", **update)
        assert {k: subs[(update["plan_id"],)].get(k) for k in _as_single(single)} == _as_single(single)

    api("billing.multi_update", customer_id="c", updates=updates)
    shown = {s["plan_id"]: s["status"] for s in api.customer("c")["subscriptions"]}
    assert shown == {"free": "active"}
