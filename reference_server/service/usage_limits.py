"""Usage limits on check and track: read the window counters, cap, then count (engine.usage_limits).

Only a subject whose stored controls arm a limit pays for it: :func:`gate` answers None without a
statement otherwise, and the one-statement fast paths of check and track step aside for such subjects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row

from reference_server.engine.entitlements import Feature, Source, num, r10
from reference_server.engine.usage_limits import (
    UsageLimit,
    binding,
    filter_pairs,
    has_limits,
    limit_key,
    parse_limits,
    validation_error,
    window_start,
)
from reference_server.errors import invalid
from reference_server.store import usage_limits as usage_limits_repo
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import CustomerRow, EntityRow


def check_limits(controls: Mapping[str, Any]) -> None:
    """400 for a ``usage_limits`` list Autumn refuses (bad interval, filter or a duplicate)."""
    message = validation_error(controls.get("usage_limits") or [])
    if message is not None:
        raise invalid(message, "invalid_inputs")


def armed(customer: CustomerRow, entity: EntityRow | None, plans: Mapping[str, Any] | None = None) -> bool:
    """Whether the subject (its own controls or its plans') arms any usage limit."""
    return (
        has_limits(customer.billing_controls)
        or (entity is not None and has_limits(entity.billing_controls))
        or (plans is not None and has_limits(plans))
    )


def cycle_anchor(sources: list[Source], feature_id: str, now: int) -> int | None:
    """The feature's reset-cycle anchor: its main-plan resetting balance first, else any resetting one."""
    resetting = [
        s
        for s in sources
        if s.feature_id == feature_id
        and s.is_live(now)
        and s.anchor_at is not None
        and s.interval not in (None, "one_off")
    ]
    resetting.sort(key=lambda s: (s.is_addon, s.customer_plan_pk is None, s.created_at, s.pk))
    return resetting[0].anchor_at if resetting else None


@dataclass
class _Counter:
    usage: float
    window_start: int
    pk: int | None


@dataclass
class Gate:
    """The limits one check or track touches, with their counters as read in its transaction."""

    customer_pk: int
    now: int
    counting: list[UsageLimit]  # every limit whose counter this subject's usage moves
    enforced: list[UsageLimit]  # the limits that cap it (entity replaces customer per identity)
    starts: dict[tuple[int, str], int] = field(default_factory=dict)
    counters: dict[tuple[int, str], _Counter] = field(default_factory=dict)
    dirty: set[tuple[int, str]] = field(default_factory=set)

    def used(self, lim: UsageLimit) -> float:
        c = self.counters.get((lim.scope_pk, lim.key))
        start = self.starts[(lim.scope_pk, lim.key)]
        return c.usage if c is not None and c.window_start == start else 0.0

    def headroom(self, cat: Catalog, feature: Feature, properties: Mapping[str, Any] | None) -> float | None:
        """Units of ``feature`` still allowed now (None: no limit binds it); the tightest cap wins."""
        room: float | None = None
        for lim in self.enforced:
            if not lim.matches(properties):
                continue
            if lim.feature_id == feature.id:
                cost = 1.0
            else:
                system = cat.features.get(lim.feature_id)
                cost = (system.credit_cost(feature.id) or 0.0) if system is not None else 0.0
                if cost <= 0:
                    continue
            left = max(0.0, r10((lim.limit - self.used(lim)) / cost))
            room = left if room is None else min(room, left)
        return room

    def count(self, feature: Feature, applied: float, touched: Mapping[str, float], props: Any) -> None:
        """Add what a track used: the feature's own limits count its units, a credit system's its credits."""
        for lim in self.counting:
            if not lim.matches(props):
                continue
            if lim.feature_id == feature.id:
                amount = applied
            elif lim.feature_id in touched:
                amount = touched[lim.feature_id]
            else:
                continue
            if amount == 0:
                continue
            key = (lim.scope_pk, lim.key)
            c = self.counters.get(key)
            start = self.starts[key]
            if c is None:
                self.counters[key] = _Counter(max(0.0, r10(amount)), start, None)
            else:
                base = c.usage if c.window_start == start else 0.0
                c.usage, c.window_start = max(0.0, r10(base + amount)), start
            self.dirty.add(key)

    def save(self, conn: Connection) -> None:
        for key in sorted(self.dirty):
            c = self.counters[key]
            if c.pk is None:
                usage_limits_repo.insert_window(
                    conn, self.customer_pk, key[0], key[1], c.window_start, c.usage
                )
            else:
                usage_limits_repo.update_window(conn, c.pk, c.window_start, c.usage)
        self.dirty.clear()


def _related(cat: Catalog, feature_ids: set[str]) -> set[str]:
    ids = set(feature_ids)
    for fid in feature_ids:
        ids.update(cs.id for cs in cat.credit_systems_for.get(fid, []))
    return ids


def gate(
    conn: Connection,
    cat: Catalog,
    customer: CustomerRow,
    entity: EntityRow | None,
    feature_ids: set[str],
    sources: list[Source],
    now: int,
    plans: Mapping[str, Any] | None = None,
) -> Gate | None:
    """The usage-limit gate of a check or track on ``feature_ids`` (and their credit systems).

    None, without a statement, when the subject arms no limit on them.
    """
    if not armed(customer, entity, plans):
        return None
    ids = _related(cat, feature_ids)
    mine = [lim for lim in parse_limits(customer.billing_controls, 0) if lim.feature_id in ids]
    own_keys = {  # a customer's entry, even a disabled one, shadows the plans' of its identity
        limit_key(str(e.get("feature_id")), filter_pairs(e.get("filter")))
        for e in customer.billing_controls.get("usage_limits") or ()
        if isinstance(e, dict)
    }
    mine += [lim for lim in parse_limits(plans, 0) if lim.feature_id in ids and lim.key not in own_keys]
    theirs = (
        [lim for lim in parse_limits(entity.billing_controls, entity.pk) if lim.feature_id in ids]
        if entity is not None
        else []
    )
    if not mine and not theirs:
        return None
    result = Gate(customer.pk, now, mine + theirs, binding(mine, theirs))
    for lim in result.counting:
        anchor = cycle_anchor(sources, lim.feature_id, now)
        result.starts[(lim.scope_pk, lim.key)] = window_start(lim.interval, lim.anchor, anchor, now)
    scopes = sorted({lim.scope_pk for lim in result.counting})
    rows = usage_limits_repo.windows_of(conn, customer.pk, scopes)
    for r in rows:
        result.counters[(int(r.scope_pk), str(r.limit_key))] = _Counter(
            float(r.usage), int(r.window_start), int(r.pk)
        )
    return result


class PageWindows:
    """The usage-limit windows of a list page's customers, read for all of them in one statement when
    the first view with limits to show asks (a page whose subjects show none reads nothing)."""

    def __init__(self, customer_pks: Sequence[int]) -> None:
        self._pks = list(customer_pks)
        self._rows: dict[int, list[Row[Any, Any, Any, Any, Any]]] | None = None

    def of(self, conn: Connection, customer_pk: int) -> list[Row[Any, Any, Any, Any, Any]]:
        """The customer's windows (it must be one of the page's customers)."""
        if self._rows is None:
            self._rows = usage_limits_repo.windows_of_customers(conn, self._pks)
        return self._rows.get(customer_pk, [])


def limits_view(
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    entries: list[dict[str, Any]],
    sources: list[Source],
    now: int,
    page: PageWindows | None = None,
) -> list[dict[str, Any]]:
    """The ``usage_limits`` of a customer or entity response (tagged with their ``source``), each with
    the usage of its current window: an entity's own limits count the entity, the rest the customer.

    ``page``: the windows of a list page's customers, read for all of them at once (without it, the
    customer's windows are read here); no statement either way when there are no limits to show."""
    if not entries:
        return []
    found = (
        page.of(conn, customer.pk)
        if page is not None
        else usage_limits_repo.all_windows_of(conn, customer.pk)
    )
    rows = {(int(r.scope_pk), str(r.limit_key)): r for r in found}
    out = []
    for e in entries:
        entry = dict(e)
        entry.setdefault("enabled", True)
        scope = entity.pk if entity is not None and entry.get("source") == "customer" else 0
        parsed = parse_limits({"usage_limits": [{**e, "enabled": True}]}, scope)[0]
        anchor = cycle_anchor(sources, parsed.feature_id, now)
        start = window_start(parsed.interval, parsed.anchor, anchor, now)
        row = rows.get((scope, parsed.key))
        used = float(row.usage) if row is not None and int(row.window_start) == start else 0.0
        entry["usage"] = num(used)
        out.append(entry)
    return out
