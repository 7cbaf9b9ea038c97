"""Retry settings and the backoff arithmetic, without any I/O."""

from __future__ import annotations

import email.utils

import pytest

from autumn_sdk._retries import (
    MAX_CONFIGURED_RETRIES,
    RETRY_AFTER_CAP_S,
    BackoffStrategy,
    RetryConfig,
    RetryPolicy,
    parse_retry_after,
)


def test_int_setting_means_that_many_retries_with_capped_full_jitter() -> None:
    policy = RetryPolicy.resolve(3)
    assert policy.max_retries == 3
    for index in range(10):
        assert 0 <= policy.backoff_delay(index) <= min(8.0, 0.5 * 2**index)
    assert policy.next_delay(3, None, 0.0) is None


def test_none_and_strategy_none_disable_retries() -> None:
    assert RetryPolicy.resolve(None).max_retries == 0
    assert RetryPolicy.resolve(RetryConfig("none")).max_retries == 0


def test_official_config_is_converted_from_milliseconds_and_bounded() -> None:
    policy = RetryPolicy.resolve(RetryConfig("backoff", BackoffStrategy(100, 2000, 1.5, 5000), False))
    assert policy.initial_delay_s == 0.1
    assert policy.max_delay_s == 2.0
    assert policy.max_elapsed_s == 5.0
    assert policy.retry_connection_errors is False
    assert policy.max_retries == MAX_CONFIGURED_RETRIES
    assert policy.next_delay(0, 1.0, 4.5) is None  # would overrun the elapsed budget
    assert policy.next_delay(0, 1.0, 1.0) == 1.0


@pytest.mark.parametrize("bad", [-1, True])
def test_invalid_settings_are_rejected(bad: int) -> None:
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy.resolve(bad)
    with pytest.raises(ValueError, match="strategy"):
        RetryPolicy.resolve(RetryConfig("linear", BackoffStrategy(1, 2, 2.0, 10)))


def test_retry_after_wins_over_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy.resolve(2)
    assert policy.next_delay(0, 7.0, 0.0) == 7.0
    assert policy.next_delay(0, RETRY_AFTER_CAP_S + 1, 0.0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("", None), ("soon", None), (None, None), ("nan", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
