"""``engine.billing.preview.update_changes_json``: what one ``billing.update`` brings in and takes out,
as ``billing.preview_update`` and each subscription of ``billing.preview_multi_update`` list it; and
``scheduled_start``, the one ``effective_at`` rule of every incoming plan (attach or cancel, free or
paid)."""

from __future__ import annotations

from decimal import Decimal

from autumn_sdk._generated.json_types import PreviewAttachIncomingJson
from reference_server.engine.billing import Subscription, quote_attach
from reference_server.engine.billing.preview import incoming_json, scheduled_start, update_changes_json
from tests.engine.builders import FREE, PRO, ms

NOW = 1_000
END = 5_000
CANCELED = 500
QUANTITIES = {"credits": Decimal(3)}


def _rows(changes: list[PreviewAttachIncomingJson]) -> list[tuple[object, ...]]:
    return [(c["plan_id"], c["effective_at"], c["canceled_at"], c["expires_at"]) for c in changes]


def test_cancel_at_period_end_lists_the_plan_going_out_at_its_end() -> None:
    incoming, outgoing = update_changes_json(
        "cancel_end_of_cycle", "pro", NOW, QUANTITIES, ends_at=END, default_plan_id="free"
    )
    assert _rows(incoming) == [("free", END, None, None), ("pro", None, NOW, END)]
    assert _rows(outgoing) == [("pro", END, NOW, END)]
    assert outgoing[0]["feature_quantities"] == [{"feature_id": "credits", "quantity": 3}]


def test_cancel_now_lists_the_plan_going_out_now() -> None:
    incoming, outgoing = update_changes_json(
        "cancel_immediately", "pro", NOW, QUANTITIES, ends_at=NOW, default_plan_id="free"
    )
    assert _rows(incoming) == [("free", None, None, None)]
    assert _rows(outgoing) == [("pro", NOW, None, NOW)]


def test_uncancel_lists_the_plan_as_it_stood_going_out_now() -> None:
    incoming, outgoing = update_changes_json(
        "uncancel", "pro", NOW, QUANTITIES, default_plan_id="free", cancellation=(CANCELED, END)
    )
    assert _rows(incoming) == [("pro", None, None, None)]  # no cancellation, no default
    assert _rows(outgoing) == [("pro", NOW, CANCELED, END)]  # with the cancellation it leaves
    assert incoming[0]["feature_quantities"] == outgoing[0]["feature_quantities"]
    # uncancelling a plan that is not cancelled still lists it both ways, as Autumn does
    incoming, outgoing = update_changes_json("uncancel", "pro", NOW, {})
    assert (_rows(incoming), _rows(outgoing)) == ([("pro", None, None, None)], [("pro", NOW, None, None)])


def test_a_quantity_change_lists_the_plan_before_and_after() -> None:
    incoming, outgoing = update_changes_json(
        "update_quantity", "pro", NOW, QUANTITIES, new_quantities={"credits": Decimal(5)}
    )
    assert [i["feature_quantities"] for i in incoming] == [[{"feature_id": "credits", "quantity": 5}]]
    assert [o["feature_quantities"] for o in outgoing] == [[{"feature_id": "credits", "quantity": 3}]]
    assert _rows(outgoing) == [("pro", NOW, None, None)]
    assert update_changes_json("none", "pro", NOW, QUANTITIES) == ([], [])


def test_a_scheduled_incoming_plan_says_when_it_starts_free_or_paid() -> None:
    assert scheduled_start(END, NOW) == END
    assert scheduled_start(NOW, NOW) is None and scheduled_start(None, NOW) is None
    start, halfway, end = ms(2026, 4, 1), ms(2026, 4, 16), ms(2026, 5, 1)
    current = Subscription(PRO, anchor=start, started_at=start, period_start=start, period_end=end)
    # an attach's scheduled free plan and a cancel's scheduled default start alike: at the period's end
    attached = incoming_json(quote_attach(current, FREE, halfway))
    cancelled, _ = update_changes_json(
        "cancel_end_of_cycle", "pro", halfway, {}, ends_at=end, default_plan_id=FREE.id
    )
    assert attached["effective_at"] == cancelled[0]["effective_at"] == end
