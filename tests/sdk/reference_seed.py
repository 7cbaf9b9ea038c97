"""The catalogue the spec's code samples assume (features, plans), created through the SDK itself.

Used when the code samples run against the reference server instead of the stub
(``AUTUMN_SAMPLES_TARGET=reference``): the samples refer to ``messages``, ``seats``, ``api_calls``,
``pro_plan``, ``addon_seats``... which a fresh server does not have.
"""

from __future__ import annotations

from autumn_sdk import Autumn

FEATURES: list[dict[str, object]] = [
    {"feature_id": "messages", "name": "Messages", "type_": "metered", "consumable": True},
    {"feature_id": "api_calls", "name": "API calls", "type_": "metered", "consumable": True},
    {"feature_id": "seats", "name": "Seats", "type_": "metered", "consumable": False},
    {"feature_id": "old-feature", "name": "Old feature", "type_": "boolean"},
]

PLANS: list[dict[str, object]] = [
    {
        "plan_id": "pro_plan",
        "name": "Pro",
        "price": {"amount": 10, "interval": "month"},
        "items": [
            {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}},
            {"feature_id": "seats", "included": 5},
        ],
    },
    {"plan_id": "trial_plan", "name": "Trial"},
    {
        "plan_id": "addon_seats",
        "name": "Extra seats",
        "add_on": True,
        "items": [
            {
                "feature_id": "seats",
                "included": 0,
                "price": {"amount": 5, "interval": "month", "billing_method": "prepaid", "billing_units": 1},
            }
        ],
    },
    {"plan_id": "unused_plan", "name": "Unused"},
]


def seed_sample_catalog(autumn: Autumn) -> None:
    """Create every feature and plan the code samples name."""
    for feature in FEATURES:
        autumn.features.create(**feature)  # type: ignore[arg-type]
    for plan in PLANS:
        autumn.plans.create(**plan)  # type: ignore[arg-type]
