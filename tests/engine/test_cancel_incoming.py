"""``engine.billing.preview.cancel_incoming_json``: what a cancel or an uncancel brings in, as Autumn's
update previews list it (the group's free default first, then the plan itself when it stays)."""

from __future__ import annotations

from decimal import Decimal

from autumn_sdk._generated.json_types import PreviewAttachIncomingJson
from reference_server.engine.billing.preview import cancel_incoming_json

NOW = 1_000
END = 5_000
QUANTITIES = {"credits": Decimal(3)}


def _rows(incoming: list[PreviewAttachIncomingJson]) -> list[tuple[object, ...]]:
    return [(i["plan_id"], i["effective_at"], i["canceled_at"], i["expires_at"]) for i in incoming]


def test_cancel_at_period_end_schedules_the_default_then_keeps_the_plan_until_it_ends() -> None:
    incoming = cancel_incoming_json("cancel_end_of_cycle", "pro", NOW, END, QUANTITIES, "free")
    assert _rows(incoming) == [("free", END, None, None), ("pro", None, NOW, END)]
    assert incoming[0]["feature_quantities"] == []
    assert incoming[1]["feature_quantities"] == [{"feature_id": "credits", "quantity": 3}]
    # an add-on (no default): only the plan itself
    assert _rows(cancel_incoming_json("cancel_end_of_cycle", "pro", NOW, END, {}, None)) == [
        ("pro", None, NOW, END)
    ]


def test_cancel_now_brings_in_only_the_default_at_once() -> None:
    assert _rows(cancel_incoming_json("cancel_immediately", "pro", NOW, NOW, QUANTITIES, "free")) == [
        ("free", None, None, None)
    ]
    assert cancel_incoming_json("cancel_immediately", "pro", NOW, NOW, QUANTITIES, None) == []
    # a plan with no period ends now even at "end of cycle": the default comes back at once
    assert _rows(cancel_incoming_json("cancel_end_of_cycle", "pro", NOW, NOW, {}, "free")) == [
        ("free", None, None, None),
        ("pro", None, NOW, NOW),
    ]


def test_uncancel_brings_the_plan_back_without_its_cancellation() -> None:
    assert _rows(cancel_incoming_json("uncancel", "pro", NOW, None, QUANTITIES, "free")) == [
        ("pro", None, None, None)
    ]
    assert cancel_incoming_json("update_quantity", "pro", NOW, None, QUANTITIES, "free") == []
