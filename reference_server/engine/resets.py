"""Lazy resets and rollovers: applied whenever a subject is read, computed from the clock.

Nothing sleeps until a boundary: a source whose ``next_reset_at`` has passed is brought up to date
the next time anyone reads it, which gives the same result as a reset "at" the boundary.
"""

from __future__ import annotations

import math

from reference_server.engine.entitlements import Rollover, Source, r10
from reference_server.engine.intervals import add_months, next_boundary_after


def _rollover_cap(source: Source) -> float | None:
    cfg = source.rollover_config or {}
    if cfg.get("max") is not None:
        return float(cfg["max"])
    if cfg.get("max_percentage") is not None:
        return float(math.floor(source.start_balance * float(cfg["max_percentage"]) / 100))
    return None


def _rollover_expiry(source: Source, reset_at: int) -> int | None:
    cfg = source.rollover_config or {}
    if cfg.get("expiry_duration_type", "month") == "forever":
        return None
    length = int(cfg.get("expiry_duration_length") or 1)
    return add_months(reset_at, length)


def apply_rollover_cap(source: Source, now_ms: int) -> None:
    """Trim rollovers to the cap, oldest (soonest expiring) first; drop expired and empty rows."""
    live = [r for r in source.live_rollovers(now_ms) if r.balance > 0]
    cap = _rollover_cap(source)
    if cap is not None:
        total = sum(r.balance for r in live)
        excess = total - cap
        live.sort(key=lambda r: (r.expires_at if r.expires_at is not None else math.inf, r.created_at))
        for r in live:
            if excess <= 0:
                break
            cut = min(r.balance, excess)
            r.balance = r10(r.balance - cut)
            excess -= cut
        live = [r for r in live if r.balance > 0]
    source.rollovers = live


def reset_source(source: Source, now_ms: int) -> bool:
    """Bring one source up to date with the clock; True when it changed."""
    if (
        source.continuous
        or source.unlimited
        or source.is_flag
        or source.interval in (None, "one_off")
        or source.next_reset_at is None
        or now_ms < source.next_reset_at
    ):
        return False
    reset_at = source.next_reset_at
    if source.rollover_config and source.balance > 0:
        source.rollovers.append(
            Rollover(
                id=f"roll_{source.pk}_{reset_at}",
                balance=r10(source.balance),
                usage=0.0,
                expires_at=_rollover_expiry(source, reset_at),
                created_at=reset_at,
            )
        )
    source.adjustment = 0.0
    source.balance = r10(source.allowance + source.prepaid)
    anchor = source.anchor_at if source.anchor_at is not None else reset_at
    source.next_reset_at = next_boundary_after(anchor, source.interval, source.interval_count, now_ms)
    # Several periods may have passed: a rollover from an older period still counts until it expires,
    # but a period with no activity rolls over its full grant again.
    if source.rollover_config:
        missed_boundary = next_boundary_after(anchor, source.interval, source.interval_count, reset_at)
        while missed_boundary <= now_ms and missed_boundary < source.next_reset_at:
            if source.balance > 0:
                source.rollovers.append(
                    Rollover(
                        id=f"roll_{source.pk}_{missed_boundary}",
                        balance=r10(source.balance),
                        usage=0.0,
                        expires_at=_rollover_expiry(source, missed_boundary),
                        created_at=missed_boundary,
                    )
                )
            missed_boundary = next_boundary_after(
                anchor, source.interval, source.interval_count, missed_boundary
            )
        apply_rollover_cap(source, now_ms)
    source.dirty = True
    return True


def apply_due_resets(sources: list[Source], now_ms: int) -> bool:
    changed = False
    for s in sources:
        if reset_source(s, now_ms):
            changed = True
        elif s.rollovers and any(r.expires_at is not None and r.expires_at <= now_ms for r in s.rollovers):
            s.rollovers = s.live_rollovers(now_ms)
            s.dirty = True
            changed = True
    return changed
