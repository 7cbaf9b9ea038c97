"""The world the spec's code samples assume, built on a fresh reference server.

The samples name ``cus_123``, ``cus_456``, ``messages``, ``seats``, ``api_calls``, ``pro_plan``,
``addon_seats``, the referral program ``prog_123``, the codes ``REF123`` and ``REWARD10`` and the lock
``lock_abc123``, none of which a fresh server has. :func:`seed_sample_world` creates what exists
before any sample runs; :data:`ARRANGE` puts the server, right before one sample, in the state
that sample presumes (a lock held, a referral code issued), because earlier samples change it.
Everything goes through the public API except ``REF123``: Autumn draws referral codes at random,
so the code the sample redeems is written straight into the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from autumn_sdk import Autumn
from reference_server.store.tables.core import customers, referral_codes, reward_programs
from reference_server.testing import RunningServer

FEATURES: list[dict[str, object]] = [
    {"feature_id": "messages", "name": "Messages", "type_": "metered", "consumable": True},
    {"feature_id": "api_calls", "name": "API calls", "type_": "metered", "consumable": True},
    {"feature_id": "seats", "name": "Seats", "type_": "metered", "consumable": False},
    {"feature_id": "old-feature", "name": "Old feature", "type_": "boolean"},
]

SEAT_PRICE = {"amount": 5, "interval": "month", "billing_method": "prepaid", "billing_units": 1}
"""Seats are bought ahead (``feature_quantities`` in billing.update / multi_attach)."""

PLANS: list[dict[str, object]] = [
    {
        "plan_id": "pro_plan",
        "name": "Pro",
        "price": {"amount": 10, "interval": "month"},
        "items": [
            {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}},
            {"feature_id": "seats", "included": 5, "price": SEAT_PRICE},
        ],
    },
    {"plan_id": "trial_plan", "name": "Trial"},
    {
        "plan_id": "addon_seats",
        "name": "Extra seats",
        "add_on": True,
        "items": [{"feature_id": "seats", "included": 0, "price": SEAT_PRICE}],
    },
    {"plan_id": "unused_plan", "name": "Unused"},
]

REFERRAL_REWARD = {
    "feature_grant": {
        "id": "referral_messages",
        "name": "100 messages for a referral",
        "grants": [{"feature_id": "messages", "included": 100, "expiry": None}],
        "promo_codes": [{"code": "REFERRAL100", "max_uses": None}],
    }
}
PROMO_REWARD = {
    "feature_grant": {
        "id": "reward_10",
        "name": "10 free API calls",
        "grants": [{"feature_id": "api_calls", "included": 10, "expiry": None}],
        "promo_codes": [{"code": "REWARD10", "max_uses": None}],
    }
}
PROGRAM = {
    "id": "prog_123",
    "reward_id": "referral_messages",
    "redeem_on": "customer_creation",
    "received_by": "all",
}
REFERRAL_CODE = "REF123"
LOCK_ID = "lock_abc123"


def seed_sample_world(server: RunningServer, autumn: Autumn) -> None:
    """Create the catalogue, the second customer, the rewards and the referral program."""
    for feature in FEATURES:
        autumn.features.create(**feature)  # type: ignore[arg-type]
    for plan in PLANS:
        autumn.plans.create(**plan)  # type: ignore[arg-type]
    autumn.customers.get_or_create(customer_id="cus_456", name="Referred Friend")
    with server.client() as http:
        for path, body in (
            ("/v1/rewards.create", REFERRAL_REWARD),
            ("/v1/rewards.create", PROMO_REWARD),
            ("/v1/referral_programs.create", PROGRAM),
        ):
            http.post(path, json=body).raise_for_status()


def _issue_referral_code(server: RunningServer, autumn: Autumn) -> None:
    """``REF123`` is cus_123's code in prog_123 (referrals.create_code then returns it)."""
    engine = sa.create_engine(server.database_url)
    try:
        with engine.begin() as conn:
            customer = conn.execute(select_by_id(customers, "cus_123")).one()
            program = conn.execute(select_by_id(reward_programs, PROGRAM["id"])).one()
            conn.execute(
                sa.insert(referral_codes).values(
                    org_pk=customer.org_pk,
                    env=customer.env,
                    code=REFERRAL_CODE,
                    program_pk=program.pk,
                    customer_pk=customer.pk,
                    created_at=customer.created_at,
                )
            )
    finally:
        engine.dispose()


def select_by_id(table: sa.Table, row_id: str) -> sa.Select[Any]:
    return sa.select(table).where(table.c.id == row_id)


def _hold_lock(server: RunningServer, autumn: Autumn) -> None:
    """A check that reserved 3 messages under ``lock_abc123``, for finalize to confirm."""
    autumn.check(
        customer_id="cus_123",
        feature_id="messages",
        required_balance=3,
        lock={"enabled": True, "lock_id": LOCK_ID},
    )


def _grant_api_calls(server: RunningServer, autumn: Autumn) -> None:
    """The api_calls balance balances.update/delete act on.

    The createBalance sample sends neither ``included_grant`` nor ``unlimited``, which Autumn
    rejects for a metered feature, so the balance it meant to create is made here.
    """
    autumn.balances.create(
        customer_id="cus_123", feature_id="api_calls", included_grant=1000, reset={"interval": "month"}
    )


ARRANGE: dict[str, Callable[[RunningServer, Autumn], None]] = {
    "updateBalance": _grant_api_calls,
    "finalizeLock": _hold_lock,
    "createReferralCode": _issue_referral_code,
}
"""Run before the sample of that operation id (reference server only)."""
