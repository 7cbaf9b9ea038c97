"""Schema-driven casing between the browser (camelCase) and the Autumn API (snake_case).

A blind recursive rename would turn ``balances.api_calls`` into ``balances.apiCalls`` and break the
hooks' local ``check()``. Instead, bodies are parsed with the generated models, whose *fields* are
renamed through their aliases while the keys of map-typed fields (balances, flags, metadata,
properties, aggregate values, ...) are left alone. Like the official TypeScript SDK, keys the schema
does not know are dropped in both directions, so a newer server cannot leak snake_case keys to the
browser and a browser cannot slip fields past the schema.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic.alias_generators import to_camel
from pydantic_core import to_jsonable_python

__all__ = ["browser_to_api", "model_to_api", "model_to_browser", "server_to_api"]


def _field_key(model: type[BaseModel], name: str, *, by_alias: bool) -> str:
    """The JSON key of field ``name``: its wire name for the API, its camelCase alias for the browser.

    A field renamed in Python (``list_`` for the wire's ``list``) carries the wire name as an explicit
    alias (priority 2); every other field's Python name is its wire name.
    """
    info = model.model_fields[name]
    explicit = info.alias if info.alias is not None and (info.alias_priority or 0) >= 2 else None
    if not by_alias:
        return explicit or name
    if explicit is not None:
        return to_camel(explicit)
    return info.serialization_alias or info.alias or to_camel(name)


@functools.lru_cache(maxsize=1024)
def _field_keys(model: type[BaseModel], by_alias: bool) -> tuple[tuple[str, str], ...]:
    """(field name, JSON key) of every field of ``model``, in declaration order (worked out once per
    model: each response walks them)."""
    return tuple((name, _field_key(model, name, by_alias=by_alias)) for name in model.model_fields)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Values that are their own JSON (most of an answer): returned as they are, before any other test."""


def _convert(value: Any, *, by_alias: bool) -> Any:
    if type(value) in _JSON_SCALARS:
        return value
    if isinstance(value, RootModel):
        return _convert(value.root, by_alias=by_alias)
    if isinstance(value, BaseModel):
        return _known_fields(value, by_alias=by_alias)
    if isinstance(value, Mapping):
        # A map field: its keys are data (feature ids, metadata keys), never renamed.
        return {key: _convert(item, by_alias=by_alias) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(item, by_alias=by_alias) for item in value]
    return to_jsonable_python(value)


def _known_fields(model: BaseModel, *, by_alias: bool) -> dict[str, Any]:
    """The fields the schema declares and the source actually sent, nothing else."""
    cls = type(model)
    # pydantic counts the keys of unknown (extra) inputs as "set" too, even when such a key spells a
    # field's Python name (a snake_case key validated by alias only): those never count as fields.
    extras = model.__pydantic_extra__ or {}
    provided = model.model_fields_set - extras.keys()
    return {
        key: _convert(getattr(model, name), by_alias=by_alias)
        for name, key in _field_keys(cls, by_alias)
        if name in provided
    }


def browser_to_api(model: type[BaseModel], body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a camelCase browser body and return the snake_case API body of its known fields.

    Only aliases are accepted, as in the TypeScript SDK: a snake_case key from the browser is an
    unknown key and is dropped (so ``customer_id`` cannot be smuggled past the protected fields).
    Raises ``pydantic.ValidationError`` when the body does not fit the schema.
    """
    aliases = {info.alias or name for name, info in model.model_fields.items()}
    python_names = set(model.model_fields) - aliases
    camel_only = {key: value for key, value in body.items() if key not in python_names}
    parsed = model.model_validate(camel_only, by_alias=True, by_name=False)
    return _known_fields(parsed, by_alias=False)


def server_to_api(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Like :func:`browser_to_api` for trusted server-side data, which may use either casing."""
    parsed = model.model_validate(dict(data), by_alias=True, by_name=True)
    return _known_fields(parsed, by_alias=False)


def model_to_api(model: BaseModel) -> dict[str, Any]:
    """The snake_case JSON of a model's known, set fields."""
    return _known_fields(model, by_alias=False)


def model_to_browser(model: BaseModel) -> Any:
    """The camelCase JSON the hooks read: known fields that upstream sent, map keys untouched."""
    return _convert(model, by_alias=True)
