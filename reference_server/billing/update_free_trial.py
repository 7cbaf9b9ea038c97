"""A ``billing.update``'s free trial: ``free_trial`` (beyond Autumn's spec, as the official SDK sends it; a
shorthand for ``customize.free_trial``, which wins when both are given, folded into it by
free_trial_shorthand.fold_free_trial as attach's is) and ``customize.free_trial``.

As Autumn's update: a trial given starts a fresh trial now, whatever the subscription is doing (paying:
its unused time is credited and its next invoice is the first period after the trial; trialing: the trial
is replaced, longer or shorter; a trial that already ended: a new one); ``null`` ends a running trial now
(the plan is billed from now, a whole period) and changes nothing otherwise; leaving it out keeps a running
trial as it is. Either way the update is a plan change (``update_plan``), quoted and applied as a
customization. As Autumn, ``on_end: "revert"`` can only be set by an attach, and a revert trial can only be
adjusted in place (not made to bill, nor removed: ``cancel_action`` ends it). Where Autumn is silent, this
server refuses a trial on a plan without a recurring price (there is nothing for the trial to defer).
"""

from __future__ import annotations

from autumn_sdk._generated.models import AttachCustomize
from reference_server.engine.billing import Subscription
from reference_server.engine.billing.model import Plan as EnginePlan
from reference_server.engine.billing.periods import add_duration
from reference_server.engine.billing.trials import TrialChoice
from reference_server.errors import invalid


def asks_trial_change(customize: AttachCustomize | None) -> bool:
    """Whether the update's ``customize`` names a free trial (a value or ``null``)."""
    return customize is not None and "free_trial" in customize.model_fields_set


def update_trial(
    customize: AttachCustomize | None, current: Subscription, target: EnginePlan, now: int
) -> TrialChoice | None:
    """The trial the updated subscription runs (None: none, it is billed), as Autumn's update decides it.

    ``target`` is the plan as customized (its ``free_trial`` the one the request gives, if any)."""
    running = current.trialing_at(now)
    was_revert = (
        running and current.plan.free_trial is not None and current.plan.free_trial.on_end == "revert"
    )
    if not asks_trial_change(customize):
        if not running:
            return None
        assert current.trial_ends_at is not None
        kept = current.plan.free_trial
        return TrialChoice(
            ends_at=current.trial_ends_at,
            card_required=kept.card_required if kept is not None else True,
            on_end=kept.on_end if kept is not None else "bill",
        )
    given = target.free_trial
    if given is None:
        if was_revert:
            raise invalid(
                "Cannot remove a revert trial. Use cancel_action to end it and restore the previous plan."
            )
        return None
    if given.on_end == "revert" and not was_revert:
        raise invalid("on_end: 'revert' can only be set when attaching a plan.")
    if was_revert and given.on_end != "revert":
        raise invalid(
            "Cannot change on_end of a revert trial. Attach the plan with on_end: 'bill' to convert it."
        )
    if target.billing_interval() is None or target.is_free:
        raise invalid("free_trial can only be given on an update of a plan with a recurring price")
    return TrialChoice(
        ends_at=add_duration(now, given.duration_type, given.duration_length),
        card_required=given.card_required,
        on_end=given.on_end,
    )
