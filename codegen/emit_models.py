"""``_generated/models.py``: the catalogue's shapes rendered by datamodel-code-generator."""

from __future__ import annotations

from typing import Any

from datamodel_code_generator import generate
from datamodel_code_generator.enums import DataModelType, InputFileType
from datamodel_code_generator.format import PythonVersion
from datamodel_code_generator.parser import LiteralType

from .catalog import Catalog

BASE_CLASS = "autumn_sdk._model.AutumnModel"


def render_models(catalog: Catalog, header: str) -> str:
    """Every named shape as an ``AutumnModel`` subclass, via datamodel-code-generator."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Autumn", "version": "generated"},
        "paths": {},
        "components": {"schemas": catalog.components()},
    }
    code = generate(
        document,
        input_file_type=InputFileType.OpenAPI,
        output_model_type=DataModelType.PydanticV2BaseModel,
        target_python_version=PythonVersion.PY_310,
        base_class=BASE_CLASS,
        use_union_operator=True,
        use_standard_collections=True,
        enum_field_as_literal=LiteralType.All,
        field_constraints=True,
        use_double_quotes=True,
        disable_timestamp=True,
        use_schema_description=True,
        use_field_description=False,
        collapse_root_models=True,
        custom_file_header=header,
        formatters=[],
    )
    if not isinstance(code, str):
        raise TypeError("datamodel-code-generator returned several modules; expected one")
    names = sorted(catalog.components())
    exports = "".join(f"    {name!r},\n" for name in names)
    return f"{code.rstrip()}\n\n\n__all__ = [\n{exports}]\n"
