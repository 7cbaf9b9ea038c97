"""The one retry schedule (exponential backoff to a cap) and the numbers each kind of retried work uses.

Pure, but not the engine's (the engine's own pure tests are in tests/engine/).
"""

from __future__ import annotations

from reference_server.backoff import ExponentialBackoff
from reference_server.processors.compensation import RefundRetryPolicy
from reference_server.webhooks import DeliveryPolicy


def test_exponential_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    backoff = ExponentialBackoff(base_delay_ms=1_000, max_delay_ms=5_000)
    assert [backoff.delay_after(n) for n in range(0, 6)] == [1_000, 1_000, 2_000, 4_000, 5_000, 5_000]
    # Each kind of retried work keeps its own numbers on the one schedule.
    assert RefundRetryPolicy().delay_after(2) == 60_000
    assert DeliveryPolicy().delay_after(3) == 20_000
