"""Exponential backoff for work the server retries from its database (webhook deliveries, refunds
due, Stripe follow-ups): the schedule is one formula, each kind of work picks its own numbers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExponentialBackoff:
    """Attempt n waits ``base_delay_ms * 2**(n-1)`` before attempt n+1, capped at ``max_delay_ms``."""

    base_delay_ms: int = 5_000
    max_delay_ms: int = 3_600_000

    def delay_after(self, attempts: int) -> int:
        return int(min(self.max_delay_ms, self.base_delay_ms * 2 ** max(0, attempts - 1)))
