"""Shared helpers of the SDK tests: the placeholder server and key, and the recorder that stands in for
the drivers' sleeps (installed by conftest.py's ``sleeps`` fixture).
"""

from __future__ import annotations

TEST_URL = "https://autumn.test"
TEST_KEY = "am_sk_test_123"


class SleepRecorder:
    """Stands in for ``time.sleep`` / ``asyncio.sleep`` in the drivers: records, never waits.

    ``now`` is a clock that only the recorded sleeps (and :meth:`advance`) move; the ``fake_clock``
    fixture makes the pipeline measure its budgets with it.
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 1_000.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def sync(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.advance(seconds)

    async def async_(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.advance(seconds)
