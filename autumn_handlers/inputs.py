"""What the handler accepts from the browser, checked before ``identify`` or Autumn is called.

autumn-js reads any unparsable or non-object body as ``{}`` and answers a schema violation with a 500
``internal_error``. This handler is stricter, as the reference server is, so a bad request is the
caller's 4xx and never reaches the app or Autumn:

* a body over ``max_body_bytes`` (default :data:`DEFAULT_MAX_BODY_BYTES`, 1 MiB; the declared
  ``Content-Length`` or the bytes read): 413 ``payload_too_large``;
* a non-empty body without a JSON ``Content-Type``: 415 ``unsupported_media_type`` (a ``text/plain``
  POST is a CORS "simple request" that another site can send with the user's cookies and no
  preflight; the hooks always send ``application/json``);
* anything else the browser sent wrong: 400 ``invalid_inputs``, Autumn's code for bad input: a body
  that is not UTF-8 JSON, not an object, nested deeper than :data:`MAX_NESTING_DEPTH`, holding
  ``NaN``/``Infinity`` or a number no double can hold (``1e309``, a 400-digit integer), a string with a
  NUL character or a lone surrogate, or one that does not fit the route's schema (``planId: is
  required``), including numbers given as strings that parse to a non-finite value (``"Infinity"``).

An empty body counts as ``{}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "INVALID_INPUTS",
    "MAX_NESTING_DEPTH",
    "InvalidInput",
    "check_api_values",
    "declared_length",
    "describe_validation_error",
    "parse_body",
]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB); the hooks' bodies are a few hundred bytes."""

MAX_NESTING_DEPTH = 32
"""Deepest nesting of objects and arrays accepted; the deepest hook body (attach ``customize``) uses 5."""

INVALID_INPUTS = "invalid_inputs"
"""Autumn's error code for a request it refuses as malformed."""


class InvalidInput(Exception):
    """A request the handler refuses: ``status``, Autumn-style ``code`` and a message for the browser."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(400, INVALID_INPUTS, message)


def declared_length(content_length: str | None) -> int | None:
    """The ``Content-Length`` header as a number (``None`` when absent or not a number)."""
    text = (content_length or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text) if len(text) < 20 else 2**64  # past any limit either way


def _too_large(max_bytes: int) -> InvalidInput:
    return InvalidInput(413, "payload_too_large", f"Request body is larger than {max_bytes} bytes")


def _is_json_media_type(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _refuse_constant(token: str) -> Any:
    raise _invalid(f"Request body contains {token}: numbers must be finite")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _invalid(f"Request body contains the number {token[:40]}, which is out of range")
    return value


def _bounded_int(token: str) -> int:
    try:
        value = int(token)
        float(value)  # the same bound as a double, which is what Autumn reads a JSON number into
    except (ValueError, OverflowError):
        raise _invalid(
            f"Request body contains an integer of {len(token)} digits, which is out of range"
        ) from None
    return value


def _path(parts: tuple[str | int, ...]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return text.lstrip(".") or "body"


def _check_string(text: str, parts: tuple[str | int, ...]) -> None:
    if "\x00" in text:
        raise _invalid(f"{_path(parts)}: must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(f"{_path(parts)}: must be valid Unicode (it contains a lone surrogate)") from None


def _check_values(value: Any, *, camel_paths: bool) -> None:
    """Walk a parsed body: depth, strings (keys too) and numbers; iterative, so depth cannot overflow."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, parts = stack.pop()
        if len(parts) > MAX_NESTING_DEPTH:
            raise _invalid(f"Request body is nested deeper than {MAX_NESTING_DEPTH} levels")
        if isinstance(item, str):
            _check_string(item, parts)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, float) and not math.isfinite(item):
            raise _invalid(f"{_path(parts)}: must be a finite number")
        elif isinstance(item, int):
            try:
                float(item)
            except OverflowError:
                raise _invalid(f"{_path(parts)}: is out of range") from None
        elif isinstance(item, Mapping):
            for key, child in item.items():
                name = str(key)
                _check_string(name, parts)
                stack.append((child, (*parts, to_camel(name) if camel_paths else name)))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, (*parts, index)) for index, child in enumerate(item))


def parse_body(
    raw: bytes, *, content_type: str | None, content_length: str | None, max_bytes: int
) -> dict[str, Any]:
    """The browser's JSON object; raises :class:`InvalidInput` for anything this module refuses."""
    declared = declared_length(content_length)
    if len(raw) > max_bytes or (declared is not None and declared > max_bytes):
        raise _too_large(max_bytes)
    if not raw.strip():
        return {}
    if not _is_json_media_type(content_type):
        raise InvalidInput(
            415, "unsupported_media_type", "Request body must be sent as Content-Type: application/json"
        )
    try:
        parsed = json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise _invalid(f"Request body is nested deeper than {MAX_NESTING_DEPTH} levels") from None
    except ValueError:  # also UnicodeDecodeError
        raise _invalid("Request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _invalid("Request body must be a JSON object")
    _check_values(parsed, camel_paths=False)
    return parsed


def check_api_values(body: Mapping[str, Any]) -> None:
    """The snake_case body about to go to Autumn holds only finite numbers (the schema turned a
    string like ``"Infinity"`` into a float); paths are named as the browser spells them."""
    _check_values(body, camel_paths=True)


# --- schema violations, in the browser's terms ------------------------------------------------------

_BRANCH_TAG = re.compile(r"[\[\]\-]|^(str|int|float|bool|none|list|dict|bytes)$|^[A-Z]")
"""A ``loc`` part that names a union member (``str``, ``list[str]``, ``function-after[...]``, a model
class), not a key the browser sent."""

_REASONS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "none_required": "must be null",
}


def _reason(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    if kind in ("literal_error", "enum"):
        expected = (error.get("ctx") or {}).get("expected")
        if expected:
            return f"must be one of {expected}"
    reason = _REASONS.get(kind)
    if reason is not None:
        return reason
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _combine(reasons: list[str]) -> str:
    """``must be a string`` + ``must be a list`` -> ``must be a string or a list``."""
    if "must be a number" in reasons and "must be an integer" in reasons:
        reasons = [reason for reason in reasons if reason != "must be an integer"]
    prefix = "must be "
    if len(reasons) > 1 and all(reason.startswith(prefix) for reason in reasons):
        return prefix + " or ".join(reason[len(prefix) :] for reason in reasons)
    return " or ".join(reasons)


def describe_validation_error(exc: ValidationError) -> str:
    """``planId: is required; customize.price.amount: must be a number``: one entry per field the
    browser got wrong, union alternatives merged into one reason."""
    by_field: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        parts = tuple(
            part for part in error["loc"] if isinstance(part, int) or not _BRANCH_TAG.search(str(part))
        )
        reasons = by_field.setdefault(_path(parts), [])
        reason = _reason(error)
        if reason not in reasons:
            reasons.append(reason)
    return "; ".join(f"{field}: {_combine(reasons)}" for field, reasons in by_field.items())
