"""What Autumn's server accepts beyond its published spec, applied to the spec before generating.

Two sources, both vendored: each entry of :data:`ENUM_ADDITIONS` is a fact read from Autumn's server
source, with where it was read; and the ``x-official-arguments`` of
``spec/autumn-sdk-1.2.0-operations.yml`` are the request fields that the official SDK's methods of
operations of Autumn's spec take beyond that spec (read from the official SDK's models by
``codegen/official_operations.py``), added to those operations' request bodies. The overlay only
widens what the models accept; it never changes a shape Autumn's spec describes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def _body(path: str, *inner: str) -> tuple[str, ...]:
    return ("paths", path, "post", "requestBody", "content", "application/json", "schema", *inner)


_REJECT = (
    "reject",
    # useautumn/autumn shared/api/balances/track/overageBehavior.ts: "reject" stays accepted but is
    # stripped from the public spec (refuse a deduction the balance cannot cover).
    "refuse a deduction the balance cannot cover",
)
ENUM_ADDITIONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (_body("/v1/balances.track", "properties", "overage_behavior"), *_REJECT),
    (_body("/v1/balances.track_tokens", "properties", "overage_behavior"), *_REJECT),
    (_body("/v1/balances.batch_track", "items", "properties", "overage_behavior"), *_REJECT),
)


OFFICIAL_ARGUMENTS_KEY = "x-official-arguments"
"""Where ``spec/autumn-sdk-1.2.0-operations.yml`` holds path -> field -> schema (see the docstring)."""


def apply_overlay(data: dict[str, Any], arguments: Mapping[str, Mapping[str, Any]]) -> None:
    """Widen ``data`` (one parsed spec) in place with :data:`ENUM_ADDITIONS` and ``arguments`` (path ->
    request field -> schema); entries whose path the document lacks are skipped, and a field the
    request already has is left as the document describes it."""
    for operation_path, fields in arguments.items():
        schema = _at(data, _body(operation_path))
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            for name, field in fields.items():
                schema["properties"].setdefault(name, copy.deepcopy(field))
    for path, value, _why in ENUM_ADDITIONS:
        node = _at(data, path)
        if isinstance(node, dict) and isinstance(node.get("enum"), list) and value not in node["enum"]:
            node["enum"] = [*node["enum"], value]


def _at(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The node at ``path`` in ``data``, or None where a step is missing."""
    node: Any = data
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node
