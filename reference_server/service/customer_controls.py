"""A customer's (or entity's) billing controls and config as stored and as sent: shared by the
use cases that write them (:mod:`customers`, :mod:`entities`) and the views that show them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import (
    BillingControlsParams,
    CustomerConfig,
    EntityBillingControlsParams,
)
from reference_server.engine.entitlements import num
from reference_server.engine.plan_controls import ControlsRecord, as_record
from reference_server.errors import invalid
from reference_server.service.usage_limits import check_limits
from reference_server.store import customers as customers_repo


def controls_json(raw: Mapping[str, Any], *, entity: bool = False) -> ControlsRecord:
    """Billing controls as stored and answered: every list present, no ``null`` inside an item.

    An item field sent as ``null`` means "not set" (its default applies: ``enabled`` false, ...);
    the spec's response schemas allow none of them to be ``null``.
    """
    return as_record(raw, auto_topups=not entity)


def merged_controls(
    stored: Mapping[str, Any], sent: Mapping[str, Any], *, entity: bool = False
) -> ControlsRecord:
    """A request's controls (:func:`controls_part`) over the stored ones: each list sent (not
    ``null``) replaces the stored list; the others stay."""
    return controls_json(
        {**stored, **{key: value for key, value in sent.items() if value is not None}}, entity=entity
    )


_WITHOUT_TOPUP_COUNT = {"auto_topups": {"__all__": {"purchase_limit": {"count"}}}}


def controls_part(part: BillingControlsParams | EntityBillingControlsParams | None) -> dict[str, Any]:
    """A request's ``billing_controls`` as the JSON it was sent as (absent keys left out), for
    :func:`controls_json` and merging over the stored controls.

    Without ``auto_topups[].purchase_limit.count``: the count is runtime state (top-ups bought in
    the current window), not a setting; as in Autumn it is never stored with the controls
    (:func:`topup_counts` reads it)."""
    if part is None:
        return {}
    if isinstance(part, BillingControlsParams):
        return part.model_dump(mode="json", exclude_unset=True, exclude=_WITHOUT_TOPUP_COUNT)
    return part.model_dump(mode="json", exclude_unset=True)


def config_json(config: CustomerConfig) -> dict[str, Any]:
    """A request's customer ``config`` as stored (the keys it sent)."""
    return config.model_dump(mode="json", exclude_unset=True)


def topup_counts(part: BillingControlsParams | None) -> list[tuple[str, int]]:
    """A request's ``auto_topups[].purchase_limit.count``: the top-ups already bought in the current
    window, per feature; one above the limit is refused."""
    counts: list[tuple[str, int]] = []
    for topup in (part.auto_topups if part is not None else None) or []:
        limit = topup.purchase_limit
        if limit is None or limit.count is None:
            continue
        if limit.count > limit.limit:
            raise invalid(
                f"purchase_limit.count ({num(limit.count)}) cannot exceed purchase_limit.limit "
                f"({num(limit.limit)}) for feature {topup.feature_id}",
                "invalid_request",
            )
        counts.append((str(topup.feature_id), int(limit.count)))
    return counts


def save_topup_counts(conn: Connection, customer_pk: int, counts: list[tuple[str, int]], now: int) -> None:
    """From ``now`` on, that many top-ups of each feature count as bought in the current window."""
    for feature_id, count in counts:
        customers_repo.replace_topup_count(conn, customer_pk, feature_id, count, now)


def check_customer_controls(controls: ControlsRecord) -> None:
    """400 for a customer's ``billing_controls`` Autumn refuses, the same on create and on update:
    usage limits (:func:`check_limits`) and two spend limits for one feature."""
    check_limits(controls)
    ids = [s.get("feature_id") for s in controls.get("spend_limits") or []]
    if len(ids) != len(set(ids)):
        raise invalid("billing_controls.spend_limits: duplicate feature_id", "invalid_inputs")
