"""What a ``billing.update`` (or its preview) asks for, and the checks on the request before and after
it is quoted: its intent, a checkout (``redirect_mode: "always"``), ``billing_cycle_anchor: "now"``,
the usages a customization carries over."""

from __future__ import annotations

from sqlalchemy import Connection

from autumn_sdk._generated.models import AttachCarryOverBalances
from reference_server.billing.convert import engine_subscription, is_customized
from reference_server.billing.payment_collection import rule_error
from reference_server.billing.quoted_update import QuotedUpdate
from reference_server.billing.resolve import UpdateRequest
from reference_server.engine.billing import BillingRuleError
from reference_server.engine.billing.checkout import CheckoutType
from reference_server.engine.billing.cycle_reset import check_cycle_reset
from reference_server.engine.billing.preview import UpdateIntent
from reference_server.errors import ApiError, invalid
from reference_server.service.subscriptions import Instance
from reference_server.store.catalog import Catalog


def update_intent(params: UpdateRequest) -> UpdateIntent:
    action = params.cancel_action
    if action in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        return action
    if params.version is not None:  # another version of the plan: a plan change, as in Autumn
        return "update_plan"
    if is_customized(params.customize):
        # a new shape of the plan (price, items, free trial): a plan change, which takes the given
        # quantities (else the current ones), as Autumn's computeUpdateSubscriptionIntent
        return "update_plan"
    if params.feature_quantities or params.license_quantities:
        return "update_quantity"
    return "none"


CHECKOUT_TYPE: CheckoutType = "autumn_checkout"
"""An update sent through checkout (``redirect_mode: "always"``) is confirmed on the checkout page,
with the saved card or a new one (Autumn's update uses its own checkout page for it, never Stripe's)."""


def check_update_redirect(params: UpdateRequest) -> None:
    """``redirect_mode: "always"`` sends the change to a checkout page, as Autumn's update does; like
    Autumn, it is refused for a cancel or an uncancel and for an update that changes nothing.
    (``never`` and ``if_required`` are the same for an update, in Autumn as here: the change is charged
    at once, and a charge that needs the customer answers a payment link with ``required_action``.)"""
    if params.redirect_mode != "always":
        return
    intent = update_intent(params)
    if intent in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        raise invalid("Autumn checkout does not support cancel or uncancel updates", "invalid_request")
    if intent == "none":
        raise invalid(
            "Cannot create checkout when no billing changes will happen in this update", "invalid_request"
        )


def check_checkout_quantities(q: QuotedUpdate) -> None:
    """A checkout for a quantity update that leaves every quantity as it is would sell nothing."""
    quote = q.quantities
    always = q.params.redirect_mode == "always"
    if always and quote is not None and not any(quote.balance_deltas.values()):
        raise invalid(
            "Cannot create checkout when quantities are not updated or adjustable", "invalid_request"
        )


def recalculates(params: UpdateRequest) -> bool:
    """``recalculate_balances: {enabled: true}``: the balance of each feature the update sets a quantity
    for restarts from its new grant (its usage so far this cycle no longer counts against it); without it
    the balance moves by the quantity's difference and the usage stays.  As Autumn says, it applies to an
    update of feature quantities only: with anything else it would do nothing, so it is refused."""
    asked = params.recalculate_balances
    if asked is None or not asked.enabled:
        return False
    if update_intent(params) != "update_quantity" or not params.feature_quantities:
        raise invalid(
            "recalculate_balances only applies to an update of feature_quantities "
            "(without a cancel_action, version or customize)",
            "invalid_inputs",
        )
    return True


def usage_carry(params: UpdateRequest) -> AttachCarryOverBalances:
    """``carry_over_usages`` of an update that replaces the plan's items (``customize``): unlike an attach,
    Autumn carries every consumable feature's usage when the field is left out; ``enabled: false``
    carries none, ``feature_ids`` only those.  Usage of continuous features (seats in use) always stays."""
    return params.carry_over_usages or AttachCarryOverBalances(enabled=True)


def check_anchor_now(conn: Connection, cat: Catalog, inst: Instance, params: UpdateRequest, now: int) -> None:
    """``billing_cycle_anchor: "now"``: a plan change (``customize`` or ``version``, with or without
    quantities) of a plan with a recurring price restarts the subscription's cycle at the request,
    crediting the unused time and charging a whole new period. As Autumn
    (``handleUpdateSubscriptionBillingCycleAnchorErrors``), it is 400 for a one-off plan, during a free
    trial, with a cancel action and with an update of quantities only (``feature_quantities`` or
    ``license_quantities`` without a plan change); on a free plan or with an update of nothing, and
    beside a free trial given (which starts its own cycle at its end), it is refused here rather than
    silently ignored. One check for every plan, free or paid, before the update is quoted.
    Not one rule with :func:`.schedules._check_anchor_now`: that one checks a schedule's first-phase plans,
    which start their cycle now anyway, and refuses only one replacing a paid plan of its group."""
    if params.billing_cycle_anchor != "now":
        return
    if params.customize is not None and params.customize.free_trial is not None:
        # a trial given starts now and decides the next period's start: an anchor reset would be dropped
        raise invalid(
            "billing_cycle_anchor 'now' cannot be combined with a free trial: the trial starts now and "
            "the first period begins when it ends"
        )
    sub = engine_subscription(conn, cat, inst)
    if sub is None:
        raise invalid(f"Plan {inst.plan_id} is not available")
    intent = update_intent(params)
    if not sub.plan.is_free:
        try:
            check_cycle_reset(sub.plan, sub.trialing_at(now))
        except BillingRuleError as exc:
            raise rule_error(exc) from exc
    if intent in ("cancel_immediately", "cancel_end_of_cycle", "uncancel"):
        raise invalid("billing_cycle_anchor cannot be used together with a cancel action")
    if intent == "update_quantity":  # Autumn's change of seats (license_quantities) comes first
        field = "license_quantities" if params.license_quantities else "feature_quantities"
        raise invalid(f"billing_cycle_anchor cannot be used together with {field}")
    if intent != "update_plan" or sub.plan.is_free:
        raise _cycle_reset_unsupported()


def _cycle_reset_unsupported() -> ApiError:
    return ApiError(
        400,
        "unsupported_field",
        "billing_cycle_anchor 'now' on a free plan, or on an update that changes nothing, is part of "
        "Autumn's API but the reference server does not support it yet; leave it out (see the README's "
        "list of unsupported fields)",
    )
