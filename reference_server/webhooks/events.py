"""Payload builders for the webhook events in the spec's ``webhooks:`` section.

Each builder returns the ``data`` object; :func:`outbox.enqueue` wraps it as ``{"type", "data"}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

USAGE_ALERT_TRIGGERED = "balances.usage_alert_triggered"
LIMIT_REACHED = "balances.limit_reached"
AUTO_TOPUP_SUCCEEDED = "billing.auto_topup_succeeded"
AUTO_TOPUP_FAILED = "billing.auto_topup_failed"
BILLING_UPDATED = "billing.updated"

EVENT_TYPES: tuple[str, ...] = (
    USAGE_ALERT_TRIGGERED,
    LIMIT_REACHED,
    AUTO_TOPUP_SUCCEEDED,
    AUTO_TOPUP_FAILED,
    BILLING_UPDATED,
)

JSON = dict[str, Any]


def _scoped(customer_id: str, feature_id: str, entity_id: str | None) -> JSON:
    data: JSON = {"customer_id": customer_id, "feature_id": feature_id}
    if entity_id is not None:
        data["entity_id"] = entity_id
    return data


def usage_alert_triggered(
    customer_id: str, feature_id: str, usage_alert: Mapping[str, Any], entity_id: str | None = None
) -> JSON:
    return {**_scoped(customer_id, feature_id, entity_id), "usage_alert": dict(usage_alert)}


def limit_reached(customer_id: str, feature_id: str, limit_type: str, entity_id: str | None = None) -> JSON:
    return {**_scoped(customer_id, feature_id, entity_id), "limit_type": limit_type}


def auto_topup_succeeded(
    customer_id: str,
    feature_id: str,
    quantity_granted: float,
    threshold: float,
    balance_after: float,
    invoice: Mapping[str, Any],
    invoice_mode: bool = False,
) -> JSON:
    return {
        "customer_id": customer_id,
        "feature_id": feature_id,
        "quantity_granted": quantity_granted,
        "threshold": threshold,
        "balance_after": balance_after,
        "invoice_mode": invoice_mode,
        "invoice": dict(invoice),
    }


def auto_topup_failed(customer_id: str, feature_id: str, reason: str) -> JSON:
    return {"customer_id": customer_id, "feature_id": feature_id, "reason": reason}


def plan_change(
    action: str,
    subscription: Mapping[str, Any] | None = None,
    purchase: Mapping[str, Any] | None = None,
    previous_attributes: Mapping[str, Any] | None = None,
    item_changes: Sequence[Mapping[str, Any]] = (),
) -> JSON:
    """One ``plan_changes[]`` entry: activated | scheduled | updated | expired."""
    change: JSON = {
        "action": action,
        "previous_attributes": dict(previous_attributes) if previous_attributes is not None else None,
        "item_changes": [dict(c) for c in item_changes],
    }
    if subscription is not None:
        change["subscription"] = dict(subscription)
    if purchase is not None:
        change["purchase"] = dict(purchase)
    return change


def billing_updated(
    customer_id: str,
    plan_changes: Sequence[Mapping[str, Any]],
    entity_id: str | None = None,
    tags: Sequence[str] = (),
) -> JSON:
    data: JSON = {
        "object": "billing.updated",
        "customer_id": customer_id,
        "plan_changes": [dict(c) for c in plan_changes],
        "tags": list(tags),
    }
    if entity_id is not None:
        data["entity_id"] = entity_id
    return data
