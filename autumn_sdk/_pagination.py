"""Cursor pagination over Autumn's ``{list, next_cursor}`` pages, shared by sync and async iterators.

The walk stops when ``next_cursor`` is null or empty, and also when the server hands back a cursor
it already gave (a server bug would otherwise loop forever).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from ._operation import Operation

T = TypeVar("T", bound=BaseModel)


def _list_field(page_model: type[BaseModel]) -> str:
    """The attribute holding the wire field ``list`` (models may rename it, e.g. ``list_``)."""
    for name, info in page_model.model_fields.items():
        if info.alias == "list" or name == "list":
            return name
    raise TypeError(f"{page_model.__name__} has no 'list' field to paginate")


class CursorWalk(Generic[T]):
    """The state of one pagination: the body of the next page request and the cursors seen."""

    def __init__(self, op: Operation, body: Mapping[str, Any] | BaseModel | None, item_type: type[T]) -> None:
        if op.response_model is None:
            raise TypeError(f"{op.qualified_name} has no response body to paginate")
        self.page_model: type[BaseModel] = op.response_model
        if body is None:
            self.body: dict[str, Any] = {}
        elif isinstance(body, BaseModel):
            self.body = body.model_dump(exclude_unset=True, by_alias=False)
        else:
            self.body = dict(body)
        self.item_type = item_type
        self._seen: set[str] = set()

    def items(self, page: BaseModel) -> list[T]:
        """The page's items (wire field ``list``, whatever the model calls it), as ``item_type``."""
        raw = getattr(page, _list_field(type(page)), None) or []
        return [self._as_item(item) for item in raw]

    def _as_item(self, item: Any) -> T:
        if isinstance(item, self.item_type):
            return item
        if isinstance(item, BaseModel):
            item = item.model_dump(by_alias=False)
        return self.item_type.model_validate(item)

    def advance(self, page: BaseModel) -> bool:
        """Point the body at the next page; ``False`` when there is none."""
        cursor = getattr(page, "next_cursor", None)
        if not cursor or cursor in self._seen:
            return False
        self._seen.add(cursor)
        self.body["start_cursor"] = cursor
        return True
