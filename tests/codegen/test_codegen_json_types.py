"""The generated response ``TypedDict`` s (``_generated/json_types.py``) mirror the pydantic models:
one per response model and each model it reaches, the same keys, the same required keys, and
``None`` only where the spec admits ``null``."""

from __future__ import annotations

import inspect
import pathlib
import subprocess
import sys
import types
import typing
from typing import Any

import typing_extensions
from pydantic import BaseModel

from autumn_sdk._generated import json_types
from autumn_sdk._generated import models as models_module
from autumn_sdk._generated.models import NON_NULLABLE_FIELDS
from autumn_sdk._generated.operations import OPERATIONS
from codegen.emit_json_types import SUFFIX, json_type_name
from codegen.spec import REPO_ROOT

TYPED_DICTS: dict[str, Any] = {
    name: obj
    for name in json_types.__all__
    if inspect.isclass(obj := getattr(json_types, name)) and typing_extensions.is_typeddict(obj)
}


def _model_of(typed_dict_name: str) -> type[BaseModel]:
    model = getattr(models_module, typed_dict_name[: -len(SUFFIX)])
    assert inspect.isclass(model) and issubclass(model, BaseModel), typed_dict_name
    return model


def _admits_none(hint: Any) -> bool:
    if hint is Any or hint is type(None):
        return True
    origin = typing.get_origin(hint)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(hint)


def test_every_operation_response_has_its_typed_dict() -> None:
    responses = {op.response_model.__name__ for op in OPERATIONS if op.response_model is not None}
    assert responses, "the operation table names its response models"
    missing = sorted(name for name in responses if json_type_name(name) not in TYPED_DICTS)
    assert missing == []
    assert json_types.FeatureJson is TYPED_DICTS["FeatureJson"]


def test_each_typed_dict_has_its_models_keys_and_required_keys() -> None:
    assert len(TYPED_DICTS) > 100
    for name, typed_dict in TYPED_DICTS.items():
        model = _model_of(name)
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        assert set(typing_extensions.get_type_hints(typed_dict)) == set(model.model_fields), name
        assert typed_dict.__required_keys__ == required, name
        assert typed_dict.__optional_keys__ == set(model.model_fields) - required, name


def test_none_only_where_the_spec_admits_null() -> None:
    checked = 0
    for name, typed_dict in TYPED_DICTS.items():
        model = _model_of(name)
        hints = typing_extensions.get_type_hints(typed_dict)
        never_null = NON_NULLABLE_FIELDS.get(model.__name__, frozenset())
        for key, hint in hints.items():
            info = model.model_fields[key]
            if info.is_required():
                # required: the model's own annotation says whether null is allowed
                assert _admits_none(hint) == _admits_none(info.annotation), f"{name}.{key}"
            elif hint is not Any:
                # optional: the model allows None for every field; the spec may not
                assert _admits_none(hint) == (key not in never_null), f"{name}.{key}"
            checked += 1
    assert checked > 500


def test_optional_keys_are_not_required_and_null_stays_out_where_the_spec_refuses_it() -> None:
    feature = json_types.FeatureJson
    assert {"id", "name", "type", "consumable", "archived"} == feature.__required_keys__
    hints = typing_extensions.get_type_hints(feature)
    assert not _admits_none(hints["display"]) and _admits_none(hints["model_markups"])
    entities = typing_extensions.get_type_hints(json_types.ListEntitiesResponseJson)
    assert _admits_none(entities["next_cursor"])


def test_the_sdk_never_imports_the_json_types() -> None:
    import autumn_sdk

    root = pathlib.Path(inspect.getfile(autumn_sdk)).parent
    users = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "json_types.py" and "json_types" in path.read_text(encoding="utf-8")
    ]
    assert users == []


_ANSWERS = """
from autumn_sdk._generated.json_types import FeatureJson, ListFeaturesResponseJson


def good() -> ListFeaturesResponseJson:
    feature: FeatureJson = {"id": "f", "name": "F", "type": "metered", "consumable": True, "archived": False}
    feature["display"] = {"singular": "call", "plural": "calls"}
    return {"list": [feature]}


def misspelt() -> FeatureJson:
    return {"id": "f", "name": "F", "type": "metered", "consumable": True, "archived": False, "nmae": "F"}


def missing() -> FeatureJson:
    return {"id": "f", "name": "F", "type": "metered", "consumable": True}


def null_where_the_spec_refuses_it() -> FeatureJson:
    return {"id": "f", "name": "F", "type": "metered", "consumable": True, "archived": False, "display": None}


def unknown_type() -> FeatureJson:
    return {"id": "f", "name": "F", "type": "seats", "consumable": True, "archived": False}
"""


def test_mypy_checks_an_answer_against_its_typed_dict(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "answers.py"
    source.write_text(_ANSWERS, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            "--config-file",
            str(REPO_ROOT / "pyproject.toml"),
            str(source),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [12, 16, 20, 24], result.stdout
    assert '"nmae"' in result.stdout and '"archived"' in result.stdout
