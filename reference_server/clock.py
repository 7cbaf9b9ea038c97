"""Time source for the server.

Every rule that depends on time (resets, rollover expiry, lock expiry, event timestamps) asks a
``Clock`` instead of the system, so tests can move time forward without sleeping.  Test clocks
(per organization env and per customer) are stored offsets added on top of this base clock.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Returns the current time as Unix milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else int(time.time() * 1000)

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = now_ms

    def advance(self, ms: int) -> None:
        self._now += ms
