"""The ``Idempotency-Key`` header at the edge: which keys are accepted, the stored answer a repeat
gets, and the 409s for another request under the key or one still running.

The claim itself, its unit of work and the stored answers are :mod:`reference_server.store.idempotency`'s.
"""

from __future__ import annotations

import json

from reference_server.api.refusals import Answer, refusal
from reference_server.errors import ApiError
from reference_server.store.idempotency import Stored

IDEMPOTENCY_KEY_MAX_LENGTH = 255
IN_FLIGHT_RETRY_AFTER_S = 1


def check_key(key: str) -> None:
    """Refuse (400) a key that is empty, too long or holds a NUL."""
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or "\x00" in key:
        raise ApiError(
            400,
            "invalid_inputs",
            f"Idempotency-Key: must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters, without NUL",
        )


def answer_stored(stored: Stored, key: str, hashed: str) -> Answer:
    """Replay the stored response of the same request; any other request with the key gets 409."""
    if stored.status is None or stored.body is None or stored.request_hash != hashed:
        message = f"Another request with idempotency key {key} has already been received"
        raise ApiError(409, "duplicate_idempotency_key", message)
    return stored.status, json.loads(stored.body), {"Idempotent-Replayed": "true"}


def in_flight(key: str, authorization: str | None) -> Answer:
    """409 for a repeat while the first request with the key is still running, with ``Retry-After``."""
    status, body, _ = refusal(
        ApiError(
            409,
            "idempotency_key_in_flight",
            f"A request with idempotency key {key} is still being processed; retry it in "
            f"{IN_FLIGHT_RETRY_AFTER_S} second to get its response",
        ),
        authorization,
    )
    return status, body, {"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)}
