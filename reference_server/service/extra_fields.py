"""Request keys beyond the spec's models, read off the validated params.

The generated request models keep undeclared keys among their extras (``model_extra``): ``check`` and
``track``'s ``expand``, ``idempotency_key`` and the older ``required_quantity``, a plan item's
``display``, the older balance aliases, and the few fields Autumn's server reads beyond its spec.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def extra_field(params: BaseModel, key: str) -> Any:
    """A key the model does not declare (``expand``, ``idempotency_key``...), as sent; None if absent."""
    extra = params.model_extra
    return extra.get(key) if extra else None


def expands_feature(params: BaseModel) -> bool:
    """Whether the body asks for ``expand: ["balance.feature"]`` (a key beyond the spec's models)."""
    return "balance.feature" in (extra_field(params, "expand") or [])
