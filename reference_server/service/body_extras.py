"""Keys of a ``check`` or ``track`` body beyond the spec's models, read off the validated params.

The generated request models keep undeclared keys among their extras (``model_extra``):
``expand``, ``idempotency_key`` and the older ``required_quantity`` arrive that way.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def extra_field(params: BaseModel, key: str) -> Any:
    """A body key the spec's model does not declare (``expand``, ``idempotency_key``...), as sent."""
    extra = params.model_extra
    return extra.get(key) if extra else None


def expands_feature(params: BaseModel) -> bool:
    """Whether the body asks for ``expand: ["balance.feature"]`` (a key beyond the spec's models)."""
    return "balance.feature" in (extra_field(params, "expand") or [])
