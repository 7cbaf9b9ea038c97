"""A plan instance's end on its mirrored Stripe Subscription.

Autumn sets a Stripe subscription's ``cancel_at`` to when its plan ends; the mirror does the same for an
end other than Stripe's period end (``ends_at``, a later plan of the group starting), keeps
``cancel_at_period_end`` for a cancellation at the period end, and unsets either once the end is removed
(uncancel, the subscription handed over to the plan that starts).  The pure desired state first, then
through the real server over HTTP with the organization's key on localstripe (SQLite and PostgreSQL).

Stripe takes only a ``cancel_at`` in the future on its own clock, so the HTTP scenarios set the server's
clock to the real time first; an end in Stripe's past is kept an hour ahead (the last scenario).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from reference_server.processors.stripe.catalog import PlanObjects, StripePrice, fixed_prices
from reference_server.processors.stripe.subscription_state import (
    MIN_ANCHOR_DELAY_S,
    cancel_at,
    desired_mirror,
    wanted_prices,
)

from .helpers import DAY, START, Tenant

NOW_MS = 1_700_000_000_000
PERIOD_END = NOW_MS + 30 * DAY


def _plan() -> Any:
    return SimpleNamespace(
        price={"amount": 20, "interval": "month"},
        items=[],
        config={"currency": "usd"},
        version=1,
        env="sandbox",
        add_on=False,
        group="main",
    )


def _mirror(**instance: Any) -> Any:
    values: dict[str, Any] = {
        "pk": 7,
        "plan_id": "pro",
        "subscription_id": "sub_pro",
        "quantity": 1,
        "prepaid_quantities": {},
        "custom_plan": None,
        "entity_pk": None,
        "canceled_at": None,
        "expires_at": None,
        "trial_ends_at": None,
        "current_period_end": PERIOD_END,
        "processor_metadata": None,
    }
    values.update(instance)
    inst, plan = SimpleNamespace(**values), _plan()
    prices = {p.key: StripePrice(p, f"price_{p.key}") for p in fixed_prices(plan)}
    objects = PlanObjects("pro", 1, "prod_pro", prices)
    return desired_mirror(inst, plan, wanted_prices(inst, plan), objects, "u1", None, NOW_MS)


def test_the_desired_state_of_each_end() -> None:
    running = _mirror()
    assert (running.cancel_at, running.cancel_at_period_end) == (None, False)
    assert "cancel_at" not in running.state  # rows written before ends were mirrored stay current

    ends = NOW_MS + 10 * DAY  # ends_at: an expiry, not a cancellation
    dated = _mirror(expires_at=ends)
    assert (dated.cancel_at, dated.cancel_at_period_end) == (ends, False)
    assert dated.state["cancel_at"] == ends

    at_period_end = _mirror(canceled_at=NOW_MS, expires_at=PERIOD_END)  # cancel_end_of_cycle
    assert (at_period_end.cancel_at, at_period_end.cancel_at_period_end) == (None, True)

    # canceled to expire when a later plan of the group starts, mid-period
    replaced = _mirror(canceled_at=NOW_MS, expires_at=ends)
    assert (replaced.cancel_at, replaced.cancel_at_period_end) == (ends, False)

    # while trialing, Stripe's period end is the trial's
    trial_ends = NOW_MS + 7 * DAY
    trial = _mirror(trial_ends_at=trial_ends, canceled_at=NOW_MS, expires_at=trial_ends)
    assert (trial.cancel_at, trial.cancel_at_period_end) == (None, True)

    # an ends_at that falls on the period end is still its own end (not a cancellation)
    on_boundary = _mirror(expires_at=PERIOD_END)
    assert (on_boundary.cancel_at, on_boundary.cancel_at_period_end) == (PERIOD_END, False)


def test_cancel_at_is_kept_in_stripes_future() -> None:
    real_now = NOW_MS // 1000
    assert cancel_at(_mirror(expires_at=NOW_MS + 10 * DAY), real_now) == (NOW_MS + 10 * DAY) // 1000
    # an end in Stripe's past (a server test clock behind the real time): an hour ahead
    assert cancel_at(_mirror(expires_at=NOW_MS - DAY), real_now) == real_now + MIN_ANCHOR_DELAY_S


# ---------------------------------------------------------------- through the server, on localstripe


def _real_time(t: Tenant) -> int:
    """Set the server's clock to the real time (whole seconds): the server's ends are Stripe's."""
    now = int(time.time()) * 1000
    t.clock.set(now)
    return now


def _subscription(t: Tenant, customer_id: str = "u1") -> Any:
    listed = t.stripe.v1.subscriptions.list(
        {"customer": t.stripe_customer(customer_id), "status": "all", "limit": 100}
    ).data
    (only,) = listed
    return only


def _end(t: Tenant, stripe_id: str) -> tuple[str, int | None, bool]:
    sub = t.stripe.v1.subscriptions.retrieve(stripe_id)
    return str(sub.status), sub.cancel_at, bool(sub.cancel_at_period_end)


def test_ends_at_is_cancel_at_and_uncancel_unsets_it(tenant: Tenant) -> None:
    now = _real_time(tenant)
    ends = now + 10 * DAY
    tenant.subscribe("u1", "pro", ends_at=ends)
    (plan,) = tenant.customer()["subscriptions"]
    assert (plan["plan_id"], plan["expires_at"], plan["canceled_at"]) == ("pro", ends, None)
    sub = _subscription(tenant)
    assert _end(tenant, sub.id) == ("active", ends // 1000, False)

    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="uncancel")
    assert tenant.customer()["subscriptions"][0]["expires_at"] is None
    assert _end(tenant, sub.id) == ("active", None, False)

    # a cancellation at the period end is Stripe's cancel_at_period_end (its cancel_at: the period end)
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    status, at, period_end = _end(tenant, sub.id)
    current = tenant.stripe.v1.subscriptions.retrieve(sub.id)["current_period_end"]
    assert (status, at, period_end) == ("active", current, True)
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="uncancel")
    assert _end(tenant, sub.id) == ("active", None, False)
    assert _subscription(tenant).id == sub.id  # one subscription throughout


def test_a_later_plan_starting_is_cancel_at_until_it_takes_the_subscription_over(tenant: Tenant) -> None:
    now = _real_time(tenant)
    tenant.subscribe("u1", "pro")
    sub = _subscription(tenant)
    assert _end(tenant, sub.id) == ("active", None, False)

    starts = now + 10 * DAY  # mid-period: pro is canceled to expire then, not at its period end
    tenant("billing.attach", customer_id="u1", plan_id="premium", starts_at=starts)
    plans = {s["plan_id"]: s for s in tenant.customer()["subscriptions"]}
    assert plans["pro"]["expires_at"] == starts and plans["pro"]["canceled_at"] is not None
    assert plans["premium"]["status"] == "scheduled"
    assert _end(tenant, sub.id) == ("active", starts // 1000, False)

    # premium starts: pro's subscription is handed over to it, its end unset
    tenant.clock.set(starts + 1000)
    assert {s["plan_id"]: s["status"] for s in tenant.customer()["subscriptions"]} == {"premium": "active"}
    handed = tenant.stripe.v1.subscriptions.retrieve(sub.id)
    assert handed.metadata["autumn_plan_id"] == "premium"
    assert _end(tenant, sub.id) == ("active", None, False)
    assert _subscription(tenant).id == sub.id


def test_an_end_in_stripes_past_is_kept_an_hour_ahead(tenant: Tenant) -> None:
    # the server's test clock (START) is behind the real time: its end is in Stripe's past
    ends = START + 10 * DAY
    before = int(time.time())
    tenant.subscribe("u1", "pro", ends_at=ends)
    after = int(time.time())
    status, at, _ = _end(tenant, _subscription(tenant).id)  # (at the anchor, also kept an hour ahead)
    assert status == "active"
    assert at is not None and before + MIN_ANCHOR_DELAY_S <= at <= after + MIN_ANCHOR_DELAY_S
