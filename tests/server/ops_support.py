"""Helpers shared by the operations tests (``test_operations*.py``)."""

from __future__ import annotations

import os

import pytest

from reference_server.api.ratelimit import SharedRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> None:
    """Redis on 127.0.0.1:6379: skip without it, but fail in CI (where .ci/run starts it)."""
    if not SharedRateLimiter(REDIS_URL).check_connection():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis must be available on 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not available on 127.0.0.1:6379")
