"""``engine.billing.preview.update_changes_json`` for a plan change (intent ``update_plan``: a
``customize`` or a move to another ``version``): as Autumn's ``billingPlanToChanges`` (``getIsOutgoing``),
the plan comes in as changed, listed as an attach lists it, and goes out as it stood, now, with its own
cancellation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from autumn_sdk._generated.json_types import PreviewAttachIncomingJson
from reference_server.engine.billing import Subscription, quote_upgrade
from reference_server.engine.billing.preview import incoming_json, update_changes_json
from tests.engine.builders import monthly, ms, prepaid_item

START, HALFWAY, END = ms(2026, 4, 1), ms(2026, 4, 16), ms(2026, 5, 1)
TEAM = monthly("team", "20", prepaid_item())
CUSTOM_TEAM = monthly("team", "30", prepaid_item())
PACKS = {"messages": Decimal(300)}


def _rows(changes: list[PreviewAttachIncomingJson]) -> list[tuple[object, ...]]:
    return [(c["plan_id"], c["effective_at"], c["canceled_at"], c["expires_at"]) for c in changes]


def _on_team() -> Subscription:
    return Subscription(
        TEAM, anchor=START, started_at=START, period_start=START, period_end=END, prepaid_quantities=PACKS
    )


def test_a_plan_change_lists_the_plan_as_changed_and_as_it_stood() -> None:
    current = _on_team()
    previous = dataclasses.replace(current, plan=dataclasses.replace(TEAM, id="team@previous"))
    switch = quote_upgrade(previous, CUSTOM_TEAM, HALFWAY, {"messages": Decimal(500)})
    incoming, outgoing = update_changes_json("update_plan", "team", HALFWAY, PACKS, switch=switch)
    assert incoming == [incoming_json(switch)]  # as an attach of the changed plan lists it
    assert _rows(incoming) == [("team", None, None, None)]  # in place from now
    assert incoming[0]["feature_quantities"] == [{"feature_id": "messages", "quantity": 500}]
    assert _rows(outgoing) == [("team", HALFWAY, None, None)]  # as it stood, leaving now
    assert outgoing[0]["feature_quantities"] == [{"feature_id": "messages", "quantity": 300}]


def test_a_cancelled_plan_changed_goes_out_with_its_cancellation() -> None:
    current = _on_team()
    switch = quote_upgrade(current, CUSTOM_TEAM, HALFWAY, PACKS)
    cancellation, free = (START + 1, END), "free"
    incoming, outgoing = update_changes_json(
        "update_plan", "team", HALFWAY, PACKS, default_plan_id=free, cancellation=cancellation, switch=switch
    )
    assert _rows(incoming) == [("team", None, None, None)]  # no default: nothing is cancelled
    assert _rows(outgoing) == [("team", HALFWAY, START + 1, END)]


def test_a_plan_change_without_a_quote_lists_nothing() -> None:
    assert update_changes_json("update_plan", "team", HALFWAY, PACKS) == ([], [])
