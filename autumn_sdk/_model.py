"""The base class of every generated model.

One model serves three audiences, so the configuration lives here and nowhere else:

* the Autumn API speaks snake_case: the Python field names *are* the wire names
  (``model.to_api()`` / ``model_dump()``);
* the React hooks speak camelCase: every field has a camelCase alias
  (``model.to_browser()`` / ``model_dump(by_alias=True)``), and validation accepts either;
* a newer server may send fields this version does not know: they are kept (``extra="allow"``)
  and surface through ``model_extra`` instead of being dropped.
"""

from __future__ import annotations

import keyword
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializationInfo, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel


class AutumnModel(BaseModel):
    """Base of all generated request, response and webhook models."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=False,
        protected_namespaces=(),
        use_enum_values=True,
        defer_build=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The JSON body the Autumn API expects: snake_case, only the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=False)

    def to_browser(self) -> dict[str, Any]:
        """The JSON the autumn-js React hooks expect: camelCase field names, map keys untouched."""
        return self.model_dump(mode="json", by_alias=True)


class KeywordFieldsModel(AutumnModel):
    """Base of the generated models with a field whose wire name is a Python keyword.

    Python spells such a field with a trailing underscore (``async_``, as the official SDK does);
    validation takes the wire name (its alias) or the Python name, and every dump writes the wire
    name (``"async"``), with or without ``by_alias``.
    """

    @model_serializer(mode="wrap")
    def _wire_names(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        return {
            (key[:-1] if key.endswith("_") and keyword.iskeyword(key[:-1]) else key): value
            for key, value in data.items()
        }
