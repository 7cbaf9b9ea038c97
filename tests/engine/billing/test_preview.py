"""Preview bodies render the same integer amounts the quotes charge."""

from __future__ import annotations

from reference_server.engine.billing import Subscription, quote_attach
from reference_server.engine.billing.preview import attach_preview_body
from tests.engine.builders import FREE, PREMIUM, PRO, D, monthly, ms, prepaid_item

START = ms(2026, 4, 1)
HALFWAY = ms(2026, 4, 16)
END = ms(2026, 5, 1)


def current(plan=PRO) -> Subscription:  # type: ignore[no-untyped-def]
    return Subscription(plan, anchor=START, started_at=START, period_start=START, period_end=END)


def test_upgrade_preview_totals_in_major_units() -> None:
    quote = quote_attach(current(), PREMIUM, HALFWAY)
    body = attach_preview_body("cus_1", [quote])
    assert body["total"] == 15
    assert body["subtotal"] == 15
    assert body["currency"] == "usd"
    assert [line["total"] for line in body["line_items"]] == [-10, 25]
    assert body["line_items"][1]["period"] == {"start": HALFWAY, "end": END}
    assert body["next_cycle"]["starts_at"] == END
    assert body["next_cycle"]["total"] == 50
    assert body["incoming"] == [
        {
            "plan_id": "premium",
            "feature_quantities": [],
            "effective_at": None,
            "canceled_at": None,
            "expires_at": None,
        }
    ]
    assert body["outgoing"][0]["plan_id"] == "pro"
    assert body["outgoing"][0]["expires_at"] == HALFWAY


def test_downgrade_preview_is_zero_with_a_scheduled_incoming_plan() -> None:
    quote = quote_attach(current(), FREE, HALFWAY)
    body = attach_preview_body("cus_1", [quote])
    assert body["total"] == 0
    assert body["line_items"] == []
    # A scheduled plan says when it starts, free or paid (one rule, as a cancel's scheduled default)
    assert body["incoming"][0]["effective_at"] == END
    assert body["outgoing"][0] == {
        "plan_id": "pro",
        "feature_quantities": [],
        "effective_at": END,
        "canceled_at": HALFWAY,
        "expires_at": END,
    }


def test_a_paid_downgrade_preview_says_when_the_scheduled_plan_starts() -> None:
    body = attach_preview_body("cus_1", [quote_attach(current(PREMIUM), PRO, HALFWAY)])
    assert body["total"] == 0
    assert body["incoming"][0]["plan_id"] == "pro"
    assert body["incoming"][0]["effective_at"] == END  # the subscription schedule's next phase
    assert body["outgoing"][0]["expires_at"] == END


def test_prepaid_preview_reports_quantities_and_fractional_totals() -> None:
    plan = monthly("pro", "19.99", prepaid_item(included=0, amount="0.15", units=1))
    body = attach_preview_body("cus_1", [quote_attach(None, plan, START, {"messages": D(3)})])
    assert body["total"] == 20.44
    assert body["incoming"][0]["feature_quantities"] == [{"feature_id": "messages", "quantity": 3}]
    assert body["next_cycle"]["total"] == 20.44
    assert body["next_cycle"]["usage_line_items"] == []
