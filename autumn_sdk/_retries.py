"""Retry configuration and the backoff arithmetic.

Two ways to configure retries, per client (``max_retries=`` / ``retry_config=``) or per call
(``retries=``):

* an ``int``: that many retries with exponential backoff and full jitter (0.5 s doubling, capped at
  8 s per wait);
* the official SDK's ``RetryConfig("backoff", BackoffStrategy(initial_interval, max_interval,
  exponent, max_elapsed_time), retry_connection_errors)`` with times in milliseconds: retries until
  ``max_elapsed_time`` is spent (bounded to :data:`MAX_CONFIGURED_RETRIES` attempts).

Everything here is pure: the transport asks :class:`RetryPolicy` how long to wait and whether it may
try again; only the drivers actually sleep.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Literal

DEFAULT_MAX_RETRIES = 2
DEFAULT_INITIAL_DELAY_S = 0.5
DEFAULT_MAX_DELAY_S = 8.0
DEFAULT_EXPONENT = 2.0
RETRY_AFTER_CAP_S = 60.0
"""A server's ``Retry-After`` is honoured up to this many seconds; a longer wait gives up instead."""
MAX_CONFIGURED_RETRIES = 10
"""Upper bound on attempts for a ``RetryConfig`` so a zero/huge ``max_elapsed_time`` cannot loop forever."""


@dataclass(frozen=True)
class BackoffStrategy:
    """Exponential backoff parameters, in milliseconds (the official SDK's names and order)."""

    initial_interval: int
    max_interval: int
    exponent: float
    max_elapsed_time: int


@dataclass(frozen=True)
class RetryConfig:
    """Official-SDK retry configuration: ``RetryConfig("backoff", BackoffStrategy(...), True)``.

    ``strategy="none"`` disables retries.
    """

    strategy: Literal["backoff", "none"] | str
    backoff: BackoffStrategy | None = None
    retry_connection_errors: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    """The resolved rules for one call: how many tries, how long to wait, what counts as retryable."""

    max_retries: int
    initial_delay_s: float = DEFAULT_INITIAL_DELAY_S
    max_delay_s: float = DEFAULT_MAX_DELAY_S
    exponent: float = DEFAULT_EXPONENT
    max_elapsed_s: float | None = None
    retry_connection_errors: bool = True

    @classmethod
    def resolve(cls, setting: RetryConfig | int | None) -> RetryPolicy:
        """Turn a user setting (``int``, ``RetryConfig`` or ``None`` = no retries) into a policy."""
        if setting is None:
            return cls(max_retries=0)
        if isinstance(setting, bool):
            raise TypeError("retries must be an int or a RetryConfig, not a bool")
        if isinstance(setting, int):
            if setting < 0:
                raise ValueError("retries must be >= 0")
            return cls(max_retries=setting)
        if setting.strategy == "none" or setting.backoff is None:
            return cls(max_retries=0, retry_connection_errors=setting.retry_connection_errors)
        if setting.strategy != "backoff":
            raise ValueError(f"unknown retry strategy {setting.strategy!r}; use 'backoff' or 'none'")
        backoff = setting.backoff
        return cls(
            max_retries=MAX_CONFIGURED_RETRIES,
            initial_delay_s=backoff.initial_interval / 1000,
            max_delay_s=backoff.max_interval / 1000,
            exponent=backoff.exponent,
            max_elapsed_s=backoff.max_elapsed_time / 1000,
            retry_connection_errors=setting.retry_connection_errors,
        )

    def backoff_delay(self, retry_index: int) -> float:
        """Full-jitter wait before retry number ``retry_index`` (0-based): uniform in [0, cap]."""
        ceiling = min(self.max_delay_s, self.initial_delay_s * self.exponent**retry_index)
        return random.uniform(0.0, max(ceiling, 0.0))

    def next_delay(self, retry_index: int, retry_after: float | None, elapsed_s: float) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the budget is spent."""
        if retry_index >= self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > RETRY_AFTER_CAP_S:
                return None
            delay = retry_after
        else:
            delay = self.backoff_delay(retry_index)
        if self.max_elapsed_s is not None and elapsed_s + delay > self.max_elapsed_s:
            return None
        return delay


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delta-seconds or an HTTP date; ``None`` if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        current = time.time() if now is None else now
        seconds = when.timestamp() - current
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)
