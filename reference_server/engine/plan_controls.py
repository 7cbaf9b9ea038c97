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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reference_server.engine.usage_limits import filter_pairs, limit_key

KEYS = ("auto_topups", "spend_limits", "usage_limits", "usage_alerts", "overage_allowed")
_DAYS = {"day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0}

Entry = dict[str, Any]


def identity(key: str, entry: Mapping[str, Any]) -> str:
    if key == "usage_limits":
        return limit_key(str(entry.get("feature_id")), filter_pairs(entry.get("filter")))
    return str(entry.get("feature_id") or "")


def _enabled(entry: Mapping[str, Any], default: bool) -> bool:
    value = entry.get("enabled")
    return default if value is None else bool(value)


def _stricter_spend(a: Entry, b: Entry) -> Entry:
    if _enabled(a, False) != _enabled(b, False):
        return a if _enabled(a, False) else b
    return b if float(b.get("overage_limit") or 0) < float(a.get("overage_limit") or 0) else a


def _stricter_usage_limit(a: Entry, b: Entry) -> Entry:
    if _enabled(a, True) != _enabled(b, True):
        return a if _enabled(a, True) else b
    if a.get("interval") == b.get("interval"):
        return b if float(b["limit"]) < float(a["limit"]) else a
    rate_a = float(a["limit"]) / _DAYS.get(str(a.get("interval")), 1.0)
    rate_b = float(b["limit"]) / _DAYS.get(str(b.get("interval")), 1.0)
    return b if rate_b < rate_a else a


def _stricter_overage(a: Entry, b: Entry) -> Entry:
    return a if not _enabled(a, False) else b


_STRICTER: dict[str, Callable[[Entry, Entry], Entry]] = {
    "spend_limits": _stricter_spend,
    "usage_limits": _stricter_usage_limit,
    "overage_allowed": _stricter_overage,
}


def merge_plans(layers: Sequence[Mapping[str, Any]]) -> dict[str, list[Entry]]:
    """One entry per identity from the plans' controls, most recent plan first in ``layers``."""
    out: dict[str, list[Entry]] = {}
    for key in KEYS:
        chosen: dict[str, Entry] = {}
        alert_owner: dict[str, int] = {}
        alerts: list[Entry] = []
        for index, controls in enumerate(layers):
            for raw in controls.get(key) or ():
                if not isinstance(raw, dict):
                    continue
                entry = dict(raw)
                ident = identity(key, entry)
                if key == "usage_alerts":
                    if alert_owner.setdefault(ident, index) == index:
                        alerts.append(entry)
                    continue
                known = chosen.get(ident)
                if known is None:
                    chosen[ident] = entry
                elif key in _STRICTER:
                    chosen[ident] = _STRICTER[key](known, entry)
        out[key] = alerts if key == "usage_alerts" else list(chosen.values())
    return out


def overlay(
    plans: Mapping[str, list[Entry]], subject: Mapping[str, Any], *, tag: bool = False
) -> dict[str, list[Entry]]:
    """The subject's own entries over the plans' (``tag``: each with its ``source``)."""
    out: dict[str, list[Entry]] = {}
    for key in KEYS:
        own = [dict(e) for e in subject.get(key) or () if isinstance(e, dict)]
        mine = {identity(key, e) for e in own}
        inherited = [dict(e) for e in plans.get(key) or () if identity(key, e) not in mine]
        if tag:
            for e in own:
                e["source"] = "customer"
            for e in inherited:
                e["source"] = "plan"
        out[key] = own + inherited
    return out


def check_plan_controls(raw: Mapping[str, Any]) -> str | None:
    """Why a plan's ``billing_controls`` is refused (a duplicate identity), or None."""
    for key in KEYS:
        if key == "usage_alerts":
            continue
        seen: set[str] = set()
        for entry in raw.get(key) or ():
            if not isinstance(entry, dict):
                continue
            ident = identity(key, entry)
            if ident in seen:
                return f"billing_controls.{key}: duplicate entry for feature {entry.get('feature_id')}"
            seen.add(ident)
    return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def normalize(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A plan's ``billing_controls`` as stored: every list, no ``null`` inside; None when all are empty."""
    if not raw:
        return None
    out = {key: [_without_nulls(e) for e in raw.get(key) or () if isinstance(e, dict)] for key in KEYS}
    return out if any(out.values()) else None
