"""The check decision (billing-semantics §2.5): may the subject use ``required`` units now?"""

from __future__ import annotations

import math

from reference_server.engine.balances import current_overage
from reference_server.engine.entitlements import Controls, Source, r10


def metered_allowed(sources: list[Source], required: float, controls: Controls | None, now_ms: int) -> bool:
    live = [s for s in sources if s.is_live(now_ms) and not s.is_flag]
    if not live:
        return False
    if any(s.unlimited for s in live):
        return True
    if required < 0:
        return True
    remaining = sum(max(0.0, s.balance) for s in live) + sum(
        r.balance for s in live for r in s.live_rollovers(now_ms)
    )
    remaining = r10(remaining)
    if controls is not None and controls.overage_allowed is False:
        return remaining >= required
    pay_per_use = any(s.pay_per_use for s in live)
    if pay_per_use or (controls is not None and controls.overage_allowed is True):
        over = current_overage(live)
        available: float
        cap = controls.spend_cap(live) if controls is not None else None
        if cap is not None:
            available = max(0.0, cap - over)
        else:
            limits = [s.max_purchase for s in live if s.pay_per_use]
            if limits and all(m is not None for m in limits):
                available = max(0.0, sum(m for m in limits if m is not None) - over)
            else:
                available = math.inf
        if available == math.inf:
            return True
        return r10(remaining + available) >= required
    return remaining >= required
