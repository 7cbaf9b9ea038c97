"""Plan-level billing controls: defaults a plan gives its customers, under their own controls (pure).

The layers, weakest first: the customer's current plans, the customer, the entity. An entry of a
stronger layer shadows the weaker layers' entries of its identity (a feature; for usage limits the
feature and the filter). Among several plans the most restrictive entry wins: an enabled spend limit
or usage limit over a disabled one, then the lower overage limit, the lower usage limit (the lower
daily rate across intervals), and a disabled ``overage_allowed`` over an enabled one. Auto top-ups
come from the most recent plan that has one for the feature; usage alerts of a feature come from the
most recent plan that has alerts for it, and any customer alert for the feature shadows them all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar

from typing_extensions import NotRequired

from autumn_sdk._generated.json_types import (
    BillingControlsOverageAllowedJson,
    BillingControlsSpendLimitJson,
    BillingControlsUsageAlertJson,
    BillingControlsUsageLimitJson,
    PlanBillingControlsAutoTopupJson,
)
from reference_server.engine.usage_limits import filter_pairs, limit_key

ControlKey = Literal["auto_topups", "spend_limits", "usage_limits", "usage_alerts", "overage_allowed"]
KEYS: tuple[ControlKey, ...] = (
    "auto_topups",
    "spend_limits",
    "usage_limits",
    "usage_alerts",
    "overage_allowed",
)
_DAYS = {"day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0}


class AutoTopupRecord(PlanBillingControlsAutoTopupJson):
    """An auto top-up as stored (a plan's may keep its request's ``purchase_limit.count``, a customer's
    never does: it is runtime state), ``source`` when :func:`overlay` tags it."""

    source: NotRequired[Literal["customer", "plan"]]


SpendLimitRecord = BillingControlsSpendLimitJson
UsageLimitRecord = BillingControlsUsageLimitJson
UsageAlertRecord = BillingControlsUsageAlertJson
OverageAllowedRecord = BillingControlsOverageAllowedJson


class ControlsRecord(TypedDict, total=False):
    """Billing controls as stored (a plan's, a customer's or an entity's): the request's lists with no
    ``null`` inside an entry (a key sent as null is left out). The entries are typed as a customer's
    answer has them: stored, they have no ``source`` (:func:`overlay` adds it) and no ``usage`` (the
    customer's view adds it)."""

    auto_topups: list[AutoTopupRecord]
    spend_limits: list[SpendLimitRecord]
    usage_limits: list[UsageLimitRecord]
    usage_alerts: list[UsageAlertRecord]
    overage_allowed: list[OverageAllowedRecord]


Entry = AutoTopupRecord | SpendLimitRecord | UsageLimitRecord | UsageAlertRecord | OverageAllowedRecord
"""An entry of any of the lists."""

E = TypeVar("E", AutoTopupRecord, SpendLimitRecord, UsageLimitRecord, UsageAlertRecord, OverageAllowedRecord)


def _feature(entry: AutoTopupRecord | SpendLimitRecord | UsageAlertRecord | OverageAllowedRecord) -> str:
    return str(entry.get("feature_id") or "")


def _limit_identity(entry: UsageLimitRecord) -> str:
    return limit_key(str(entry.get("feature_id")), filter_pairs(entry.get("filter")))


def _enabled(entry: Entry, default: bool) -> bool:
    value = entry.get("enabled")
    return default if value is None else bool(value)


def _stricter_spend(a: SpendLimitRecord, b: SpendLimitRecord) -> SpendLimitRecord:
    if _enabled(a, False) != _enabled(b, False):
        return a if _enabled(a, False) else b
    return b if float(b.get("overage_limit") or 0) < float(a.get("overage_limit") or 0) else a


def _stricter_usage_limit(a: UsageLimitRecord, b: UsageLimitRecord) -> UsageLimitRecord:
    if _enabled(a, True) != _enabled(b, True):
        return a if _enabled(a, True) else b
    if a.get("interval") == b.get("interval"):
        return b if float(b["limit"]) < float(a["limit"]) else a
    rate_a = float(a["limit"]) / _DAYS.get(str(a.get("interval")), 1.0)
    rate_b = float(b["limit"]) / _DAYS.get(str(b.get("interval")), 1.0)
    return b if rate_b < rate_a else a


def _stricter_overage(a: OverageAllowedRecord, b: OverageAllowedRecord) -> OverageAllowedRecord:
    return a if not _enabled(a, False) else b


def _strictest(
    layers: Sequence[Sequence[E]], identity: Callable[[E], str], stricter: Callable[[E, E], E] | None
) -> list[E]:
    """One entry per identity: the first layer's, or the stricter of the layers' (``stricter``)."""
    chosen: dict[str, E] = {}
    for entries in layers:
        for raw in entries:
            entry = copy.copy(raw)
            ident = identity(entry)
            known = chosen.get(ident)
            if known is None:
                chosen[ident] = entry
            elif stricter is not None:
                chosen[ident] = stricter(known, entry)
    return list(chosen.values())


def _alerts(layers: Sequence[Sequence[UsageAlertRecord]]) -> list[UsageAlertRecord]:
    """Every alert of a feature from the first layer that has alerts for it."""
    owner: dict[str, int] = {}
    alerts: list[UsageAlertRecord] = []
    for index, entries in enumerate(layers):
        for raw in entries:
            entry = copy.copy(raw)
            if owner.setdefault(_feature(entry), index) == index:
                alerts.append(entry)
    return alerts


def merge_plans(layers: Sequence[ControlsRecord]) -> ControlsRecord:
    """One entry per identity from the plans' controls, most recent plan first in ``layers``."""
    return {
        "auto_topups": _strictest([c.get("auto_topups") or [] for c in layers], _feature, None),
        "spend_limits": _strictest([c.get("spend_limits") or [] for c in layers], _feature, _stricter_spend),
        "usage_limits": _strictest(
            [c.get("usage_limits") or [] for c in layers], _limit_identity, _stricter_usage_limit
        ),
        "usage_alerts": _alerts([c.get("usage_alerts") or [] for c in layers]),
        "overage_allowed": _strictest(
            [c.get("overage_allowed") or [] for c in layers], _feature, _stricter_overage
        ),
    }


def _unshadowed(own: Sequence[E], plans: Sequence[E], identity: Callable[[E], str]) -> list[E]:
    """The plans' entries no entry of ``own`` shadows."""
    mine = {identity(e) for e in own}
    return [e for e in plans if identity(e) not in mine]


def _tagged(own: Sequence[E], inherited: Sequence[E], tag: bool) -> list[E]:
    """Copies of the subject's entries, then of the plans' (``tag``: each with its ``source``)."""
    mine, theirs = [copy.copy(e) for e in own], [copy.copy(e) for e in inherited]
    if tag:
        for e in mine:
            e["source"] = "customer"
        for e in theirs:
            e["source"] = "plan"
    return mine + theirs


def overlay(plans: ControlsRecord, subject: ControlsRecord, *, tag: bool = False) -> ControlsRecord:
    """The subject's own entries over the plans' (``tag``: each with its ``source``); every list."""
    topups, spend = subject.get("auto_topups") or [], subject.get("spend_limits") or []
    limits, alerts = subject.get("usage_limits") or [], subject.get("usage_alerts") or []
    overage = subject.get("overage_allowed") or []
    return {
        "auto_topups": _tagged(topups, _unshadowed(topups, plans.get("auto_topups") or [], _feature), tag),
        "spend_limits": _tagged(spend, _unshadowed(spend, plans.get("spend_limits") or [], _feature), tag),
        "usage_limits": _tagged(
            limits, _unshadowed(limits, plans.get("usage_limits") or [], _limit_identity), tag
        ),
        "usage_alerts": _tagged(alerts, _unshadowed(alerts, plans.get("usage_alerts") or [], _feature), tag),
        "overage_allowed": _tagged(
            overage, _unshadowed(overage, plans.get("overage_allowed") or [], _feature), tag
        ),
    }


def _duplicate(entries: Sequence[E], identity: Callable[[E], str]) -> E | None:
    seen: set[str] = set()
    for entry in entries:
        ident = identity(entry)
        if ident in seen:
            return entry
        seen.add(ident)
    return None


def check_plan_controls(raw: ControlsRecord) -> str | None:
    """Why a plan's ``billing_controls`` is refused (a duplicate identity), or None."""
    duplicates: tuple[tuple[ControlKey, Entry | None], ...] = (
        ("auto_topups", _duplicate(raw.get("auto_topups") or [], _feature)),
        ("spend_limits", _duplicate(raw.get("spend_limits") or [], _feature)),
        ("usage_limits", _duplicate(raw.get("usage_limits") or [], _limit_identity)),
        ("overage_allowed", _duplicate(raw.get("overage_allowed") or [], _feature)),
    )
    for key, entry in duplicates:
        if entry is not None:
            return f"billing_controls.{key}: duplicate entry for feature {entry.get('feature_id')}"
    return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _entries(raw: Mapping[str, Any], key: ControlKey) -> list[Any]:
    return [_without_nulls(e) for e in raw.get(key) or () if isinstance(e, dict)]


def as_record(raw: Mapping[str, Any], *, auto_topups: bool = True) -> ControlsRecord:
    """Controls as JSON (a request's ``billing_controls``, perhaps over stored ones) as stored: every
    list (``auto_topups`` unless not: an entity has none), its objects without ``null`` inside.

    This is where controls sent or stored as JSON become a :class:`ControlsRecord`."""
    out: ControlsRecord = {}
    if auto_topups:
        out["auto_topups"] = _entries(raw, "auto_topups")
    out["spend_limits"] = _entries(raw, "spend_limits")
    out["usage_limits"] = _entries(raw, "usage_limits")
    out["usage_alerts"] = _entries(raw, "usage_alerts")
    out["overage_allowed"] = _entries(raw, "overage_allowed")
    return out


def normalize(raw: Mapping[str, Any] | None) -> ControlsRecord | None:
    """A plan's ``billing_controls`` as stored (:func:`as_record`); None when all lists are empty."""
    if not raw:
        return None
    out = as_record(raw)
    return out if any(out.values()) else None
