"""The reference server behind the handler tests, with a small catalog the hooks can use.

``reference`` is a session fixture (imported by the handler and browser conftests): one real
reference server (``reference_server.testing.run_server``), seeded through the SDK with features
whose ids contain underscores (so a blind camelCase rename would show), a free and a paid plan, and
a referral program.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from autumn_sdk import Autumn

FEATURE = "api_calls"
"""Metered, consumable: the balance the pages read and ``check`` gates on."""
SEATS = "team_seats"
"""Metered, not consumable: entities are created against it."""
FLAG = "priority_support"
"""Boolean: appears under ``flags``."""
REFERRAL_PROGRAM = "friends_program"
"""Referral program whose reward grants ``REFERRAL_BONUS`` API calls to both sides."""
REFERRAL_BONUS = 25
FREE_PLAN = "free_tier"
PAID_PLAN = "pro_monthly"
FREE_INCLUDED = 50
PAID_PRICE = 20


@dataclass(frozen=True)
class LiveAutumn:
    """A running, seeded reference server and an SDK client on it (for setup and checks)."""

    url: str
    secret_key: str
    autumn: Autumn

    @staticmethod
    def new_customer_id(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12]}"


def seed_referral_program(url: str, secret_key: str) -> None:
    """The reward (a feature grant) and the referral program that gives it to both sides."""
    headers = {"Authorization": f"Bearer {secret_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as admin:
        admin.post(
            "/v1/rewards.create",
            json={
                "feature_grant": {
                    "id": "referral_bonus",
                    "name": "Referral bonus",
                    "grants": [{"feature_id": FEATURE, "included": REFERRAL_BONUS, "expiry": None}],
                    "promo_codes": [{"code": "REFERRALBONUS", "max_uses": None}],
                }
            },
        ).raise_for_status()
        admin.post(
            "/v1/referral_programs.create",
            json={
                "id": REFERRAL_PROGRAM,
                "reward_id": "referral_bonus",
                "redeem_on": "customer_creation",
                "received_by": "all",
            },
        ).raise_for_status()


def seed_catalog(autumn: Autumn) -> None:
    autumn.features.create(feature_id=FEATURE, name="API calls", type_="metered", consumable=True)
    autumn.features.create(feature_id=SEATS, name="Team seats", type_="metered", consumable=False)
    autumn.features.create(feature_id=FLAG, name="Priority support", type_="boolean")
    autumn.plans.create(
        plan_id=FREE_PLAN,
        name="Free tier",
        items=[{"feature_id": FEATURE, "included": FREE_INCLUDED, "reset": {"interval": "month"}}],
    )
    autumn.plans.create(
        plan_id=PAID_PLAN,
        name="Pro",
        price={"amount": PAID_PRICE, "interval": "month"},
        items=[
            {"feature_id": FEATURE, "included": 1000, "reset": {"interval": "month"}},
            {"feature_id": SEATS, "included": 5},
            {"feature_id": FLAG},
        ],
    )


@pytest.fixture(scope="session")
def reference() -> Iterator[LiveAutumn]:
    from reference_server.testing import run_server

    with run_server() as server, Autumn(secret_key=server.secret_key, server_url=server.url) as autumn:
        seed_catalog(autumn)
        seed_referral_program(server.url, server.secret_key)
        yield LiveAutumn(url=server.url, secret_key=server.secret_key, autumn=autumn)
