"""Deduction order and passes for track, send_event, locks and balance updates.

The rules (billing-semantics §3.4-3.7): rollovers before main grants, the feature's own sources
before credit systems, unlimited sources absorb everything, shorter reset intervals first, then
earlier expiry, main plan before add-ons, included before pay-per-use, oldest first.  Pass 1 never
takes a source below zero; pass 2 lets pay-per-use (and free allocated) sources go negative within
their ``max_purchase`` and the feature's spend limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from autumn_sdk._generated.json_types import TrackDeductionJson
from reference_server.engine.entitlements import Controls, Rollover, Source, num, r10
from reference_server.engine.intervals import approx_interval_ms

OverageBehavior = Literal["cap", "reject", "overflow", "allow", "negative"]
"""``negative`` is track's ``overage_behavior: "overflow"``: every source may go below zero (no usage
limit clamps it), spend limits still apply.  ``overflow`` (entities' seats) only lifts the floors of
sources that allow overage."""


class InsufficientBalance(Exception):
    """The requested amount could not be deducted in full under ``reject``."""

    def __init__(self, value: float, feature_id: str) -> None:
        super().__init__(f"Insufficient balance to deduct {_num(value)} from feature {feature_id}")
        self.value = value
        self.feature_id = feature_id


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


@dataclass
class Target:
    """A source together with how many of its units one unit of the tracked feature costs."""

    source: Source
    cost: float  # 1 for the feature's own sources, credit_cost for credit-system sources
    own: bool


@dataclass
class DeductionResult:
    deductions: list[TrackDeductionJson] = field(default_factory=list)
    applied: float = 0.0  # in units of the tracked feature
    touched: dict[str, float] = field(default_factory=dict)  # feature_id -> amount deducted (signed)
    receipt: list[dict[str, Any]] = field(default_factory=list)  # exact per-source amounts, for locks


def sort_key(source: Source, entity_id: str | None, own: bool) -> tuple[Any, ...]:
    entity_first = (source.entity_id is None) if entity_id else (source.entity_id is not None)
    interval = source.interval
    has_reset = source.next_reset_at is not None and interval is not None and interval != "one_off"
    interval_len = approx_interval_ms(interval, source.interval_count) if has_reset and interval else math.inf
    return (
        0 if own else 1,
        int(entity_first),
        0 if source.unlimited else 1,
        0 if has_reset else 1,
        interval_len,
        source.expires_at if source.expires_at is not None else math.inf,
        source.entity_id or "",
        1 if source.is_addon else 0,
        1 if source.pay_per_use else 0,
        source.created_at,
        source.pk,
    )


def order_targets(targets: list[Target], entity_id: str | None) -> list[Target]:
    return sorted(targets, key=lambda t: sort_key(t.source, entity_id, t.own))


def _record(
    result: DeductionResult, t: Target, amount_units: float, rollover: Rollover | None = None
) -> None:
    s = t.source
    credits = r10(amount_units * t.cost)
    result.deductions.append(
        {
            "balance_id": rollover.id if rollover else s.id,
            "feature_id": s.feature_id,
            "plan_id": s.plan_id,
            "reset": s.reset_json(),
            "value": num(credits),
        }
    )
    result.touched[s.feature_id] = r10(result.touched.get(s.feature_id, 0.0) + credits)
    result.receipt.append(
        {"source_pk": s.pk, "rollover_id": rollover.id if rollover else None, "amount": credits}
    )
    s.dirty = True


def _overage_floor(s: Source) -> float:
    """The lowest balance pass 2 may take a source to."""
    if s.max_purchase is None:
        return -math.inf
    return -float(s.max_purchase)


def deduct(
    targets: list[Target],
    value: float,
    controls: dict[str, Controls],
    now_ms: int,
    behavior: OverageBehavior = "cap",
    feature_id: str = "",
) -> DeductionResult:
    """Deduct ``value`` units of the tracked feature across ordered ``targets`` (mutates sources).

    Under ``reject`` nothing is changed when the full amount cannot be applied.
    """
    result = DeductionResult()
    if value == 0 or not targets:
        return result
    if value < 0:
        return _refund(targets, -value, behavior)
    snapshot = [(t.source.balance, [(r.balance, r.usage) for r in t.source.rollovers]) for t in targets]

    unlimited = [t for t in targets if t.source.unlimited]
    if unlimited:
        t = unlimited[0]
        t.source.balance = r10(t.source.balance - value * t.cost)
        _record(result, t, value)
        result.applied = value
        return result

    need = value
    # Rollovers first: soonest expiry first, never-expiring last, own feature before credit systems.
    roll_items: list[tuple[Target, Rollover]] = []
    for t in targets:
        for r in t.source.live_rollovers(now_ms):
            roll_items.append((t, r))
    roll_items.sort(key=lambda tr: (0 if tr[0].own else 1, tr[1].expires_at or math.inf, tr[1].created_at))
    for t, r in roll_items:
        if need <= 0:
            break
        avail = max(0.0, r.balance) / t.cost
        take = min(need, avail)
        if take > 0:
            r.balance = r10(r.balance - take * t.cost)
            r.usage = r10(r.usage + take * t.cost)
            need = r10(need - take)
            _record(result, t, take, r)

    # Pass 1: never below zero.
    for t in targets:
        if need <= 0:
            break
        avail = max(0.0, t.source.balance) / t.cost
        take = min(need, avail)
        if take > 0:
            t.source.balance = r10(t.source.balance - take * t.cost)
            need = r10(need - take)
            _record(result, t, take)

    # Pass 2: overage on pay-per-use, free allocated, or control-enabled sources.
    if need > 0 and behavior != "allow":
        spend_room: dict[str, float] = {}
        for t in targets:
            fid = t.source.feature_id
            ctl = controls.get(fid)
            if ctl is not None and fid not in spend_room:
                own = [x.source for x in targets if x.source.feature_id == fid]
                cap = ctl.spend_cap(own)
                if cap is not None:
                    current = sum(max(0.0, -s.balance) for s in own)
                    spend_room[fid] = max(0.0, cap - current)
        for t in targets:
            if need <= 0:
                break
            s = t.source
            ctl = controls.get(s.feature_id)
            free_allocated = s.continuous and s.price is None
            if behavior != "negative":
                if ctl is not None and ctl.overage_allowed is False:
                    continue
                control_on = ctl is not None and ctl.overage_allowed is True
                if not (s.pay_per_use or free_allocated or control_on):
                    continue
            spend_limited = s.feature_id in spend_room
            if behavior in ("overflow", "negative") or spend_limited or free_allocated or not s.pay_per_use:
                floor = -math.inf
            else:
                floor = _overage_floor(s)
            room_units = (s.balance - floor) / t.cost
            if spend_limited:
                room_units = min(room_units, spend_room.get(s.feature_id, 0.0) / t.cost)
            take = min(need, max(0.0, room_units))
            if take > 0:
                s.balance = r10(s.balance - take * t.cost)
                need = r10(need - take)
                if s.feature_id in spend_room:
                    spend_room[s.feature_id] = max(0.0, spend_room[s.feature_id] - take * t.cost)
                _record(result, t, take)

    if need > 0 and behavior == "allow":
        t = targets[0]
        t.source.balance = r10(t.source.balance - need * t.cost)
        _record(result, t, need)
        need = 0.0

    if need > 0 and behavior == "reject":
        for t, (bal, rolls) in zip(targets, snapshot, strict=True):
            t.source.balance = bal
            for r, (rb, ru) in zip(t.source.rollovers, rolls, strict=True):
                r.balance, r.usage = rb, ru
        raise InsufficientBalance(value, feature_id or targets[0].source.feature_id)
    if len(result.deductions) > 1:  # one entry per balance, as Autumn folds a row's draws
        _merge_same_source(result)
    result.applied = r10(value - need)
    return result


def _refund(targets: list[Target], amount: float, behavior: OverageBehavior) -> DeductionResult:
    """Give usage back: lift negative balances to zero, then sources up to their starting grant."""
    result = DeductionResult()
    need = amount
    unlimited = [t for t in targets if t.source.unlimited]
    if unlimited:
        t = unlimited[0]
        t.source.balance = r10(t.source.balance + amount * t.cost)
        _record(result, t, -amount)
        result.applied = -amount
        return result
    for t in targets:
        if need <= 0:
            break
        s = t.source
        if s.balance < 0:
            give = min(need, -s.balance / t.cost)
            s.balance = r10(s.balance + give * t.cost)
            need = r10(need - give)
            _record(result, t, -give)
    for t in targets:
        if need <= 0:
            break
        s = t.source
        room = (s.start_balance - s.balance) / t.cost
        give = min(need, max(0.0, room))
        if give > 0:
            s.balance = r10(s.balance + give * t.cost)
            need = r10(need - give)
            _record(result, t, -give)
    if need > 0 and behavior == "allow":
        t = targets[0]
        t.source.balance = r10(t.source.balance + need * t.cost)
        _record(result, t, -need)
        need = 0.0
    result.applied = -r10(amount - need)
    _merge_same_source(result)
    return result


def _merge_same_source(result: DeductionResult) -> None:
    merged: dict[str, TrackDeductionJson] = {}
    for d in result.deductions:
        if d["balance_id"] in merged:
            merged[d["balance_id"]]["value"] = num(merged[d["balance_id"]]["value"] + d["value"])
        else:
            merged[d["balance_id"]] = {**d}
    result.deductions = list(merged.values())
