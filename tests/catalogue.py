"""The free and pro catalogue that the hosted-page and dashboard suites seed, written once."""

from __future__ import annotations

import httpx

MESSAGES = {"feature_id": "messages", "name": "Messages", "type": "metered", "consumable": True}


def seed_free_and_pro(client: httpx.Client, *extra_features: dict[str, object]) -> None:
    """Feature ``messages`` (then ``extra_features``), plan ``free`` (100 messages a month, enabled by
    default) and plan ``pro`` ($20 a month, 1,000 messages), through the API ``client`` is signed in to."""
    for body in (MESSAGES, *extra_features):
        client.post("/v1/features.create", json=body).raise_for_status()
    client.post(
        "/v1/plans.create",
        json={
            "plan_id": "free",
            "name": "Free",
            "auto_enable": True,
            "items": [{"feature_id": "messages", "included": 100, "reset": {"interval": "month"}}],
        },
    ).raise_for_status()
    client.post(
        "/v1/plans.create",
        json={
            "plan_id": "pro",
            "name": "Pro",
            "price": {"amount": 20, "interval": "month"},
            "items": [{"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}}],
        },
    ).raise_for_status()
