"""Free-trial decisions: whether a trial starts, when it ends, and what happens then."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .model import FreeTrial, Plan
from .periods import add_duration


@dataclass(frozen=True)
class TrialChoice:
    """A trial that starts with the attach."""

    ends_at: int
    card_required: bool
    on_end: str


class TrialEndOutcome(str, Enum):
    """What the trial end does to the subscription."""

    BILL = "bill"  # start charging: the first full period begins at the trial end
    EXPIRE_TO_DEFAULT = "expire_to_default"  # no card: the plan ends, the group's default plan returns
    REVERT = "revert"  # restore the plan the customer had before


def choose_trial(
    plan: Plan,
    now: int,
    trial_used: bool,
    override: FreeTrial | None = None,
    skip_trial: bool = False,
) -> TrialChoice | None:
    """The trial to start, if any.

    A plan's own trial is used once per customer (``trial_used``); a custom trial from ``customize``
    bypasses that check; ``customize.free_trial: null`` skips the trial altogether.
    """
    if skip_trial:
        return None
    trial = override or plan.free_trial
    if trial is None or (override is None and trial_used):
        return None
    return TrialChoice(
        ends_at=add_duration(now, trial.duration_type, trial.duration_length),
        card_required=trial.card_required,
        on_end=trial.on_end,
    )


def trial_end_outcome(trial: FreeTrial | None, has_payment_method: bool) -> TrialEndOutcome:
    """Decide the trial end: revert when asked, bill when a card is (or must be) on file, else expire."""
    if trial is not None and trial.on_end == "revert":
        return TrialEndOutcome.REVERT
    if has_payment_method:
        return TrialEndOutcome.BILL
    if trial is None or trial.card_required:
        return TrialEndOutcome.BILL
    return TrialEndOutcome.EXPIRE_TO_DEFAULT
