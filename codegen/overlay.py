"""What Autumn's server accepts beyond its published spec, applied to the spec before generating.

Each entry is a fact read from Autumn's server source, with where it was read. The overlay only
widens what the models accept; it never changes a shape Autumn's spec describes.
"""

from __future__ import annotations

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


def apply_overlay(data: dict[str, Any]) -> None:
    """Widen ``data`` (one parsed spec) in place; entries whose path the document lacks are skipped."""
    for path, value, _why in ENUM_ADDITIONS:
        node: Any = data
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("enum"), list) and value not in node["enum"]:
            node["enum"] = [*node["enum"], value]
