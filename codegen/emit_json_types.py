"""The operations' responses as ``TypedDict`` s: ``_generated/json_types.py``, for the server.

The reference server builds each answer as a plain dict (a pydantic model per answer would cost the
hot paths for nothing: the body is JSON at once).  These types let ``mypy --strict`` check those
dicts against the spec where they are built, as the generated pydantic models check them only at
test time.  They are rendered from the same catalogue as the models, by the same generator (its
``TypedDict`` output), so the two never disagree about a field:

* **Names.**  Each type is its pydantic model's name plus ``Json`` (``Feature`` -> ``FeatureJson``,
  ``ListFeaturesResponse`` -> ``ListFeaturesResponseJson``), and a named ``Literal`` alias likewise
  (``CustomerExpandJson``).  A separate module with the same names was the alternative; the suffix
  wins because the server imports both in one module (a service reads ``CreateFeatureParams`` and
  answers ``FeatureJson``, next to the engine's own ``Feature`` dataclass), and one name per concept
  and kind keeps every import unaliased.
* **Which.**  The success response of every operation and every schema those reach; request bodies
  and webhook payloads have their models and need no second form.
* **Keys.**  A key the pydantic model requires is a required key; an optional field is
  ``NotRequired`` (the server may omit it).  ``None`` is allowed where the spec's schema admits
  ``null`` (the rule of ``NON_NULLABLE_FIELDS``), which is stricter than the models (whose optional
  fields all default to ``None``) and what the test suite's spec check enforces on every answer.
* **Numbers.**  JSON ``number`` is ``int | float``, as in the models.
* **Cost.**  One module, imported by the server only: nothing on the SDK's import path imports it
  (``tests/sdk/test_cold_import.py``).  Its annotations stay strings (``from __future__ import
  annotations``), so importing it creates a few hundred small classes and evaluates nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datamodel_code_generator import generate
from datamodel_code_generator.enums import DataModelType, InputFileType
from datamodel_code_generator.format import PythonVersion
from datamodel_code_generator.parser import LiteralType

from .catalog import COMPONENT_REF
from .collect import Collection
from .emit_models import _builtins_in_shadowing_classes, _eager_annotations, _widen_numbers

MODULE = "json_types.py"
SUFFIX = "Json"
"""What a pydantic model's name gains as a ``TypedDict``: ``Feature`` -> ``FeatureJson``."""


def json_type_name(model_name: str) -> str:
    """The ``TypedDict`` (or ``Literal`` alias) that mirrors the generated model ``model_name``."""
    return model_name + SUFFIX


def response_schema_names(collection: Collection) -> list[str]:
    """The catalogue names of every operation's success response and all they reference, sorted."""
    components = collection.catalog.components()
    roots = {
        collection.catalog.name_of(op.response_shape)
        for op in collection.operations
        if op.response_shape is not None
    }
    seen: set[str] = set()
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(sorted(_refs(components[name]) - seen))
    return sorted(seen)


def _refs(schema: Any) -> set[str]:
    """The component names ``schema`` refers to, at any depth."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENT_REF):
                found.add(value[len(COMPONENT_REF) :])
            else:
                found |= _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= _refs(item)
    return found


def _renamed(schema: Any) -> Any:
    """``schema`` with every component reference pointing at its ``...Json`` name."""
    if isinstance(schema, dict):
        return {
            key: (
                COMPONENT_REF + json_type_name(value[len(COMPONENT_REF) :])
                if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENT_REF)
                else _renamed(value)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_renamed(item) for item in schema]
    return schema


def _null_as_31(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` (platform.yaml) in 3.1's form, ``anyOf [..., null]``: the
    generator reads the document as 3.1, and the pydantic models, whose optional fields all admit
    ``None``, never needed the difference."""
    if isinstance(schema, list):
        return [_null_as_31(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):  # property names are not keywords
            out[key] = {name: _null_as_31(prop) for name, prop in value.items()}
        elif key != "nullable":
            out[key] = _null_as_31(value)
    if schema.get("nullable") is True:
        description = out.pop("description", None)
        out = {"anyOf": [out, {"type": "null"}]}
        if description is not None:
            out["description"] = description
    return out


def _check_names(all_names: Iterable[str], chosen: Iterable[str]) -> None:
    taken = set(all_names)
    clashes = sorted(json_type_name(name) for name in chosen if json_type_name(name) in taken)
    if clashes:
        raise ValueError(f"a model is already named like a JSON type: {clashes}")


def render_json_types(collection: Collection, header: str) -> str:
    """``json_types.py``: a ``TypedDict`` (or ``Literal`` alias) per response schema."""
    components = collection.catalog.components()
    names = response_schema_names(collection)
    _check_names(components, names)
    schemas = {json_type_name(name): _null_as_31(_renamed(components[name])) for name in names}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Autumn", "version": "generated"},
        "paths": {},
        "components": {"schemas": schemas},
    }
    code = generate(
        document,
        input_file_type=InputFileType.OpenAPI,
        output_model_type=DataModelType.TypingTypedDict,
        target_python_version=PythonVersion.PY_310,
        use_union_operator=True,
        use_standard_collections=True,
        enum_field_as_literal=LiteralType.All,
        use_double_quotes=True,
        disable_timestamp=True,
        use_schema_description=True,
        use_field_description=False,
        collapse_root_models=False,
        use_type_alias=True,
        custom_file_header=header + '\n"""' + _MODULE_DOC + '"""',
        formatters=[],
    )
    if not isinstance(code, str):
        raise TypeError("datamodel-code-generator returned several modules; expected one")
    lines = _builtins_in_shadowing_classes(_widen_numbers(code).splitlines())
    text = "\n".join(lines) + "\n"
    if "builtins." in text and "import builtins" not in text:
        text = text.replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\n\nimport builtins\n",
            1,
        )
    text = _runtime_typed_dict(_eager_annotations(text))
    exports = "".join(f"    {json_type_name(name)!r},\n" for name in names)
    return text + f"\n\n__all__ = [\n{exports}]\n"


def _runtime_typed_dict(code: str) -> str:
    """``TypedDict`` from ``typing_extensions``, whose classes honour ``NotRequired`` at run time on
    Python 3.10 too (``__required_keys__`` and ``__optional_keys__`` are right for the tests)."""
    lines = code.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("from typing import ") and "TypedDict" in line:
            names = [n.strip() for n in line[len("from typing import ") :].split(",")]
            kept = [n for n in names if n != "TypedDict"]
            lines[index] = f"from typing import {', '.join(kept)}" if kept else ""
        elif line == "from typing_extensions import NotRequired":
            lines[index] = "from typing_extensions import NotRequired, TypedDict"
    if "from typing_extensions import NotRequired, TypedDict" not in lines:
        raise ValueError("unexpected imports in the generated TypedDicts")
    return "\n".join(lines) + "\n"


_MODULE_DOC = """The operations' responses as ``TypedDict`` s: ``Feature`` is ``FeatureJson`` here.

For the reference server, which builds its answers as dicts: an answer annotated with these types
is checked against the spec by ``mypy --strict``.  Optional fields are ``NotRequired``; ``None`` is
allowed only where the spec allows ``null``.  Never imported by the SDK at run time (see
``codegen/emit_json_types.py`` for why the names carry ``Json`` and what the module holds).
"""
