"""Autumn's default rate limits (documentation/rate-limits.mdx): in process, or shared through Redis.

Fixed one-window counters per (group, scope key).  :class:`RateLimiter` counts in this process's
memory (one process); :class:`SharedRateLimiter` counts in Redis through the ``limits`` library, so
every process behind a load balancer enforces one limit together (``AUTUMN_REDIS_URL``).  Off for
tests and benchmarks (``create_app(rate_limits=False)``); the numbers can be overridden per group.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from autumn_sdk._generated.operations import OPERATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: float
    per_customer: bool


DEFAULT_LIMITS: dict[str, Limit] = {
    "check": Limit(10_000, 1.0, True),
    "track": Limit(10_000, 1.0, True),
    "billing": Limit(30, 60.0, True),
    "events": Limit(5, 1.0, True),
    "entity_get": Limit(50, 1.0, True),
    "list": Limit(50, 1.0, False),
    "other": Limit(25, 1.0, False),
}

_GROUP_OF: dict[str, str] = {op.qualified_name: op.rate_limit_group for op in OPERATIONS}
"""Each operation's declared rate-limit group (``Operation.rate_limit_group``, codegen/policy.py)."""


def group_of(operation: str) -> str:
    """The rate-limit group of a qualified operation name; operations beyond the spec are "other"."""
    return _GROUP_OF.get(operation, "other")


@dataclass
class RateLimiter:
    limits: dict[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    clock: Callable[[], float] = time.monotonic
    _counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, operation: str, org_key: str, customer_id: str | None) -> float | None:
        """Count one request; returns the seconds to wait when over the limit, else None."""
        group = group_of(operation)
        limit = self.limits.get(group)
        if limit is None:
            return None
        scope = f"{org_key}:{customer_id}" if limit.per_customer and customer_id else org_key
        now = self.clock()
        window = int(now // limit.window_s)
        key = (group, scope, window)
        with self._lock:
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if k[2] >= window}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count > limit.requests:
            return max(1.0, math.ceil((window + 1) * limit.window_s - now))
        return None


class SharedRateLimiter(RateLimiter):
    """The same limits counted in Redis (``limits``' fixed windows), shared by every process using
    ``redis_url`` and ``key_prefix`` (the app uses one per database, so servers of one database share
    their counts and other databases' servers on the same Redis do not).  When Redis does not answer,
    requests are let through (logged once a minute): a rate limiter must not take the API down."""

    def __init__(
        self, redis_url: str, limits: dict[str, Limit] | None = None, key_prefix: str = "autumn-rl"
    ) -> None:
        super().__init__(limits=dict(limits or DEFAULT_LIMITS))
        self.storage = RedisStorage(
            redis_url,
            key_prefix=key_prefix,
            wrap_exceptions=True,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        self.strategy = FixedWindowRateLimiter(self.storage)
        self._items: dict[str, RateLimitItem] = {}
        self._warned_at = -math.inf

    def check_connection(self) -> bool:
        """Whether Redis answers (for start-up and readiness)."""
        try:
            return bool(self.storage.check())
        except Exception:
            return False

    def _item(self, group: str, limit: Limit) -> RateLimitItem:
        item = self._items.get(group)
        if item is None:
            item = RateLimitItemPerSecond(limit.requests, max(1, round(limit.window_s)), namespace=group)
            self._items[group] = item
        return item

    def hit(self, operation: str, org_key: str, customer_id: str | None) -> float | None:
        group = group_of(operation)
        limit = self.limits.get(group)
        if limit is None:
            return None
        scope = f"{org_key}:{customer_id}" if limit.per_customer and customer_id else org_key
        item = self._item(group, limit)
        try:
            if self.strategy.hit(item, scope):
                return None
            reset_at = self.strategy.get_window_stats(item, scope).reset_time
        except Exception as exc:
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning("rate limits not enforced: Redis did not answer (%s)", exc)
            return None
        return max(1.0, math.ceil(reset_at - time.time()))
