"""Pure billing logic: money, periods, pricing, proration, quotes and previews (no I/O).

The server core maps stored plans and subscriptions onto :mod:`.model` dataclasses, asks the quotes
(:mod:`.attach_quotes`, :mod:`.quantity_quotes`, :mod:`.closing_quotes`, :mod:`.seats`) what a change
costs, charges the quote's ``due_now`` through a payment processor and renders previews with
:mod:`.preview`, so the preview and the charge are computed by the same code.
"""

from .attach_quotes import AttachQuote, quote_attach, quote_downgrade, quote_new, quote_upgrade
from .closing_quotes import CancelQuote, RenewalQuote, quote_cancel, quote_final_usage, quote_renewal
from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, LineKind, NextCycle, UsageLine
from .model import (
    BasePrice,
    BillingMethod,
    FreeTrial,
    ItemPrice,
    OnDecrease,
    OnIncrease,
    Plan,
    PlanItem,
    Proration,
    Subscription,
    Tier,
    TierBehavior,
)
from .periods import Interval, Period, add_interval, next_boundary_after, period_at
from .quantity_quotes import QuantityQuote, quote_quantity_change
from .seats import SeatChangeQuote
from .transitions import ChangeKind, classify
from .trials import TrialChoice, TrialEndOutcome, choose_trial, trial_end_outcome

__all__ = [
    "AttachQuote",
    "BasePrice",
    "BillingMethod",
    "BillingRuleError",
    "CancelQuote",
    "ChangeKind",
    "FreeTrial",
    "Interval",
    "InvoiceDraft",
    "ItemPrice",
    "LineItem",
    "LineKind",
    "NextCycle",
    "OnDecrease",
    "OnIncrease",
    "Period",
    "Plan",
    "PlanItem",
    "Proration",
    "QuantityQuote",
    "RenewalQuote",
    "SeatChangeQuote",
    "Subscription",
    "Tier",
    "TierBehavior",
    "TrialChoice",
    "TrialEndOutcome",
    "UsageLine",
    "add_interval",
    "choose_trial",
    "classify",
    "next_boundary_after",
    "period_at",
    "quote_attach",
    "quote_cancel",
    "quote_downgrade",
    "quote_final_usage",
    "quote_new",
    "quote_quantity_change",
    "quote_renewal",
    "quote_upgrade",
    "trial_end_outcome",
]
