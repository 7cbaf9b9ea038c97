"""The catalogue's shapes rendered by datamodel-code-generator, as one module's code.

:mod:`codegen.split_models` then spreads that code over ``_generated/models/``, a module per API group.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
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
        collapse_root_models=False,
        use_type_alias=True,
        custom_file_header=header,
        formatters=[],
    )
    if not isinstance(code, str):
        raise TypeError("datamodel-code-generator returned several modules; expected one")
    code = _eager_annotations(_keyword_fields_base(_widen_numbers(_restore_builtin_field_names(code))))
    renamed = [
        name
        for name in re.findall(r"^ +(\w+): .*\balias=", code, flags=re.MULTILINE)
        if not (name.endswith("_") and keyword.iskeyword(name[:-1]))
    ]
    if renamed:
        # AutumnModel.to_api() dumps field names, so a renamed field would go out under the wrong
        # wire name. No field of the current specs needs it; fail loudly if a new spec does.
        raise ValueError(f"fields renamed by the generator (wire name is not a usable identifier): {renamed}")
    return code


_FUTURE_IMPORT = "from __future__ import annotations\n"


def _eager_annotations(code: str) -> str:
    """Drop ``from __future__ import annotations``: the import-time cost of the models.

    With it, pydantic ``eval``s (compiles) every field's annotation string when the class is
    created, a third of the module's import time; without it the annotations are objects already.
    The generator writes each class after the classes it refers to, so no name is used before it
    is defined (a spec that needs a forward reference fails the import, and the codegen tests).
    """
    if _FUTURE_IMPORT not in code:
        return code
    head, _, tail = code.partition(_FUTURE_IMPORT)
    return head + tail.lstrip("\n")


def _admits_null(schema: Any) -> bool:
    """Whether a property schema accepts JSON ``null`` (3.1 ``type``/``anyOf``, 3.0 ``nullable``)."""
    if not isinstance(schema, dict):
        return True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if schema.get("nullable") is True or ("const" in schema and schema["const"] is None):
        return True
    if isinstance(schema.get("enum"), list) and None in schema["enum"]:
        return True
    return any(_admits_null(option) for key in ("anyOf", "oneOf") for option in schema.get(key) or [])


def non_nullable_fields(catalog: Catalog) -> dict[str, list[str]]:
    """Per model name, the optional fields the spec does not let be ``null`` (``NON_NULLABLE_FIELDS``)."""
    table: dict[str, list[str]] = {}
    for name, schema in catalog.components().items():
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict):
            continue
        required = set(schema.get("required") or [])
        fields = sorted(f for f, prop in properties.items() if f not in required and not _admits_null(prop))
        if fields:
            table[name] = fields
    return table


_CLASS_LINE = re.compile(r"^class (?P<name>\w+)\(AutumnModel\):$")


def _keyword_fields_base(code: str) -> str:
    """A class with a field named for a Python keyword (``async``, spelt ``async_`` in Python)
    derives from :class:`~autumn_sdk._model.KeywordFieldsModel`, which puts the wire name back
    when dumping; every other class keeps the plain, faster base."""
    lines = code.splitlines()
    class_at: int | None = None
    for index, line in enumerate(lines):
        if _CLASS_LINE.match(line):
            class_at = index
            continue
        field = re.match(r"^    (\w+)_: ", line)
        if class_at is not None and field and keyword.iskeyword(field[1]):
            lines[class_at] = lines[class_at].replace("(AutumnModel):", "(KeywordFieldsModel):")
    text = "\n".join(lines) + "\n"
    if "(KeywordFieldsModel):" in text:
        text = text.replace(
            "from autumn_sdk._model import AutumnModel\n",
            "from autumn_sdk._model import AutumnModel, KeywordFieldsModel\n",
            1,
        )
    return text


_RENAMED_FIELD = re.compile(r"^(?P<indent>\s+)(?P<name>\w+)_: (?P<annotation>.+?) = Field\((?P<args>.*)\)$")


def _restore_builtin_field_names(code: str) -> str:
    """Undo the generator's ``list_ = Field(alias="list")`` renaming of builtin-named fields.

    The wire name *is* the Python name here (``to_api()`` dumps field names), so ``list`` stays
    ``list``; the annotation then spells the builtin as ``builtins.list`` because inside the
    class body the bare name refers to the field.
    """
    out = []
    for line in code.splitlines():
        match = _RENAMED_FIELD.match(line)
        name = match["name"] if match else ""
        aliases = (f'alias="{name}"', f"alias='{name}'")
        if (
            match
            and any(alias in match["args"] for alias in aliases)
            and hasattr(builtins, name)
            and not keyword.iskeyword(name)
        ):
            annotation = re.sub(rf"\b{name}\[", f"builtins.{name}[", match["annotation"])
            args = ", ".join(arg for arg in match["args"].split(", ") if arg not in aliases)
            line = f"{match['indent']}{name}: {annotation} = Field({args})"
        out.append(line)
    out = _builtins_in_shadowing_classes(out)
    text = "\n".join(out) + "\n"
    if "builtins." in text and "import builtins" not in text:
        text = text.replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\n\nimport builtins\n",
            1,
        )
    return text


def _builtins_in_shadowing_classes(lines: list[str]) -> list[str]:
    """In a class with a field named ``list``, every other field's ``list[...]`` is the builtin too."""
    starts = [i for i, line in enumerate(lines) if line.startswith("class ")] + [len(lines)]
    for begin, end in itertools.pairwise(starts):
        shadowed = {
            m["name"]
            for line in lines[begin:end]
            if (m := re.match(r"^    (?P<name>\w+): ", line)) and hasattr(builtins, m["name"])
        }
        for index in range(begin, end):
            for name in shadowed:
                head, sep, rest = lines[index].partition(" = ")
                if re.match(r"^    \w+: ", head):
                    head = re.sub(rf"(?<!builtins\.)\b{name}\[", f"builtins.{name}[", head)
                    lines[index] = head + sep + rest
    return lines


_FIELD_LINE = re.compile(r"^(?P<indent> {4})(?P<name>\w+): (?P<annotation>.+?)(?P<rest> = Field\(.*\))?$")


def _widen_numbers(code: str) -> str:
    """JSON ``number`` becomes ``int | float``, not ``float``.

    A ``float`` field turns ``1`` into ``1.0``, so bodies and stored values would change on a round
    trip (``{"value": 1}`` sent as ``{"value": 1.0}``, timestamps read back as floats). Pydantic's
    smart union keeps integers integral and still applies ``ge=``/``le=`` constraints to both.
    """
    out = []
    for line in code.splitlines():
        match = _FIELD_LINE.match(line)
        if match and re.search(r"\bfloat\b", match["annotation"]):
            annotation = re.sub(r"\b(?<!int \| )float\b", "int | float", match["annotation"])
            line = f"{match['indent']}{match['name']}: {annotation}{match['rest'] or ''}"
        out.append(line)
    return "\n".join(out) + "\n"
