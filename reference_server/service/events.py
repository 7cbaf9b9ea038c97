"""Events: the list (newest first, cursor pages) and the aggregate (zero-filled time bins) (§7)."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    EventJson,
    EventsAggregateDeductionJson,
    EventsAggregateDeductionValueJson,
    EventsAggregatePeriodJson,
    EventsAggregateResponseJson,
    EventsAggregateTotalJson,
    EventsListResponseJson,
)
from autumn_sdk._generated.models import EventsAggregateParams, EventsListParams
from reference_server.engine.entitlements import Feature, num
from reference_server.engine.intervals import FIXED_MS, add_months
from reference_server.errors import customer_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.store.events import (
    AggregateQuery,
    EventFilter,
    active_plan_rows,
    aggregate_rows,
    event_page,
    events_between,
)
from reference_server.store.subjects import CustomerRow, get_customer, load_sources

RANGE_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
ZONED_BIN_MS = 15 * 60 * 1000
"""The SQL bin under a ``timezone``: every zone's UTC offset is a whole number of quarter hours, so
quarter-hour sums fold exactly into local days, weeks and months."""


def _cursor(ts: int, pk: int) -> str:
    return base64.urlsafe_b64encode(f"e:{ts}:{pk}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> tuple[int, int]:
    try:
        kind, ts, pk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        if kind != "e":
            raise ValueError
        return int(ts), int(pk)
    except ValueError as exc:
        raise invalid("start_cursor: invalid cursor", "invalid_inputs") from exc


def _feature_ids(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _base_filters(
    ctx: Ctx, conn: Connection, params: EventsListParams | EventsAggregateParams
) -> tuple[EventFilter, CustomerRow | None]:
    customer = None
    if params.customer_id:
        customer = get_customer(conn, ctx.tenant, params.customer_id)
        if customer is None:
            raise customer_not_found(params.customer_id)
    return EventFilter(
        customer_pk=customer.pk if customer is not None else None,
        entity_id=params.entity_id or None,
        feature_ids=_feature_ids(params.feature_id),
    ), customer


def event_json(r: Any) -> EventJson:
    return {
        "id": r.id,
        "timestamp": r.timestamp,
        "feature_id": r.feature_id,
        "customer_id": r.customer_id,
        "value": num(r.value),
        "properties": r.properties or {},
        "deductions": r.deductions,
    }


def list_events(ctx: Ctx, params: EventsListParams) -> EventsListResponseJson:
    limit = params.limit or 50  # the model holds it to 1..5000
    if params.range and params.custom_range is not None:
        raise invalid("range and custom_range cannot be used together", "invalid_inputs")
    with ctx.db.read() as conn:
        event_filter, customer = _base_filters(ctx, conn, params)
        rng = params.custom_range
        # timestamps are whole ms: [1.5, 9.5] holds the same events as [2, 9]
        start = math.ceil(rng.start) if rng is not None and rng.start is not None else None
        end = math.floor(rng.end) if rng is not None and rng.end is not None else None
        if params.range:  # the preset window, as the aggregate resolves it
            now = ctx.now(customer.clock_offset_ms if customer else 0)
            start, end = _window(conn, customer, now, params.range)
        after = _uncursor(params.start_cursor) if params.start_cursor else None
        rows = event_page(conn, ctx.tenant, event_filter, start=start, end=end, after=after, limit=limit)
    page = rows[:limit]
    return {
        "list": [event_json(r) for r in page],
        "next_cursor": _cursor(page[-1].timestamp, page[-1].pk) if len(rows) > limit else None,
    }


def _floor(ts: int, bin_size: str, zone: ZoneInfo | None = None) -> int:
    """The start of the bin holding ``ts``: hours in UTC; days, ISO weeks and months at midnight in
    ``zone`` (UTC when None)."""
    if bin_size == "hour":
        return ts - ts % FIXED_MS["hour"]
    if zone is not None:
        local = datetime.fromtimestamp(ts / 1000, tz=zone)
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
        if bin_size == "week":
            midnight = datetime.combine(
                (midnight - timedelta(days=midnight.weekday())).date(), datetime.min.time(), tzinfo=zone
            )
        elif bin_size == "month":
            midnight = midnight.replace(day=1)
        return int(midnight.timestamp() * 1000)
    day = ts - ts % FIXED_MS["day"]
    if bin_size == "day":
        return day
    if bin_size == "week":  # ISO weeks: Monday 00:00 UTC (1970-01-01 was a Thursday)
        return day - ((day // FIXED_MS["day"] + 3) % 7) * FIXED_MS["day"]
    dt = datetime.fromtimestamp(day / 1000, tz=timezone.utc).replace(day=1)
    return int(dt.timestamp() * 1000)


def _next_bin(ts: int, bin_size: str, zone: ZoneInfo | None = None) -> int:
    """The start of the bin after the one starting at ``ts``."""
    if zone is not None and bin_size != "hour":
        # A local day lasts 23 to 25 hours, so a day and two hours on lands in the next bin's first
        # day (likewise a week and two hours, or 32 days for a month).
        span = {"day": 26, "week": 7 * 24 + 2, "month": 32 * 24}[bin_size] * FIXED_MS["hour"]
        return _floor(ts + span, bin_size, zone)
    if bin_size in ("hour", "day"):
        return ts + FIXED_MS[bin_size]
    if bin_size == "week":
        return ts + 7 * FIXED_MS["day"]
    return add_months(ts, 1)


def _zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone of ``timezone`` (None for UTC, the default); 400 for a name that is none."""
    if name is None or name in ("UTC", "Etc/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a directory, an overlong name
        raise invalid(f"timezone: {name!r} is not an IANA time zone", "invalid_inputs") from exc


def _window(conn: Any, customer: Any, now: int, rng: str | None) -> tuple[int, int]:
    """The [start, end] of a preset ``range``: the last 24 hours to 90 days, else billing cycles
    (``1bc`` by default, ``3bc``, ``last_cycle``)."""
    if rng is not None and rng in RANGE_DAYS:
        return now - RANGE_DAYS[rng] * FIXED_MS["day"], now
    cycle = rng or "1bc"
    return _cycle(conn, customer, now, 3 if cycle == "3bc" else 1, cycle == "last_cycle")


def _cycle(conn: Any, customer: Any, now: int, cycles: int, last: bool) -> tuple[int, int]:
    """The customer's billing cycle window (from the shortest monthly-or-longer reset), else 30 days."""
    start = end = None
    if customer is not None:
        resets = [s for s in load_sources(conn, customer.pk) if s.next_reset_at and s.interval]
        if resets:
            s = min(resets, key=lambda x: x.next_reset_at or 0)
            end = s.next_reset_at
            assert end is not None and s.interval is not None
            from reference_server.engine.intervals import boundary

            anchor = s.anchor_at or now
            k = 0
            while boundary(anchor, s.interval, s.interval_count, k + 1) < end:
                k += 1
            start = boundary(anchor, s.interval, s.interval_count, max(0, k - cycles + 1))
            if last:
                end = boundary(anchor, s.interval, s.interval_count, k)
                start = boundary(anchor, s.interval, s.interval_count, max(0, k - 1))
    if start is None or end is None:
        end = now
        start = now - 30 * cycles * FIXED_MS["day"]
    return start, min(end, now) if not last else end


def aggregate(ctx: Ctx, params: EventsAggregateParams) -> EventsAggregateResponseJson:
    fids = _feature_ids(params.feature_id)
    if not fids:
        raise invalid("feature_id: required", "invalid_inputs")
    rng, custom = params.range, params.custom_range
    if rng and custom is not None:
        raise invalid("range and custom_range cannot be used together", "invalid_inputs")
    if custom is not None and not custom.start < custom.end:
        raise invalid("custom_range: start must be before end", "invalid_inputs")
    zone = _zone(params.timezone)
    counting = params.measure == "count"
    group_by = params.group_by
    if group_by and not (
        group_by.startswith("properties.") or group_by in ("$customer_id", "$entity_id", "$plan_id")
    ):
        raise invalid(
            "group_by: must start with properties. or be $customer_id, $entity_id or $plan_id",
            "invalid_inputs",
        )
    filter_by = params.filter_by or {}
    if len(filter_by) > 5:
        raise invalid("filter_by: at most 5 filters", "invalid_inputs")
    max_groups = params.max_groups or 9
    deducted = params.aggregate_on == "deducted"
    if deducted and not params.customer_id:
        raise invalid('aggregate_on "deducted" requires customer_id', "invalid_inputs")
    owners: dict[str, str | None] = {}
    features_of: dict[str, Feature] = {}
    rows: list[Any] = []
    with ctx.db.read() as conn:
        event_filter, customer = _base_filters(ctx, conn, params)
        now = ctx.now(customer.clock_offset_ms if customer else 0)
        if custom is not None:
            start, end = int(custom.start), int(custom.end)
        else:
            start, end = _window(conn, customer, now, rng)
        bin_size = params.bin_size or ("hour" if rng == "24h" else "day")
        if bin_size == "hour":
            zone = None  # hour bins are UTC's whatever the zone
        filters = tuple(
            (key.split(".", 1)[1] if key.startswith("properties.") else key, expected)
            for key, expected in filter_by.items()
        )
        query = AggregateQuery(
            start,
            end,
            # weeks and months fold days; a zone's days fold quarter hours
            ZONED_BIN_MS if zone is not None else FIXED_MS["hour" if bin_size == "hour" else "day"],
            _sql_group(group_by),
            filters,
        )
        summed = aggregate_rows(conn, ctx.tenant, event_filter, query)
        plan_of: dict[int, str] = {}
        if group_by == "$plan_id":
            for plan_row in active_plan_rows(conn):
                plan_of.setdefault(plan_row.customer_pk, plan_row.plan_id)
        if deducted and customer is not None:
            rows = events_between(conn, ctx.tenant, event_filter, start, end)
            features_of = ctx.state.catalog_cache.get(conn, ctx.tenant).features
            for src in load_sources(conn, customer.pk):
                owners[src.id] = src.entity_id
                owners.update({roll.id: src.entity_id for roll in src.rollovers})

    def group_of(raw: Any) -> str:
        """A group's name from its raw SQL value, as ``str`` of the event's value names it."""
        assert group_by is not None
        if group_by == "$plan_id":
            return plan_of.get(raw, "none")
        if group_by.startswith("properties."):
            return str(None if raw is None else json.loads(raw))
        return str(raw)

    bins: list[int] = []
    b = _floor(start, bin_size, zone)
    last_bin = _floor(min(end, now), bin_size, zone)
    while b <= last_bin:
        bins.append(b)
        b = _next_bin(b, bin_size, zone)
    totals: dict[str, EventsAggregateTotalJson] = {f: {"count": 0, "sum": 0.0} for f in fids}
    groups_total: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    names = {r.grp: group_of(r.grp) for r in summed} if group_by else {}
    for r in summed:
        totals[r.feature_id]["count"] += r.n
        totals[r.feature_id]["sum"] = round(totals[r.feature_id]["sum"] + float(r.total), 10)
        if group_by:
            k = names[r.grp]
            groups_total[k] = groups_total.get(k, 0.0) + float(r.magnitude)
            first_seen[k] = min(first_seen.get(k, r.first), r.first)
    # the largest groups by magnitude; between equals, the one with the earliest event
    top = set(sorted(groups_total, key=lambda k: (-groups_total[k], first_seen[k]))[:max_groups])
    data: dict[int, EventsAggregatePeriodJson] = {}
    for p in bins:
        data[p] = {"period": p, "values": {f: 0.0 for f in fids}}
        if group_by:
            data[p]["grouped_values"] = {f: {} for f in fids}
    for r in sorted(summed, key=lambda r: (r.bin, r.first)):
        p = _floor(int(r.bin), bin_size, zone)
        if p not in data:
            continue
        entry = data[p]
        amount = float(r.n) if counting else float(r.total)  # ``measure``: "count" counts events
        entry["values"][r.feature_id] = round(entry["values"][r.feature_id] + amount, 10)
        if group_by:
            k = names[r.grp]
            k = k if k in top else "Other"
            g = entry["grouped_values"][r.feature_id]
            g[k] = round(g.get(k, 0.0) + amount, 10)
    out: EventsAggregateResponseJson = {"list": [data[p] for p in bins], "total": totals}
    if deducted:
        out["deductions"] = _deductions(
            [r for r in rows if _keep(r, filters)],
            bins,
            (bin_size, zone),
            features_of,
            owners,
            {r.id: _event_group(r, group_by, plan_of, top) for r in rows} if group_by else {},
        )
    return out


def _sql_group(group_by: str | None) -> str | None:
    """What ``aggregate_rows`` groups by: a property key, an event column, or (for plans) the
    customer, mapped to its plan afterwards."""
    if not group_by:
        return None
    if group_by == "$plan_id":
        return "$customer_pk"
    return group_by.split(".", 1)[1] if group_by.startswith("properties.") else group_by


def _keep(r: Any, filters: tuple[tuple[str, str], ...]) -> bool:
    """The event's properties hold every filter's string (the SQL side of ``aggregate_rows``)."""
    props = r.properties or {}
    return all(props.get(key) == expected for key, expected in filters)


def _event_group(r: Any, group_by: str, plan_of: dict[int, str], top: set[str]) -> str:
    """One event's group (``Other`` outside the top groups), for the per-source deductions."""
    if group_by == "$customer_id":
        k = str(r.customer_id)
    elif group_by == "$entity_id":
        k = str(r.entity_id)
    elif group_by == "$plan_id":
        k = plan_of.get(r.customer_pk, "none")
    else:
        k = str((r.properties or {}).get(group_by.split(".", 1)[1]))
    return k if k in top else "Other"


def _deductions(
    rows: list[Any],
    bins: list[int],
    binning: tuple[str, ZoneInfo | None],
    features: dict[str, Feature],
    owners: dict[str, str | None],
    group_of: dict[str, str],
) -> list[EventsAggregateDeductionJson]:
    """``aggregate_on: "deducted"``: per bin, what the events drew from each balance, keyed by the
    feature owning the balance (credits for credit systems, the feature's own units otherwise)."""
    per_bin: dict[int, dict[str, Any]] = {p: {} for p in bins}
    grouped: dict[int, dict[str, dict[str, dict[str, Any]]]] = {p: {} for p in bins}
    for r in rows:
        p = _floor(int(r.timestamp), *binning)
        if p not in per_bin:
            continue
        for d in r.deductions or []:
            owner = features.get(d["feature_id"])
            cost: float | None = None
            if d["feature_id"] != r.feature_id and owner is not None:
                cost = owner.credit_cost(r.feature_id)
            kind = "credit_system" if owner is not None and "credit_system" in owner.type else "metered"
            entry = per_bin[p].setdefault(
                d["feature_id"], {"feature_type": kind, "deducted": 0.0, "events": set(), "balances": {}}
            )
            entry["deducted"] += float(d["value"])
            entry["events"].add(r.id)
            bal = entry["balances"].setdefault(
                d["balance_id"],
                {
                    "balance_id": d["balance_id"],
                    "entity_id": owners.get(d["balance_id"]),
                    "plan_id": d.get("plan_id"),
                    "reset": d.get("reset"),
                    "costs": set(),
                    "deducted": 0.0,
                    "events": set(),
                },
            )
            bal["costs"].add(cost)
            bal["deducted"] += float(d["value"])
            bal["events"].add(r.id)
            if group_of:
                g = (
                    grouped[p]
                    .setdefault(d["balance_id"], {})
                    .setdefault(group_of[r.id], {"deducted": 0.0, "costs": set()})
                )
                g["deducted"] += float(d["value"])
                g["costs"].add(cost)

    def one_cost(costs: set[float | None]) -> float | int | None:
        return num(next(iter(costs))) if len(costs) == 1 else None

    out: list[EventsAggregateDeductionJson] = []
    for p in bins:
        values: dict[str, EventsAggregateDeductionValueJson] = {
            fid: {
                "feature_type": e["feature_type"],
                "deducted": num(e["deducted"]),
                "events": len(e["events"]),
                "balances": [
                    {
                        "balance_id": b["balance_id"],
                        "entity_id": b["entity_id"],
                        "plan_id": b["plan_id"],
                        "reset": b["reset"],
                        "credit_cost": one_cost(b["costs"]),
                        "deducted": num(b["deducted"]),
                        "events": len(b["events"]),
                    }
                    for b in e["balances"].values()
                ],
            }
            for fid, e in per_bin[p].items()
        }
        item: EventsAggregateDeductionJson = {"period": p, "values": values}
        if group_of:
            item["grouped_values"] = {
                bid: {
                    k: {"deducted": num(g["deducted"]), "credit_cost": one_cost(g["costs"])}
                    for k, g in gs.items()
                }
                for bid, gs in grouped[p].items()
            }
        out.append(item)
    return out
