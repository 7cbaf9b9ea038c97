"""Org-configured webhook endpoints fed by a durable outbox.

Events are written to ``webhook_outbox`` in the same transaction as the billing change that caused them
(:func:`outbox.enqueue`), then delivered by :class:`delivery.WebhookDeliverer`, signed the Standard
Webhooks / Svix way. Retries back off exponentially up to a bounded number of attempts, and every retry
carries the same message id so receivers can deduplicate.
"""

from .delivery import DeliveryPolicy, WebhookDeliverer, WebhookWorker
from .endpoints import create_endpoint, delete_endpoint, list_endpoints, new_secret
from .events import (
    AUTO_TOPUP_SUCCEEDED,
    BILLING_UPDATED,
    EVENT_TYPES,
    LIMIT_REACHED,
    USAGE_ALERT_TRIGGERED,
    auto_topup_succeeded,
    billing_updated,
    limit_reached,
    plan_change,
    usage_alert_triggered,
)
from .outbox import enqueue
from .signing import sign_headers

__all__ = [
    "AUTO_TOPUP_SUCCEEDED",
    "BILLING_UPDATED",
    "EVENT_TYPES",
    "LIMIT_REACHED",
    "USAGE_ALERT_TRIGGERED",
    "DeliveryPolicy",
    "WebhookDeliverer",
    "WebhookWorker",
    "auto_topup_succeeded",
    "billing_updated",
    "create_endpoint",
    "delete_endpoint",
    "enqueue",
    "limit_reached",
    "list_endpoints",
    "new_secret",
    "plan_change",
    "sign_headers",
    "usage_alert_triggered",
]
