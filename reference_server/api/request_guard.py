"""The server's input rules: what a request may carry before any work starts.

Every rule answers a clear 4xx in Autumn's error shape instead of letting a value reach a database
column or an arithmetic path that cannot hold it (the same limits on SQLite and PostgreSQL):

* bodies: at most :data:`DEFAULT_MAX_BODY_BYTES` (configurable, ``create_app(max_body_bytes=...)``),
  else 413; JSON nested at most :data:`MAX_DEPTH` levels, else 400;
* numbers: finite (``NaN``/``Infinity`` tokens and ``1e309`` refused), magnitude at most
  :data:`MAX_SAFE_INTEGER` (2^53 - 1, what Autumn's JavaScript server represents exactly and what
  a 64-bit column holds); a range's ``custom_range.start/end`` between 0 and
  :data:`MAX_TIMESTAMP_MS` (9999-12-31), a stored moment (``*_at``) before :data:`MAX_SCHEDULE_MS`
  (3000-01-01); interval, trial and expiry counts at most :data:`MAX_PERIOD_COUNT`, counts stored in
  32-bit columns (``version``, ``limit``, ``offset``...) at most :data:`MAX_INT32`;
* strings: no NUL character, no lone surrogate; ids, keys, names, emails and codes at most
  :data:`MAX_ID_LENGTH` characters (the ``VARCHAR(255)`` columns of ``store/tables.py``);
* ``null`` only where the spec allows it (``NON_NULLABLE_FIELDS`` of the generated models);
* validation messages in the user's words (``value: must be a number``), never the validator's
  internal union branch names.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from autumn_sdk._generated.models import non_nullable_fields
from autumn_sdk._model import AutumnModel
from reference_server.errors import ApiError

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (1 MiB); larger bodies get 413 before they are read in full."""
MAX_DEPTH = 32
"""Deepest JSON nesting accepted (the spec's deepest body nests about 11 levels)."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Largest magnitude of any number (JavaScript's ``Number.MAX_SAFE_INTEGER``, the spec's own bound)."""
MAX_TIMESTAMP_MS = 253_402_300_799_999
"""Latest timestamp accepted (9999-12-31T23:59:59.999Z, the last instant a calendar date holds)."""
MAX_SCHEDULE_MS = 32_503_680_000_000
"""Latest time a stored moment (``starts_at``, ``expires_at``, ``next_reset_at``, a test clock) may
take: 3000-01-01T00:00:00Z, so that periods counted from it stay within a calendar date."""
MAX_PERIOD_COUNT = 1000
"""Most units in one interval, trial or rollover expiry (1000 years at most from a moment before
3000, within the calendar's year 9999)."""
MAX_INT32 = 2**31 - 1
"""Largest count accepted where the value lands in a 32-bit ``INTEGER`` column on PostgreSQL."""
MAX_ID_LENGTH = 255
"""Longest id, key, name, email or code (``VARCHAR(255)`` on PostgreSQL; SQLite would take any)."""

_LIMITED_STRINGS = frozenset(
    {"id", "name", "email", "user_email", "fingerprint", "slug", "group", "code", "idempotency_key"}
)
_LIMITED_SUFFIXES = ("_id", "_ids")
_PERIOD_COUNTS = frozenset({"interval_count", "duration_length", "expiry_duration_length", "length"})
_COUNTS = frozenset({"version", "versions", "max_redemptions", "limit", "offset", "max_groups"})
_NUMBER_RULES = _PERIOD_COUNTS | _COUNTS | {"start", "end", "advance_to"}
_TIMESTAMP_PATHS = frozenset({("custom_range", "start"), ("custom_range", "end")})
_FREE_FORM = frozenset({"metadata", "properties", "checkout_session_params", "filter_by"})
"""Maps whose keys are the user's own: no per-field rule applies inside them (NUL, surrogates,
finiteness and range still do)."""
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"Request body is larger than {limit} bytes")


def parse_json_body(data: bytes) -> Any:
    """The JSON body; an :class:`ApiError` (400) when it is not JSON or nests too deeply.

    ``NaN``/``Infinity`` tokens and overflowing literals (``1e309``) parse as non-finite floats,
    long integers as integers, so :func:`check_values` refuses them naming the field; an integer
    literal too long for Python to convert (over 4300 digits) is refused unconverted.
    """
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise too_deep() from exc
    except ValueError as exc:  # also UnicodeDecodeError: the body is not UTF-8
        if "integer string conversion" in str(exc):
            message = f"Request body holds a number with more than {sys.get_int_max_str_digits()} digits"
            raise ApiError(400, "invalid_inputs", message) from exc
        raise ApiError(400, "invalid_inputs", "Request body is not valid JSON") from exc


def too_deep() -> ApiError:
    return ApiError(400, "invalid_inputs", f"Request body is nested deeper than {MAX_DEPTH} levels")


def snake(key: str) -> str:
    return key if key.islower() or not key else _CAMEL.sub("_", key).lower()


def _path_text(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _refuse(path: tuple[str | int, ...], reason: str) -> ApiError:
    return ApiError(400, "invalid_inputs", f"{_path_text(path)}: {reason}")


def _string_problem(value: str, limited: bool) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain lone surrogates (invalid Unicode)"
    if limited and len(value) > MAX_ID_LENGTH:
        return f"at most {MAX_ID_LENGTH} characters"
    return None


def _check_string(value: str, path: tuple[str | int, ...], limited: bool) -> None:
    problem = _string_problem(value, limited)
    if problem is not None:
        raise _refuse(path, problem)


def _check_key(key: str, path: tuple[str | int, ...]) -> None:
    """A map key: named by its parent (a key that cannot be encoded cannot be echoed either)."""
    problem = _string_problem(key, False)
    if problem is not None:
        raise _refuse(path, f"keys {problem}")


def _check_number(value: float, path: tuple[str | int, ...], field: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _refuse(path, "must be a finite number")
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise _refuse(path, f"must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    if path[-2:] in _TIMESTAMP_PATHS:
        if not 0 <= value <= MAX_TIMESTAMP_MS:
            raise _refuse(path, f"must be a time in milliseconds since 1970 between 0 and {MAX_TIMESTAMP_MS}")
    elif field.endswith("_at") or field == "advance_to":
        if not 0 <= value <= MAX_SCHEDULE_MS:
            raise _refuse(path, f"must be a time in milliseconds since 1970 between 0 and {MAX_SCHEDULE_MS}")
    elif field in _PERIOD_COUNTS and abs(value) > MAX_PERIOD_COUNT:
        raise _refuse(path, f"must be at most {MAX_PERIOD_COUNT}")
    elif field in _COUNTS and abs(value) > MAX_INT32:
        raise _refuse(path, f"must be at most {MAX_INT32}")


def check_values(node: Any) -> None:
    """Walk a request's values (a parsed body or query): the number, string and depth rules.

    Keys are matched in snake_case (the models also accept camelCase aliases). Raises
    :class:`ApiError` (400) naming the first offending field. Written for the hot path: a
    value that breaks no rule costs a type test and a comparison or two.
    """
    if isinstance(node, (dict, list)):
        _walk(node, (), "", 0, True)


def _walk(
    node: dict[str, Any] | list[Any], path: tuple[str | int, ...], field: str, depth: int, rules: bool
) -> None:
    if depth >= MAX_DEPTH:
        raise too_deep()
    if isinstance(node, dict):
        inner = rules and field not in _FREE_FORM
        for key, value in node.items():
            if "\x00" in key or not key.isascii():
                _check_key(key, path)
            name = key if not inner or key.islower() else snake(key)
            _value(value, path, name, name, depth, inner)
    else:
        for index, item in enumerate(node):
            _value(item, path, index, field, depth, rules)


def _value(
    value: Any, path: tuple[str | int, ...], step: str | int, field: str, depth: int, rules: bool
) -> None:
    kind = type(value)
    if kind is str:
        limited = rules and (field in _LIMITED_STRINGS or field.endswith(_LIMITED_SUFFIXES))
        if "\x00" in value or not value.isascii() or (limited and len(value) > MAX_ID_LENGTH):
            _check_string(value, (*path, step), limited)
    elif kind is int or kind is float:
        ruled = rules and (field in _NUMBER_RULES or field.endswith("_at"))
        if ruled or value != value or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            _check_number(value, (*path, step), field if rules else "")
    elif kind is dict or kind is list:
        _walk(value, (*path, step), field, depth + 1, rules)


def check_nulls(model: BaseModel) -> None:
    """Refuse an explicit ``null`` the spec does not allow (the models read it as "not sent")."""
    _nulls(model, ())


def _nulls(value: Any, path: tuple[str | int, ...]) -> None:
    if isinstance(value, AutumnModel):
        refused, nested = _null_plan(type(value))
        present = value.model_fields_set
        nulls = [name for name in refused & present if getattr(value, name) is None]
        if nulls:  # the first in the model's field order, so the message never depends on set order
            order = list(type(value).model_fields)
            raise _refuse((*path, min(nulls, key=order.index)), "must not be null")
        for name in nested:
            if name in present:
                _nulls(getattr(value, name), (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _nulls(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            _nulls(item, (*path, key))


@functools.cache
def _null_plan(model: type[AutumnModel]) -> tuple[frozenset[str], tuple[str, ...]]:
    """A model's fields that refuse null, and those that may hold further models."""
    nested = tuple(name for name, info in model.model_fields.items() if _holds_models(info.annotation))
    return non_nullable_fields(model), nested


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in typing.get_args(annotation))


# -- validation messages -------------------------------------------------------------------------

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_from_float": "an integer",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "tuple_type": "an array",
    "set_type": "an array",
    "none_required": "null",
}
_BRANCH = re.compile(r"^(int|float|str|bool|none|bytes)$|[\[\-]|^[A-Z]")
"""A location step pydantic adds for a union's branch (``int``, ``literal['inf']``, ``BasePrice``)."""


def _reason(err: ErrorDetails) -> tuple[bool, str]:
    """(is a type mismatch, the words after ``must be`` or the whole reason)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return True, _TYPE_WORDS[kind]
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("True", "true").replace("False", "false")
        return True, expected
    if kind == "missing":
        return False, "is required"
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "greater_than": ("must be greater than", "gt"),
        "less_than_equal": ("must be at most", "le"),
        "less_than": ("must be less than", "lt"),
        "multiple_of": ("must be a multiple of", "multiple_of"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return False, f"{words} {ctx.get(key)}"
    if kind == "string_too_short":
        n = ctx.get("min_length")
        return False, "must not be empty" if n == 1 else f"at least {n} characters"
    if kind == "string_too_long":
        return False, f"at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return False, f"must have at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return False, f"must have at most {ctx.get('max_length')} items"
    if kind == "string_pattern_mismatch":
        return False, f"must match the pattern {ctx.get('pattern')}"
    message = str(err["msg"])
    message = message.replace("Input should be", "must be", 1)
    return False, message[:1].lower() + message[1:]


def describe_validation_error(exc: ValidationError) -> str:
    """Autumn's message: ``"<path>: <reason>"``, or ``"[Validation Errors] a; b"`` for several.

    Paths are the user's snake_case field names; a union's branches at one path become one reason
    (``value: must be a number``, ``to: must be a number or 'inf'``).
    """
    types: dict[str, list[str]] = {}
    others: dict[str, list[str]] = {}
    order: list[str] = []
    for err in exc.errors(include_url=False):
        steps = [
            snake(p) if isinstance(p, str) else str(p)
            for p in err["loc"]
            if not (isinstance(p, str) and _BRANCH.search(p))
        ]
        path = ".".join(steps) or "body"
        if path not in order:
            order.append(path)
        is_type, words = _reason(err)
        bucket = (types if is_type else others).setdefault(path, [])
        if words not in bucket:
            bucket.append(words)
    parts: list[str] = []
    for path in order:
        if path in others:  # a branch that matched the type failed a constraint: that is the news
            parts.extend(f"{path}: {reason}" for reason in others[path])
        else:
            kinds = types[path]
            if "a number" in kinds:  # ``int | float``: the integer branch adds nothing
                kinds = [kind for kind in kinds if kind != "an integer"]
            parts.append(f"{path}: must be {' or '.join(kinds)}")
    return parts[0] if len(parts) == 1 else "[Validation Errors] " + "; ".join(parts)


# -- error codes of the platform API -------------------------------------------------------------

PLATFORM_PREFIX = "/v1/platform/"


def platform_error_code(status: int, code: str) -> str:
    """The code a platform path answers: ``spec/platform.yaml`` allows only five.

    401 and 403 are ``forbidden``, 404 ``not_found``, 405 and 429 ``not_allowed``, any other 4xx
    ``invalid_input`` and a 5xx ``internal_error``; the message keeps the detail.
    """
    if status in (401, 403):
        return "forbidden"
    if status == 404:
        return "not_found"
    if status in (405, 429):
        return "not_allowed"
    if 400 <= status < 500:
        return "invalid_input"
    return "internal_error" if status >= 500 else code
