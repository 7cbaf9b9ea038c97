"""Client settings: constructor arguments merged with the environment, resolved once.

Environment variables (constructor arguments win):

* ``AUTUMN_SECRET_KEY``: the secret key (``am_sk_...``);
* ``AUTUMN_URL``: the API base URL (default ``https://api.useautumn.com``);
* ``AUTUMN_FAIL_OPEN`` (or the official SDK's ``FAIL_OPEN``): ``false``/``0``/``no``/``off`` turns
  fail-open off. Unlike the official SDK, ``FAIL_OPEN=false`` really means false.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from ._operation import Operation
from ._retries import RetryConfig
from ._version import __version__
from .errors import MissingSecretKeyError

DEFAULT_BASE_URL = "https://api.useautumn.com"
DEFAULT_API_VERSION = "2.3.0"

GATE_TIMEOUT_S = 5.0
"""``check`` and ``track`` sit on the app's hot path: give up quickly (then fail open)."""
BILLING_TIMEOUT_S = 30.0
"""``billing.*`` calls wait on Stripe; a short timeout would abandon charges that still land."""
DEFAULT_TIMEOUT_S = 15.0
"""Everything else."""
TOTAL_BUDGET_FACTOR = 2.0
"""Default total budget of a call: this many times its per-attempt timeout (5 s -> 10 s for ``check``)."""

_FALSE_WORDS = frozenset({"false", "0", "no", "off", "n", "f"})
_TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y", "t"})


class DebugLogger(Protocol):
    """Anything with a ``debug(message)`` method (the official SDK's ``debug_logger``)."""

    def debug(self, msg: str, /) -> object: ...


SecretKey = str | Callable[[], str]
"""A key, or a zero-argument callable evaluated on every request (for rotating keys)."""


def parse_bool_env(value: str | None, *, name: str) -> bool | None:
    """``None`` when unset or blank; otherwise a strict boolean parse (unknown words raise)."""
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word in _FALSE_WORDS:
        return False
    if word in _TRUE_WORDS:
        return True
    raise ValueError(f"{name}={value!r} is not a boolean; use true/false, 1/0, yes/no or on/off")


def resolve_fail_open(explicit: bool | None) -> bool:
    if explicit is not None:
        return explicit
    for name in ("AUTUMN_FAIL_OPEN", "FAIL_OPEN"):
        parsed = parse_bool_env(os.environ.get(name), name=name)
        if parsed is not None:
            return parsed
    return True


def resolve_secret_key(explicit: SecretKey | None) -> SecretKey:
    if explicit is not None and (callable(explicit) or explicit.strip()):
        return explicit
    from_env = os.environ.get("AUTUMN_SECRET_KEY", "").strip()
    if from_env:
        return from_env
    raise MissingSecretKeyError(
        "No Autumn secret key: pass Autumn(secret_key='am_sk_...') or set the AUTUMN_SECRET_KEY "
        "environment variable (find your key at https://app.useautumn.com/dev)."
    )


def resolve_base_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("AUTUMN_URL", "").strip() or DEFAULT_BASE_URL
    return url.rstrip("/")


def base_url_source(explicit: str | None) -> str:
    """Where the base URL came from, for messages: ``server_url=``, ``AUTUMN_URL`` or the default."""
    if explicit:
        return "server_url="
    if os.environ.get("AUTUMN_URL", "").strip():
        return "AUTUMN_URL"
    return "the default (no server_url= given and AUTUMN_URL not set)"


def user_agent() -> str:
    return f"autumn-kit-python/{__version__} (httpx {httpx.__version__}; python {platform.python_version()})"


_TIMEOUT_OF_CLASS = {"gate": GATE_TIMEOUT_S, "billing": BILLING_TIMEOUT_S, "default": DEFAULT_TIMEOUT_S}


def default_timeout_s(op: Operation) -> float:
    """Per-operation default timeout from ``op.timeout_class``: 5 s for check/track, 30 s for
    billing.*, 15 s otherwise."""
    return _TIMEOUT_OF_CLASS[op.timeout_class]


@dataclass(frozen=True)
class ClientConfig:
    """Everything a call needs from its client, already validated."""

    secret_key: SecretKey
    base_url: str
    api_version: str
    fail_open: bool
    retries: RetryConfig | int
    timeout: httpx.Timeout | None
    """Client-wide per-attempt timeout; ``None``: the per-operation defaults (:func:`default_timeout_s`)."""
    total_timeout_s: float | None = None
    """Client-wide total budget of a call (every attempt and every wait); ``None`` means twice the
    call's per-attempt timeout."""
    base_url_source: str = "server_url="
    default_headers: Mapping[str, str] = field(default_factory=dict)
    debug_logger: DebugLogger | None = None
    user_agent: str = field(default_factory=user_agent)

    @classmethod
    def build(
        cls,
        *,
        secret_key: SecretKey | None,
        server_url: str | None,
        x_api_version: str,
        fail_open: bool | None,
        max_retries: int,
        retry_config: RetryConfig | None,
        timeout: float | httpx.Timeout | None,
        timeout_ms: int | None,
        default_headers: Mapping[str, str] | None,
        debug_logger: DebugLogger | None,
        total_timeout_ms: int | None = None,
    ) -> ClientConfig:
        if timeout_ms is not None:
            resolved_timeout: httpx.Timeout | None = httpx.Timeout(timeout_ms / 1000)
        elif isinstance(timeout, httpx.Timeout):
            resolved_timeout = timeout
        elif timeout is not None:
            resolved_timeout = httpx.Timeout(float(timeout))
        else:
            resolved_timeout = None
        total_timeout_s = _positive_seconds(total_timeout_ms, "total_timeout_ms")
        return cls(
            secret_key=resolve_secret_key(secret_key),
            base_url=resolve_base_url(server_url),
            api_version=x_api_version,
            fail_open=resolve_fail_open(fail_open),
            retries=retry_config if retry_config is not None else max_retries,
            timeout=resolved_timeout,
            total_timeout_s=total_timeout_s,
            base_url_source=base_url_source(server_url),
            default_headers=dict(default_headers or {}),
            debug_logger=debug_logger,
        )

    def bearer_token(self) -> str:
        return self.secret_key() if callable(self.secret_key) else self.secret_key

    def timeout_for(self, op: Operation, timeout_ms: int | None) -> httpx.Timeout:
        """One attempt's timeout: the call's ``timeout_ms``, else the client's, else the op's default."""
        if timeout_ms is not None:
            return httpx.Timeout(timeout_ms / 1000)
        if self.timeout is not None:
            return self.timeout
        return httpx.Timeout(default_timeout_s(op))

    def total_timeout_for(self, attempt: httpx.Timeout, total_timeout_ms: int | None) -> float:
        """The call's whole budget in seconds: the call's ``total_timeout_ms``, else the client's,
        else :data:`TOTAL_BUDGET_FACTOR` times the longest phase of one attempt."""
        per_call = _positive_seconds(total_timeout_ms, "total_timeout_ms")
        if per_call is not None:
            return per_call
        if self.total_timeout_s is not None:
            return self.total_timeout_s
        phases = [t for t in (attempt.connect, attempt.read, attempt.write) if t is not None]
        return TOTAL_BUDGET_FACTOR * max(phases, default=DEFAULT_TIMEOUT_S)


def _positive_seconds(milliseconds: int | None, name: str) -> float | None:
    if milliseconds is None:
        return None
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)) or milliseconds <= 0:
        raise ValueError(f"{name} must be a positive number of milliseconds, got {milliseconds!r}")
    return milliseconds / 1000
