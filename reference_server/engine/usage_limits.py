"""Usage limits: a hard cap of ``limit`` units of a feature per ``interval`` window (pure rules).

A limit is identified by its feature and its filter (``feature_id|k=v&...``, filter pairs sorted): a
counter per identity and window holds the usage counted so far. An entity's limit replaces the
customer's limit of the same identity for that entity; every limit still counts the usage it sees
(a customer's counter counts the usage of all its entities). Several limits binding one track: the
tightest headroom wins. Windows align to the feature's reset cycle (``anchor: billing_cycle``, the
default) or to the UTC calendar (``anchor: utc``, and the fallback without a cycle).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reference_server.engine.billing.periods import Interval, period_at

INTERVALS = ("day", "week", "month", "year")
ANCHORS = ("billing_cycle", "utc")
FILTER_MAX_KEYS = 4
FILTER_MAX_KEY_LENGTH = 64
FILTER_MAX_VALUE_LENGTH = 128


@dataclass(frozen=True)
class UsageLimit:
    """One enabled limit of a subject: ``scope_pk`` 0 for the customer, else the entity's pk."""

    feature_id: str
    limit: float
    interval: str
    anchor: str
    filter: tuple[tuple[str, str], ...]
    scope_pk: int

    @property
    def key(self) -> str:
        return limit_key(self.feature_id, self.filter)

    def matches(self, properties: Mapping[str, Any] | None) -> bool:
        """Every filter pair equals the event's property, compared as text; no filter matches all."""
        if not self.filter:
            return True
        if not properties:
            return False
        for name, value in self.filter:
            seen = properties.get(name)
            if seen is None or isinstance(seen, (dict, list)) or _text(seen) != value:
                return False
        return True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def filter_pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    props = raw.get("properties") if isinstance(raw, dict) else None
    if not isinstance(props, dict):
        return ()
    return tuple(sorted((str(k), _text(v)) for k, v in props.items()))


def limit_key(feature_id: str, pairs: tuple[tuple[str, str], ...]) -> str:
    return feature_id + "|" + "&".join(f"{k}={v}" for k, v in pairs)


def has_limits(controls: Mapping[str, Any] | None) -> bool:
    """Whether stored controls arm any limit (no statement needed to know a subject has none)."""
    return bool(controls) and any(
        isinstance(e, dict) and e.get("enabled", True) is not False
        for e in (controls or {}).get("usage_limits") or ()
    )


def parse_limits(controls: Mapping[str, Any] | None, scope_pk: int) -> list[UsageLimit]:
    """The enabled limits of stored controls."""
    out = []
    for e in (controls or {}).get("usage_limits") or ():
        if not isinstance(e, dict) or e.get("enabled", True) is False:
            continue
        out.append(
            UsageLimit(
                feature_id=str(e["feature_id"]),
                limit=float(e["limit"]),
                interval=str(e["interval"]),
                anchor=str(e.get("anchor") or "billing_cycle"),
                filter=filter_pairs(e.get("filter")),
                scope_pk=scope_pk,
            )
        )
    return out


def validation_error(entries: Iterable[Any]) -> str | None:
    """Why a ``usage_limits`` list is refused, or None."""
    seen: set[str] = set()
    for i, e in enumerate(entries):
        where = f"billing_controls.usage_limits[{i}]"
        if not isinstance(e, dict) or not e.get("feature_id"):
            return f"{where}.feature_id: required"
        limit = e.get("limit")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
            return f"{where}.limit: must be a number >= 0"
        if e.get("interval") not in INTERVALS:
            return f"{where}.interval: must be one of: {', '.join(INTERVALS)}"
        if e.get("anchor") is not None and e["anchor"] not in ANCHORS:
            return f"{where}.anchor: must be one of: {', '.join(ANCHORS)}"
        raw_filter = e.get("filter")
        if raw_filter is not None:
            props = raw_filter.get("properties") if isinstance(raw_filter, dict) else None
            if not isinstance(props, dict) or not 1 <= len(props) <= FILTER_MAX_KEYS:
                return f"{where}.filter.properties: must have between 1 and {FILTER_MAX_KEYS} keys"
            for name, value in props.items():
                if not 1 <= len(name) <= FILTER_MAX_KEY_LENGTH:
                    return f"{where}.filter.properties: keys must be 1 to {FILTER_MAX_KEY_LENGTH} characters"
                if isinstance(value, str):
                    if not 1 <= len(value) <= FILTER_MAX_VALUE_LENGTH:
                        return (
                            f"{where}.filter.properties.{name}: must be 1 to "
                            f"{FILTER_MAX_VALUE_LENGTH} characters"
                        )
                elif not isinstance(value, (int, float, bool)):
                    return f"{where}.filter.properties.{name}: must be a string, number or boolean"
        key = limit_key(str(e["feature_id"]), filter_pairs(raw_filter))
        if key in seen:
            return f"billing_controls.usage_limits: duplicate usage limit for feature {e['feature_id']}"
        seen.add(key)
    return None


def binding(customer: list[UsageLimit], entity: list[UsageLimit]) -> list[UsageLimit]:
    """The limits enforced for a subject: an entity's limit replaces the customer's of its identity."""
    keys = {lim.key for lim in entity}
    return entity + [lim for lim in customer if lim.key not in keys]


def window_start(interval: str, anchor: str, cycle_anchor: int | None, now: int) -> int:
    """Start of the window containing ``now``: on the reset cycle when there is one, else UTC."""
    if anchor == "billing_cycle" and cycle_anchor is not None:
        return period_at(cycle_anchor, now, Interval(interval)).start
    moment = dt.datetime.fromtimestamp(now / 1000, tz=dt.timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":
        day -= dt.timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    elif interval == "year":
        day = day.replace(month=1, day=1)
    return int(day.timestamp() * 1000)


def window_end(interval: str, anchor: str, cycle_anchor: int | None, now: int) -> int:
    """End of the window containing ``now`` (the moment its counter starts again)."""
    if anchor == "billing_cycle" and cycle_anchor is not None:
        return period_at(cycle_anchor, now, Interval(interval)).end
    start = window_start(interval, anchor, None, now)
    return period_at(start, start, Interval(interval)).end
