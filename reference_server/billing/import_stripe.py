"""``billing.import``'s read of a linked Stripe subscription (``link.subscription_id``), for what the
payload leaves out: its status, start, period end and a cancellation.  Read, never written, through the
customer's Stripe processor; without Stripe, or for a subscription Stripe cannot find, the plan is
imaged from the payload alone, as Autumn does.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.billing.processor_choice import processors_of
from reference_server.processors.stripe_accounts import stripe_processor_for
from reference_server.service.context import Ctx


@dataclass(frozen=True)
class Hydration:
    """What a linked Stripe subscription says, for the fields the payload left out."""

    now: int = 0
    status: str | None = None
    started_at: int | None = None
    period_end: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None


STRIPE_STATUS = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "unpaid": "past_due",
    "canceled": "expired",
    "incomplete_expired": "expired",
}


def _seconds(value: Any) -> int | None:
    return int(value) * 1000 if value else None


def _period_end(subscription: dict[str, Any]) -> int | None:
    """The latest period end of a Stripe subscription (on its items since API 2025-03-31)."""
    ends = [item.get("current_period_end") for item in (subscription.get("items") or {}).get("data") or []]
    ends.append(subscription.get("current_period_end"))
    present = [int(e) for e in ends if e]
    return max(present) * 1000 if present else None


def read_subscriptions(
    ctx: Ctx, conn: Connection, customer_pk: int, subscription_ids: Collection[str], now: int
) -> dict[str, Hydration]:
    """What each Stripe subscription says (at ``now``), by id; one Stripe cannot find is left out, and
    all of them when the customer has no Stripe processor."""
    if not subscription_ids:
        return {}
    stripe_processor = stripe_processor_for(processors_of(ctx.state), conn, customer_pk)
    if stripe_processor is None:
        return {}
    found: dict[str, Hydration] = {}
    for sub_id in subscription_ids:
        try:
            sub: dict[str, Any] = stripe_processor.client.v1.subscriptions.retrieve(sub_id).to_dict()
        except stripe.StripeError:
            continue
        cancel_at = _seconds(sub.get("cancel_at"))
        if sub.get("cancel_at_period_end"):
            cancel_at = cancel_at or _period_end(sub)
        found[sub_id] = Hydration(
            now=now,
            status=STRIPE_STATUS.get(str(sub.get("status"))),
            started_at=_seconds(sub.get("start_date")),
            period_end=_period_end(sub),
            canceled_at=_seconds(sub.get("canceled_at")),
            ended_at=_seconds(sub.get("ended_at")) or cancel_at,
        )
    return found
