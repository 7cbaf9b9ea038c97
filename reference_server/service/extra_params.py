"""Request models of what this server serves beyond the specs.

The specs' operations (the official SDK's beyond Autumn's published spec included, from
``spec/autumn-sdk-1.2.0-operations.yml``) are validated with the generated models.  These few
have none: the operations no spec has (``test_clocks.advance``, ``catalog.internal_ids``...), and
the wider request ``customers.advance_test_clock`` takes here (see ``WIDER_PARAMS`` in
:mod:`reference_server.api.endpoints`).  The router validates them like the rest: the same 400
``invalid_inputs`` messages, the same limits from :mod:`request_guard` on the raw body.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

Number = int | float
"""A JSON number that stays an integer when sent as one (``10``, not ``10.0``, is echoed back)."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NoParams(_Params):
    """The request of an operation that reads nothing from its body (``webhooks.list``...)."""


class AdvanceClockParams(_Params):
    """``test_clocks.advance`` and ``customers.advance_test_clock``: a target moment or a step.

    ``frozen_time`` (a target in ms) is what the official SDK's ``customers.advance_test_clock`` sends.
    """

    customer_id: str | None = None
    frozen_time: int | None = None
    advance_to: int | None = None
    advance_by_ms: int | None = None
    days: Number | None = None
    hours: Number | None = None
