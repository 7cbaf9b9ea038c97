"""Where ``billing_cycle_anchor: "now"`` can restart a plan's billing cycle, as Autumn decides it.

An attach or an update may ask for the cycle to start again at the request; a plan without a cycle
(one-off) or in a free trial (the trial decides when the cycle starts) cannot, whatever the change.
"""

from __future__ import annotations

from .errors import BillingRuleError
from .model import Plan


def check_cycle_reset(plan: Plan, in_trial: bool) -> None:
    """Raise BillingRuleError when ``plan`` (the plan the change leaves in place) has no cycle to restart."""
    if plan.billing_interval() is None:
        raise BillingRuleError(
            "billing_cycle_anchor is not supported for one-off products. One-off products do not have a "
            "recurring billing cycle."
        )
    if in_trial:
        raise BillingRuleError(
            "billing_cycle_anchor cannot be used together with a free trial. The trial already controls "
            "the billing cycle start."
        )
