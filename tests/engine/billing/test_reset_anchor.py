"""``reset_anchor`` (``billing_cycle_anchor: "now"``): an upgrade's cycle restarts at the change."""

from __future__ import annotations

import pytest

from reference_server.engine.billing import (
    BasePrice,
    BillingRuleError,
    ChangeKind,
    Interval,
    Plan,
    Subscription,
    quote_attach,
)
from reference_server.engine.billing.periods import Period, add_interval
from reference_server.engine.billing.trials import TrialChoice
from tests.engine.builders import PREMIUM, PRO, D, ms

START = ms(2026, 4, 1)  # April has 30 days
TENTH = ms(2026, 4, 11)


def _sub(plan: Plan, start: int = START) -> Subscription:
    interval = plan.billing_interval()
    end = add_interval(start, *interval) if interval else None
    return Subscription(
        plan, anchor=start, started_at=start, period_start=start if end else None, period_end=end
    )


def test_an_upgrade_restarts_its_cycle_and_charges_a_whole_period() -> None:
    kept = quote_attach(_sub(PRO), PREMIUM, TENTH)
    reset = quote_attach(_sub(PRO), PREMIUM, TENTH, reset_anchor=True)
    assert (kept.anchor, kept.period) == (START, Period(START, ms(2026, 5, 1)))
    assert (reset.kind, reset.anchor, reset.period) == (
        ChangeKind.UPGRADE,
        TENTH,
        Period(TENTH, ms(2026, 5, 11)),
    )
    assert kept.total == 2000  # -1333 unused Pro, +3333 Premium to May 1st
    assert reset.total == 3667  # -1333 unused Pro, +5000 for a whole month from now
    assert reset.next_cycle is not None and reset.next_cycle.starts_at == ms(2026, 5, 11)


def test_a_new_plan_starts_now_either_way() -> None:
    assert quote_attach(None, PRO, TENTH, reset_anchor=True) == quote_attach(None, PRO, TENTH)


@pytest.mark.parametrize(
    ("current", "plan", "message"),
    [
        (_sub(PREMIUM), PRO, "scheduled switches"),
        (None, Plan("pack", "Pack", price=BasePrice(D("5"), Interval.ONE_OFF), add_on=True), "one-off"),
    ],
)
def test_no_cycle_to_restart_is_refused(current: Subscription | None, plan: Plan, message: str) -> None:
    with pytest.raises(BillingRuleError, match=message):
        quote_attach(current, plan, TENTH, reset_anchor=True)


def test_a_trial_is_refused() -> None:
    trial = TrialChoice(ends_at=TENTH + 14 * 86_400_000, card_required=True, on_end="charge")
    with pytest.raises(BillingRuleError, match="free trial"):
        quote_attach(None, PRO, TENTH, trial=trial, reset_anchor=True)
