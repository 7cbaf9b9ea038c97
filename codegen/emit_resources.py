"""``_generated/resources/``: the typed SDK surface, one module per API group (sync, async, raw).

``resources/<group>.py`` holds the group's classes; ``resources/root.py`` the operations on the
client itself and ``AutumnAPI`` / ``AsyncAutumnAPI``, which the hand-written client subclasses and
which import a group's module the first time the group is used. Every method only shapes arguments
into a body and hands it to ``SyncResource`` / ``AsyncResource``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .catalog import COMPONENT_REF, Catalog
from .collect import Collection, OperationInfo
from .identifiers import pascal, python_name

_INDENT = "    "


@dataclass(frozen=True)
class Param:
    """One keyword argument of a generated method."""

    wire: str
    python: str
    annotation: str
    required: bool

    def signature(self) -> str:
        if self.required:
            return f"{self.python}: {self.annotation}"
        return f"{self.python}: {self.annotation} | NotGiven = NOT_GIVEN"


@dataclass(frozen=True)
class Method:
    op: OperationInfo
    params: tuple[Param, ...]
    request_type: str | None
    """For ``body_style == "request"`` or ``"items"``: the annotation of ``request``."""
    response: str
    doc: str
    page_item: str | None
    """Item model of a cursor-paginated list (``models.Customer``), else None."""


def _literal(values: Iterable[Any]) -> str:
    return "Literal[" + ", ".join(json.dumps(value) for value in values) + "]"


def _union(parts: Iterable[str]) -> str:
    out: list[str] = []
    for part in parts:
        for piece in _split_top_level(part):
            if piece not in out:
                out.append(piece)
    if "None" in out:  # None last reads best: `str | None`
        out.remove("None")
        out.append("None")
    return " | ".join(out)


def _split_top_level(annotation: str) -> list[str]:
    pieces: list[str] = []
    depth = 0
    current = ""
    for index, char in enumerate(annotation):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if depth == 0 and annotation.startswith(" | ", index):
            pieces.append(current)
            current = ""
            continue
        if depth == 0 and current == "" and annotation.startswith("| ", index) and pieces:
            continue
        current += char
    pieces.append(current.strip())
    return [piece.strip() for piece in pieces if piece.strip()]


def input_annotation(schema: Any, aliases: frozenset[str] = frozenset()) -> str:
    """The type a caller may pass for ``schema``: models also as plain mappings, lists as sequences.

    ``aliases`` are component names that are ``Literal`` aliases rather than models.
    """
    if not isinstance(schema, dict) or not schema:
        return "Any"
    if "$ref" in schema:
        name = schema["$ref"][len(COMPONENT_REF) :]
        return f"models.{name}" if name in aliases else f"models.{name} | Mapping[str, Any]"
    if "anyOf" in schema:
        return _union(input_annotation(option, aliases) for option in schema["anyOf"])
    if "const" in schema:
        return _literal([schema["const"]])
    if "enum" in schema:
        return _literal(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union(input_annotation({**schema, "type": item}, aliases) for item in kind)
    if kind == "null":
        return "None"
    if kind == "string":
        return "str"
    if kind == "number":
        return "float"
    if kind == "integer":
        return "int"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return f"Sequence[{input_annotation(schema.get('items', {}), aliases)}]"
    if kind == "object":
        values = schema.get("additionalProperties")
        value_type = input_annotation(values, aliases) if isinstance(values, dict) else "Any"
        return f"Mapping[str, {value_type}]"
    return "Any"


def _doc(op: OperationInfo) -> str:
    text = op.description.strip() or op.summary
    first = text.split("\n\n", 1)[0]
    paragraph = " ".join(first.split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return "\n".join(textwrap.wrap(paragraph, width=96)) or op.operation_id


def _method(catalog: Catalog, op: OperationInfo) -> Method:
    if op.response_shape is None:
        raise ValueError(f"{op.operation_id}: no response model; the resource layer needs one")
    response = f"models.{catalog.name_of(op.response_shape)}"
    params: list[Param] = []
    request_type: str | None = None
    params_schema: dict[str, Any] | None = None
    if op.params_shape is not None:
        params_schema = catalog.resolve(catalog.shapes[catalog.find(op.params_shape)].schema)
    if op.body_style == "request":
        model = f"models.{catalog.name_of(op.params_shape)} | " if op.params_shape is not None else ""
        request_type = f"{model}Mapping[str, Any] | None"
    elif op.body_style == "items":
        assert op.params_shape is not None, "an items body always has an item model"
        item = f"models.{catalog.name_of(op.params_shape)}"
        request_type = f"Sequence[{item} | Mapping[str, Any]]"
    elif params_schema is not None:
        required = set(params_schema.get("required", []))
        props: dict[str, Any] = params_schema["properties"]
        ordered = [name for name in props if name in required] + [
            name for name in props if name not in required
        ]
        params = [
            Param(
                wire=name,
                python=python_name(name),
                annotation=input_annotation(props[name], frozenset(catalog.enums)),
                required=name in required,
            )
            for name in ordered
        ]
    page_item: str | None = None
    response_schema = catalog.resolve(catalog.shapes[catalog.find(op.response_shape)].schema)
    response_props = response_schema["properties"]
    items = response_props.get("list", {}).get("items", {})
    if (
        any(p.wire == "start_cursor" for p in params)
        and "next_cursor" in response_props
        and isinstance(items, dict)
        and "$ref" in items
    ):
        page_item = f"models.{items['$ref'][len(COMPONENT_REF) :]}"
    return Method(
        op=op,
        params=tuple(params),
        request_type=request_type,
        response=response,
        doc=_doc(op),
        page_item=page_item,
    )


def _signature(
    name: str, params: Iterable[Param], request_type: str | None, returns: str, is_async: bool
) -> str:
    lines = [f"{'async def' if is_async else 'def'} {name}(", f"{_INDENT}self,"]
    if request_type is not None:
        default = "" if request_type.startswith("Sequence[") else " = None"
        lines.append(f"{_INDENT}request: {request_type}{default},")
    params = list(params)
    if params:
        lines.append(f"{_INDENT}*,")
        lines.extend(f"{_INDENT}{param.signature()}," for param in params)
    lines.append(f"{_INDENT}**options: Unpack[RequestOptions],")
    lines.append(f") -> {returns}:")
    return "\n".join(lines)


def _body(method: Method, params: Iterable[Param]) -> str:
    if method.op.body_style == "items":
        return "items_body(request)"
    if method.request_type is not None:
        return "request_body(request)"
    entries = ", ".join(f"{json.dumps(p.wire)}: {p.python}" for p in params)
    return "{" + entries + "}"


def _block(text: str, level: int) -> str:
    return textwrap.indent(text, _INDENT * level)


def _def(
    name: str, method: Method, params: tuple[Param, ...], returns: str, is_async: bool, call: str
) -> str:
    head = _signature(name, params, method.request_type, returns, is_async)
    doc = f'"""{method.doc}"""' if "\n" not in method.doc else f'"""{method.doc}\n"""'
    return f"{head}\n{_block(doc, 1)}\n{_block(call, 1)}\n"


def _methods(method: Method, flavour: str) -> list[str]:
    """``flavour``: "sync" (with ``_async`` twins) or "async"."""
    op_ref = f"ops.{method.op.constant}"
    body = _body(method, method.params)
    name = python_name(method.op.name)  # billing.import is import_(), as in the official SDK
    out: list[str] = []
    if flavour == "sync":
        out.append(
            _def(
                name,
                method,
                method.params,
                method.response,
                False,
                f"return self._call({op_ref}, {body}, options, {method.response})",
            )
        )
        out.append(
            _def(
                f"{name}_async",
                method,
                method.params,
                method.response,
                True,
                f"return await self._call_async({op_ref}, {body}, options, {method.response})",
            )
        )
    else:
        out.append(
            _def(
                name,
                method,
                method.params,
                method.response,
                True,
                f"return await self._call({op_ref}, {body}, options, {method.response})",
            )
        )
    if method.page_item is not None:
        # ``list`` -> ``list_all``; ``list_purchases`` -> ``list_purchases_all`` (one pager per list)
        pager_name = f"{name}_all"
        page_params = tuple(p for p in method.params if p.wire != "start_cursor")
        page_body = _body(method, page_params)
        pager = Method(
            method.op,
            page_params,
            None,
            method.response,
            f"Every item of ``{name}``, following ``next_cursor`` page by page.",
            method.page_item,
        )
        if flavour == "sync":
            out.append(
                _def(
                    pager_name,
                    pager,
                    page_params,
                    f"Iterator[{method.page_item}]",
                    False,
                    f"return self._paginate({op_ref}, {page_body}, options, {method.page_item})",
                )
            )
            out.append(
                _def(
                    f"{pager_name}_async",
                    pager,
                    page_params,
                    f"AsyncIterator[{method.page_item}]",
                    False,
                    f"return self._paginate_async({op_ref}, {page_body}, options, {method.page_item})",
                )
            )
        else:
            out.append(
                _def(
                    pager_name,
                    pager,
                    page_params,
                    f"AsyncIterator[{method.page_item}]",
                    False,
                    f"return self._paginate({op_ref}, {page_body}, options, {method.page_item})",
                )
            )
    return out


def _class(name: str, base: str, doc: str, members: list[str]) -> str:
    body = "\n".join([f'"""{doc}"""\n', *members]) if members else f'"""{doc}"""\n'
    return f"class {name}({base}):\n{_block(body, 1)}\n"


def _group_class_name(group: str) -> str:
    return pascal(group)


def _raw_class(
    name: str, target: str, arg: str, methods: list[Method], groups: list[str], is_async: bool
) -> str:
    prefix = "Async" if is_async else ""
    lines = [f"def __init__(self, {arg}: {target}) -> None:"]
    for group in groups:  # a group's module loads when its view is built
        lines.append(f"{_INDENT}from .{group} import {prefix}{_group_class_name(group)}WithRawResponse")
    if groups:
        lines.append("")
    for method in methods:
        wrap = "async_to_raw_response_wrapper" if is_async else "to_raw_response_wrapper"
        attr = python_name(method.op.name)
        lines.append(f"{_INDENT}self.{attr} = {wrap}({arg}.{attr})")
        if not is_async:
            lines.append(f"{_INDENT}self.{attr}_async = async_to_raw_response_wrapper({arg}.{attr}_async)")
    for group in groups:
        cls = f"{prefix}{_group_class_name(group)}WithRawResponse"
        lines.append(f"{_INDENT}self.{group} = {cls}({arg}.{group})")
    doc = f"``{target}`` whose methods return a ``RawResponse`` (status, headers, parsed body)."
    return _class(name, "object", doc, ["\n".join(lines) + "\n"])


_IMPORTS = [
    "from __future__ import annotations",
    "",
    "import functools",
    "from collections.abc import AsyncIterator, Iterator, Mapping, Sequence",
    "from typing import TYPE_CHECKING, Any, Literal",
    "",
    "from typing_extensions import Unpack",
    "",
    "from autumn_sdk._resource import NOT_GIVEN, AsyncResource, NotGiven, RequestOptions, SyncResource",
    "from autumn_sdk._response import async_to_raw_response_wrapper, to_raw_response_wrapper",
    "",
    "from .. import models",
    "from .. import operations as ops",
    "from ._bodies import items_body, request_body",
    "",
]
"""Every module starts with all of these; the formatter drops what a module does not use."""

_BODIES = """\
\"\"\"How a ``request=``-style or array-body call's argument becomes the body it sends.\"\"\"

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel


def request_body(request: BaseModel | Mapping[str, Any] | None) -> Mapping[str, Any]:
    \"\"\"Body of a ``request=``-style call: a model is sent with only the fields that were set.\"\"\"
    if request is None:
        return {}
    if isinstance(request, BaseModel):
        return request.model_dump(exclude_unset=True)
    return request


def items_body(request: Sequence[BaseModel | Mapping[str, Any]]) -> Mapping[str, Any]:
    \"\"\"Body of an array-body call, carried as ``{"request": [...]}`` until it is encoded.\"\"\"
    if not isinstance(request, (list, tuple)):  # refused, with the right message, when encoded
        return {"request": request}
    items = [i.model_dump(exclude_unset=True) if isinstance(i, BaseModel) else i for i in request]
    return {"request": items}
"""


def _module(header: str, doc: str, body: list[str], exports: list[str]) -> str:
    parts = [header, f'"""{doc}"""', "", *_IMPORTS, "", *body]
    parts.append("__all__ = [\n" + "".join(f"    {name!r},\n" for name in exports) + "]\n")
    return "\n".join(parts)


def _group_exports(group: str) -> list[str]:
    cls = _group_class_name(group)
    return [cls, f"Async{cls}", f"{cls}WithRawResponse", f"Async{cls}WithRawResponse"]


def _group_module(header: str, group: str, methods: list[Method]) -> str:
    cls = _group_class_name(group)
    sync_members = [m for method in methods for m in _methods(method, "sync")]
    async_members = [m for method in methods for m in _methods(method, "async")]
    body = [
        _class(
            cls, "SyncResource", f"The ``{group}`` operations (sync, with ``*_async`` twins).", sync_members
        ),
        "",
        _class(f"Async{cls}", "AsyncResource", f"The ``{group}`` operations (async).", async_members),
        "",
        _raw_class(f"{cls}WithRawResponse", cls, "resource", methods, [], False),
        "",
        _raw_class(f"Async{cls}WithRawResponse", f"Async{cls}", "resource", methods, [], True),
        "",
    ]
    return _module(header, f"The ``{group}`` operations.", body, _group_exports(group))


def _root_module(header: str, root: list[Method], named_groups: list[str]) -> str:
    def root_class(name: str, base: str, flavour: str, prefix: str) -> str:
        members = [m for method in root for m in _methods(method, flavour)]
        for group in named_groups:
            cls = f"{prefix}{_group_class_name(group)}"
            members.append(
                f"@functools.cached_property\ndef {group}(self) -> {cls}:\n"
                f'{_INDENT}"""The ``{group}`` operations."""\n'
                f"{_INDENT}from .{group} import {cls}\n\n"
                f"{_INDENT}return {cls}(self._client)\n"
            )
        kind = "sync" if flavour == "sync" else "async"
        return _class(name, base, f"Every Autumn operation ({kind}); the client subclasses this.", members)

    type_imports = ["if TYPE_CHECKING:"]
    for group in named_groups:
        names = ", ".join(sorted(_group_exports(group)))
        type_imports.append(f"{_INDENT}from .{group} import {names}")
    body = [
        "\n".join(type_imports) + "\n",
        "",
        root_class("AutumnAPI", "SyncResource", "sync", ""),
        "",
        root_class("AsyncAutumnAPI", "AsyncResource", "async", "Async"),
        "",
        _raw_class("AutumnAPIWithRawResponse", "AutumnAPI", "api", root, named_groups, False),
        "",
        _raw_class("AsyncAutumnAPIWithRawResponse", "AsyncAutumnAPI", "api", root, named_groups, True),
        "",
    ]
    exports = ["AutumnAPI", "AsyncAutumnAPI", "AutumnAPIWithRawResponse", "AsyncAutumnAPIWithRawResponse"]
    doc = (
        "The operations on the client itself, and ``AutumnAPI`` / ``AsyncAutumnAPI`` holding every group\n"
        "(a group's module is imported the first time the group is used)."
    )
    return _module(header, doc, body, exports)


def _package_init(header: str, named_groups: list[str]) -> str:
    root_names = ["AsyncAutumnAPI", "AsyncAutumnAPIWithRawResponse", "AutumnAPI", "AutumnAPIWithRawResponse"]
    lazy = {name: group for group in named_groups for name in _group_exports(group)}
    type_imports = "".join(
        f"    from .{group} import {', '.join(sorted(_group_exports(group)))}\n" for group in named_groups
    )
    entries = "".join(f"    {name!r}: {group!r},\n" for name, group in lazy.items())
    exports = [*root_names, *lazy]
    return "\n".join(
        [
            header,
            '"""Typed resource classes, one module per operation group, sync and async, plus raw-response',
            "views. The root classes load at once; a group's classes when first used (PEP 562).",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "import importlib",
            "from typing import TYPE_CHECKING, Any",
            "",
            f"from .root import {', '.join(root_names)}",
            "",
            f"if TYPE_CHECKING:\n{type_imports}",
            f"_GROUP_OF: dict[str, str] = {{\n{entries}}}",
            '"""Class name -> the module of its group."""',
            "",
            "",
            "def __getattr__(name: str) -> Any:",
            "    group = _GROUP_OF.get(name)",
            "    if group is None:",
            '        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")',
            '    value = getattr(importlib.import_module(f".{group}", __name__), name)',
            "    globals()[name] = value",
            "    return value",
            "",
            "",
            "__all__ = [\n" + "".join(f"    {name!r},\n" for name in exports) + "]\n",
        ]
    )


def render_resources(collection: Collection, header: str) -> dict[str, str]:
    """``resources/`` file name -> text: the package ``__init__``, ``root.py``, a module per group."""
    catalog = collection.catalog
    groups: dict[str | None, list[Method]] = {}
    for op in collection.operations:
        groups.setdefault(op.group, []).append(_method(catalog, op))
    named_groups = [group for group in groups if group is not None]
    reserved = {"root", "_bodies", "__init__"}
    if reserved & set(named_groups):
        raise ValueError(f"a group's module would shadow {sorted(reserved & set(named_groups))}")
    files = {
        "__init__.py": _package_init(header, named_groups),
        "_bodies.py": f"{header}\n{_BODIES}",
        "root.py": _root_module(header, groups.get(None, []), named_groups),
    }
    for group in named_groups:
        files[f"{group}.py"] = _group_module(header, group, groups[group])
    return files
