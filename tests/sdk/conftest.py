"""Fixtures for the SDK tests: a clean environment, recorded (never real) backoff sleeps."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from autumn_sdk import _drivers, _pipeline

from .helpers import SleepRecorder

AUTUMN_ENV = ("AUTUMN_SECRET_KEY", "AUTUMN_URL", "AUTUMN_FAIL_OPEN", "FAIL_OPEN", "X_API_VERSION")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without Autumn variables from the developer's shell."""
    for name in AUTUMN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    recorder = SleepRecorder()
    monkeypatch.setattr(_drivers, "sync_sleep", recorder.sync)
    monkeypatch.setattr(_drivers, "async_sleep", recorder.async_)
    return recorder


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder) -> SleepRecorder:
    """Budgets measured on ``sleeps.now``: time passes only through backoff waits and ``advance``."""
    monkeypatch.setattr(_pipeline, "monotonic", sleeps.clock)
    return sleeps


@pytest.fixture
def sdk_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG, logger="autumn_sdk"):
        yield caplog
