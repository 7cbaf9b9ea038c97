"""The world the current spec's code samples assume, on top of the May samples' world.

Beyond what :mod:`reference_seed` builds, the current samples name the AI credit feature
``ai_credits``, the license plan ``seat_plan`` (a plan cus_123 holds must offer it), the plan ``pro``
(the import and invoice-insert samples; the import images cus_123 onto it, 10 messages used), the
reward ``beta_credits_grant`` (createReferralProgram), the tenant organization ``acme`` (the
RevenueCat samples), and a reward and a referral program whose id is literally ``<id>`` (the
get/update/delete samples keep the spec's placeholder). Everything goes through the public API.
"""

from __future__ import annotations

from collections.abc import Callable

from autumn_sdk import Autumn
from reference_server.testing import RunningServer

from .reference_seed import ARRANGE as MAY_ARRANGE
from .reference_seed import seed_sample_world

AI_MODEL = "anthropic/claude-sonnet-4-20250514"
PLACEHOLDER_ID = "<id>"
"""The spec's samples of rewards.get/update/delete and referral_programs.get/update/delete pass it."""


def seed_current_world(server: RunningServer, autumn: Autumn) -> None:
    seed_sample_world(server, autumn)
    autumn.features.create(
        feature_id="ai_credits",
        name="AI credits",
        type_="ai_credit_system",
        default_markup=0,
        model_markups={AI_MODEL: {"input_cost": 3, "output_cost": 15}},
    )
    autumn.plans.create(plan_id="seat_plan", name="Seat", add_on=True)
    # batchTrack's second item names the event, not the feature.
    autumn.features.update(feature_id="messages", event_names=["message.sent"])
    autumn.plans.create(
        plan_id="pro",
        name="Pro (before the migration)",
        price={"amount": 29.99, "interval": "month"},
        items=[
            {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}},
            {"feature_id": "seats", "included": 5},
        ],
    )
    # The plans cus_123 holds offer seat_plan licenses: pro_plan (the billing samples) and pro (the
    # import sample images cus_123 onto it).
    for plan_id in ("pro_plan", "pro"):
        autumn.plans.update(plan_id=plan_id, licenses=[{"license_plan_id": "seat_plan", "included": 5}])
    autumn.rewards.create(
        feature_grant={
            "id": "beta_credits_grant",
            "name": "Beta credits",
            "grants": [{"feature_id": "messages", "included": 500, "expiry": None}],
            "promo_codes": [{"code": "BETA500", "max_uses": None}],
        }
    )
    autumn.rewards.create(
        coupon={
            "id": PLACEHOLDER_ID,
            "name": "Placeholder coupon",
            "duration": {"type": "one_off", "length": None},
            "plan_ids": None,
            "promo_codes": [{"code": "PLACEHOLDER10", "max_uses": None}],
            "type": "percentage_discount",
            "value": 10,
        }
    )
    autumn.referrals.create_program(
        id=PLACEHOLDER_ID, reward_id="beta_credits_grant", redeem_on="customer_creation", received_by="all"
    )
    autumn.platform.create_organization(name="Acme", slug="acme", user_email="owner@acme.test", env="test")


def _grant_ai_credits(server: RunningServer, autumn: Autumn) -> None:
    """cus_123's AI credit balance, which the trackTokens sample draws on."""
    autumn.balances.create(customer_id="cus_123", feature_id="ai_credits", included_grant=100)


def _activate_addon_seats(server: RunningServer, autumn: Autumn) -> None:
    """The multi-update samples cancel pro_plan and addon_seats, so cus_123 holds both.

    cus_123 has no payment method: the add-on is billed by invoice and enabled before it is paid.
    """
    autumn.billing.attach(
        customer_id="cus_123",
        plan_id="addon_seats",
        feature_quantities=[{"feature_id": "seats", "quantity": 5}],
        invoice_mode={"enabled": True},
        enable_plan_immediately=True,
    )


def _create_license_holder(server: RunningServer, autumn: Autumn) -> None:
    """The entity attachLicense assigns a seat_plan license to (the sample names it, not its feature)."""
    autumn.entities.create(
        customer_id="cus_123", feature_id="seats", entity_id="user_123", name="Ada Lovelace"
    )


ARRANGE: dict[str, Callable[[RunningServer, Autumn], None]] = {
    **MAY_ARRANGE,
    "previewMultiUpdate": _activate_addon_seats,
    "trackTokens": _grant_ai_credits,
    "attachLicense": _create_license_holder,
}
"""Run before the sample of that operation id (reference server only)."""


def refresh_token_for(autumn: Autumn, customer_id: str = "cus_123") -> str:
    """A refresh token, the credential the refreshKey sample's client stands for."""
    token = autumn.keys.mint(customer_id=customer_id).refresh_token
    if token is None:
        raise AssertionError("keys.mint gave no refresh token")
    return token
