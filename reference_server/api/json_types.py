"""JSON bodies validated on their JSON types, as Autumn's Zod schemas validate them.

pydantic's default (lax) mode coerces: ``{"version": true}`` would be read as version 1,
``{"enabled": "yes"}`` as true, ``"5"`` as 5.  Zod refuses all three (``z.number()`` takes a number
only, ``z.boolean()`` a boolean only, ``z.string()`` a string only), so a body is validated in
pydantic's strict mode: a wrong JSON type is a 400 ``invalid_inputs`` naming the field
(``version: must be an integer``), never a silent conversion.  Two things Zod does accept stay
accepted:

* an integral float for an integer (``1.0``): JavaScript has one number type, so ``z.number().int()``
  takes it;
* a page size or offset given as a string or a boolean (``{"limit": "10"}``): Autumn's pagination
  schemas read the top-level ``limit`` and ``offset`` with ``z.coerce.number()``
  (``createCursorLimitSchema``, ``createPaginationParamsSchema`` in ``shared/api/common``).

The models were generated from JSON Schema and hold only JSON types (``Literal`` for an enum, no
``Enum`` or ``datetime`` field), so the parsed body is validated in Python-mode strict directly.
Query parameters (GET operations) are strings on the wire and keep the lax parsing.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reference_server.api.request_guard import MAX_SAFE_INTEGER

M = TypeVar("M", bound=BaseModel)

COERCED_NUMBERS = ("limit", "offset")
"""Top-level body fields Autumn reads with ``z.coerce.number()``."""


def validate_json_body(model: type[M], raw: dict[str, Any]) -> M:
    """``raw`` (a parsed JSON object) as ``model``, strict on JSON types; raises ValidationError.

    The common case costs one strict validation; only a body strict mode refuses is looked at again
    for what Zod accepts (:func:`zod_accepted`), and validated once more if that changed anything.
    """
    try:
        return model.model_validate(raw, strict=True)
    except ValidationError:
        accepted = zod_accepted(raw)
        if accepted is raw:
            raise
    return model.model_validate(accepted, strict=True)


def zod_accepted(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with what Zod would read as a number written as one: integral floats as ints
    everywhere, and the :data:`COERCED_NUMBERS` as ``Number(value)``.  ``raw`` itself (the same
    object) when nothing changes."""
    out: dict[str, Any] = {}
    changed = False
    for key, value in raw.items():
        new = _coerce_number(value) if key in COERCED_NUMBERS else _integral(value)
        changed = changed or new is not value
        out[key] = new
    return out if changed else raw


def _integral(value: Any) -> Any:
    """``value`` with its integral floats as ints (the same object when it holds none)."""
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        items = {k: _integral(v) for k, v in value.items()}
        return items if any(items[k] is not v for k, v in value.items()) else value
    if isinstance(value, list):
        elements = [_integral(v) for v in value]
        return elements if any(a is not b for a, b in zip(elements, value, strict=True)) else value
    return value


def _coerce_number(value: Any) -> Any:
    """JavaScript's ``Number(value)`` for a boolean or a string that reads as a finite number; any
    other value unchanged (an integral float as an int), for the model to accept or refuse."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            number = float(text)
        except ValueError:
            return value
        if "_" in text or not math.isfinite(number) or abs(number) > MAX_SAFE_INTEGER:
            return value  # not a number JavaScript reads, or past what the server holds
        return int(number) if number.is_integer() else number
    return _integral(value)
