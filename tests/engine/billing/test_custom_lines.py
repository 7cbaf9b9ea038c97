"""``with_custom_lines``: the caller's lines replace an immediate change's computed invoice, and only
an immediate change of an existing paid subscription takes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reference_server.engine.billing import (
    BillingRuleError,
    ChangeKind,
    LineKind,
    Plan,
    Subscription,
    quote_attach,
)
from reference_server.engine.billing.custom_lines import CustomLine, with_custom_lines
from reference_server.engine.billing.periods import add_interval
from tests.engine.builders import FREE, PREMIUM, PRO, PRO_TRIAL, ms

START = ms(2026, 4, 1)
HALFWAY = ms(2026, 4, 16)
LINES = [CustomLine(Decimal("12.50"), "Agreed upgrade"), CustomLine(Decimal("-2"), "Credit")]


def _sub(plan: Plan, start: int = START) -> Subscription:
    interval = plan.billing_interval()
    end = add_interval(start, *interval) if interval else None
    return Subscription(
        plan, anchor=start, started_at=start, period_start=start if end else None, period_end=end
    )


def test_the_lines_replace_the_computed_invoice_and_keep_the_rest() -> None:
    current = _sub(PRO)
    computed = quote_attach(current, PREMIUM, HALFWAY)
    assert computed.kind is ChangeKind.UPGRADE and computed.total != 1050
    quote = with_custom_lines(computed, current, LINES)
    assert [(line.kind, line.description, line.amount) for line in quote.due_now.lines] == [
        (LineKind.CUSTOM, "Agreed upgrade", 1250),
        (LineKind.CUSTOM, "Credit", -200),
    ]
    assert quote.total == 1050 and quote.due_now.currency == computed.due_now.currency
    assert all(line.plan_id == PREMIUM.id for line in quote.due_now.lines)
    assert (quote.next_cycle, quote.anchor, quote.period) == (
        computed.next_cycle,
        computed.anchor,
        computed.period,
    )


@pytest.mark.parametrize(
    ("current", "plan"),
    [
        (None, PRO),  # a first paid plan
        (_sub(FREE), PRO),  # from a free plan: a new subscription
        (_sub(PREMIUM), PRO),  # a downgrade waits for the period end
    ],
)
def test_a_change_without_a_subscription_to_update_is_refused(
    current: Subscription | None, plan: Plan
) -> None:
    quote = quote_attach(current, plan, HALFWAY)
    with pytest.raises(BillingRuleError, match="existing subscription"):
        with_custom_lines(quote, current, LINES)


def test_a_change_during_a_trial_is_refused() -> None:
    trialing = Subscription(
        PRO_TRIAL,
        anchor=START,
        started_at=START,
        period_start=START,
        period_end=add_interval(START, *PRO_TRIAL.billing_interval() or ("month", 1)),
        trial_ends_at=START + 14 * 86_400_000,
    )
    quote = quote_attach(trialing, PREMIUM, HALFWAY - 10 * 86_400_000)
    with pytest.raises(BillingRuleError, match="trial"):
        with_custom_lines(quote, trialing, LINES)
