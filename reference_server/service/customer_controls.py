"""A customer's (or entity's) billing controls and config as stored and as sent: shared by the
use cases that write them (:mod:`customers`, :mod:`entities`) and the views that show them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import (
    BillingControlsParams,
    CustomerConfig,
    EntityBillingControlsParams,
)
from reference_server.engine.entitlements import num
from reference_server.errors import invalid
from reference_server.service.usage_limits import check_limits
from reference_server.store import customers as customers_repo

CONTROL_KEYS = ("auto_topups", "spend_limits", "usage_limits", "usage_alerts", "overage_allowed")


def controls_json(raw: dict[str, Any], *, entity: bool = False) -> dict[str, Any]:
    """Billing controls as stored and answered: every list present, no ``null`` inside an item.

    An item field sent as ``null`` means "not set" (its default applies: ``enabled`` false, ...);
    the spec's response schemas allow none of them to be ``null``.
    """
    keys = CONTROL_KEYS[1:] if entity else CONTROL_KEYS
    return {k: [_without_nulls(item) for item in raw.get(k) or [] if isinstance(item, dict)] for k in keys}


def controls_part(part: BillingControlsParams | EntityBillingControlsParams | None) -> dict[str, Any]:
    """A request's ``billing_controls`` as the JSON it was sent as (absent keys left out), for
    :func:`controls_json` and merging over the stored controls."""
    return part.model_dump(mode="json", exclude_unset=True) if part is not None else {}


def config_json(config: CustomerConfig) -> dict[str, Any]:
    """A request's customer ``config`` as stored (the keys it sent)."""
    return config.model_dump(mode="json", exclude_unset=True)


def take_topup_counts(controls: dict[str, Any]) -> list[tuple[str, int]]:
    """Take ``auto_topups[].purchase_limit.count`` out of controls about to be stored.

    The count is runtime state (top-ups bought in the current window), not a setting: as in Autumn
    it is never stored with the controls, and one above the limit is refused.
    """
    counts: list[tuple[str, int]] = []
    for topup in controls.get("auto_topups") or []:
        limit = topup.get("purchase_limit")
        if not isinstance(limit, dict) or "count" not in limit:
            continue
        count = limit.pop("count")
        if count > limit["limit"]:
            raise invalid(
                f"purchase_limit.count ({num(count)}) cannot exceed purchase_limit.limit "
                f"({num(limit['limit'])}) for feature {topup['feature_id']}",
                "invalid_request",
            )
        counts.append((str(topup["feature_id"]), int(count)))
    return counts


def save_topup_counts(conn: Connection, customer_pk: int, counts: list[tuple[str, int]], now: int) -> None:
    """From ``now`` on, that many top-ups of each feature count as bought in the current window."""
    for feature_id, count in counts:
        customers_repo.replace_topup_count(conn, customer_pk, feature_id, count, now)


def _without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else value
        for key, value in item.items()
        if value is not None
    }


def check_customer_controls(controls: dict[str, Any]) -> None:
    """400 for a customer's ``billing_controls`` Autumn refuses, the same on create and on update:
    usage limits (:func:`check_limits`) and two spend limits for one feature."""
    check_limits(controls)
    ids = [s.get("feature_id") for s in controls.get("spend_limits") or []]
    if len(ids) != len(set(ids)):
        raise invalid("billing_controls.spend_limits: duplicate feature_id", "invalid_inputs")
