"""``_generated/models/``: the rendered models, one module per API group, loaded when first used.

Building every model at import was most of the SDK's cold start (issue 13): a ``check`` needs 31 of
some 360 models. So each model lives in the module of the first API group that uses it (the
client's own operations, ``root``, first; then the groups in the spec's order; the webhook
payloads last), and ``models/__init__.py`` imports a module the first time one of its names is
asked for (PEP 562), as ``resources/`` does for the resource classes.

Why "first group that uses it" gives modules without import loops: a model's dependencies are used
by every group that uses the model, so their home comes no later than the model's own. A module
therefore imports only from modules before it, and within a module the generator's order (each
class after the classes it refers to) is kept.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .collect import Collection

ROOT_MODULE = "root"
"""The models of the operations on the client itself (``check``, ``track``)."""
WEBHOOKS_MODULE = "webhooks"
"""The webhook payloads (and the ``webhooks`` group's models), and any model nothing reaches."""
PACKAGE = "models"
_FACADE_NAMES = frozenset(
    {"annotations", "importlib", "TYPE_CHECKING", "Any", "NON_NULLABLE_FIELDS", "non_nullable_fields"}
)


@dataclass(frozen=True)
class _Definition:
    name: str
    source: str
    uses: frozenset[str]


def _definitions(code: str) -> tuple[list[str], list[_Definition]]:
    """The module's import lines and its top-level definitions, in order."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports: list[str] = []
    found: list[tuple[str, ast.stmt, list[ast.stmt]]] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        elif isinstance(node, ast.ClassDef):
            found.append((node.name, node, [node]))
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            found.append((node.targets[0].id, node, [node]))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and found:
            found[-1][2].append(node)  # an attribute docstring belongs to the definition before it
        else:
            raise ValueError(f"unexpected top-level statement in the models (line {node.lineno})")
    names = {name for name, _, _ in found}
    definitions = []
    for name, node, nodes in found:
        uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in names and n.id != name}
        source = "\n".join(lines[nodes[0].lineno - 1 : nodes[-1].end_lineno])
        definitions.append(_Definition(name, source, frozenset(uses)))
    return imports, definitions


def _closure(roots: Iterable[str], uses: dict[str, frozenset[str]]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(uses[name])
    return seen


def _group_roots(collection: Collection) -> dict[str, set[str]]:
    """Per model module, in load order: the models its operations (or webhooks) name directly."""
    name_of = collection.catalog.name_of
    roots: dict[str, set[str]] = {ROOT_MODULE: set()}
    for op in collection.operations:
        module = roots.setdefault(op.group or ROOT_MODULE, set())
        module.update(name_of(shape) for shape in (op.params_shape, op.response_shape) if shape is not None)
    # The ``webhooks`` group (webhook endpoints CRUD) shares its module with the webhook payloads.
    roots.setdefault(WEBHOOKS_MODULE, set()).update(
        name_of(hook.payload_shape) for hook in collection.webhooks
    )
    return roots


def module_of_each(collection: Collection, definitions: Sequence[_Definition]) -> dict[str, str]:
    """Model name -> the module it lives in (the first group whose operations reach it)."""
    uses = {d.name: d.uses for d in definitions}
    home: dict[str, str] = {}
    for module, roots in _group_roots(collection).items():
        for name in sorted(_closure(roots, uses) - home.keys()):
            home[name] = module
    for d in definitions:
        home.setdefault(d.name, WEBHOOKS_MODULE)
    return home


def split_models(
    collection: Collection, code: str, header: str, non_nullable: dict[str, list[str]]
) -> dict[str, str]:
    """``models/<module>.py`` per group and the lazy ``models/__init__.py``: path -> text."""
    imports, definitions = _definitions(code)
    home = module_of_each(collection, definitions)
    order = [m for m in _group_roots(collection) if m in home.values()]
    files: dict[str, str] = {}
    for module in order:
        own = [d for d in definitions if home[d.name] == module]
        borrowed: dict[str, set[str]] = {}
        for d in own:
            for used in d.uses:
                if home[used] != module:
                    borrowed.setdefault(home[used], set()).add(used)
        if any(order.index(source) > order.index(module) for source in borrowed):
            raise ValueError(f"models/{module}.py would import from a later module")  # see the docstring
        from_others = [
            f"from .{source} import {', '.join(sorted(names))}" for source, names in sorted(borrowed.items())
        ]
        body = "\n\n\n".join(d.source for d in own)
        exports = "".join(f"    {d.name!r},\n" for d in sorted(own, key=lambda d: d.name))
        files[f"{PACKAGE}/{module}.py"] = (
            f"{header}\n"
            f'"""The models first used by {_who(module)}.\n\n'
            'Loaded the first time one of them is asked of ``models`` (see ``models/__init__.py``).\n"""\n\n'
            + "\n".join(imports)
            + "\n"
            + "\n".join(from_others)
            + f"\n\n\n{body}\n\n\n__all__ = [\n{exports}]\n"
        )
    clashes = set(home) & _FACADE_NAMES
    if clashes:
        raise ValueError(f"models named like the facade's own names: {sorted(clashes)}")
    files[f"{PACKAGE}/__init__.py"] = _facade(header, home, non_nullable)
    return files


def _who(module: str) -> str:
    if module == ROOT_MODULE:
        return "the operations on the client itself: ``check``, ``track`` and the like"
    if module == WEBHOOKS_MODULE:
        return "the ``webhooks`` operations, the webhook payloads (and models no operation reaches)"
    return f"the ``{module}`` operations"


def _facade(header: str, home: dict[str, str], non_nullable: dict[str, list[str]]) -> str:
    by_module: dict[str, list[str]] = {}
    for name in sorted(home):
        by_module.setdefault(home[name], []).append(name)
    typing_imports = "".join(
        f"    from .{module} import {', '.join(f'{n} as {n}' for n in names)}\n"
        for module, names in sorted(by_module.items())
    )
    module_of = "".join(f"    {name!r}: {home[name]!r},\n" for name in sorted(home))
    table = "".join(
        f"    {name!r}: frozenset({{{', '.join(repr(f) for f in fields)}}}),\n"
        for name, fields in sorted(non_nullable.items())
    )
    exports = "".join(f"    {name!r},\n" for name in sorted(home))
    return f'''{header}
"""Every request, response and webhook model, one module per API group.

A group's module is imported the first time one of its models is used (PEP 562), so a ``check``
builds only the models it touches; each model lives in the module of the first group that uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
{typing_imports}
_MODULE_OF: dict[str, str] = {{
{module_of}}}

NON_NULLABLE_FIELDS: dict[str, frozenset[str]] = {{
{table}}}
"""Per model name, the optional fields whose spec schema does not admit ``null``.

The models type every optional field ``X | None = None`` (so "not sent" is ``None`` and the SDK's
signatures stay simple); this table keeps what the spec says about an explicit ``null``, for a
server that must refuse it before writing a NOT NULL column.
"""


def non_nullable_fields(model: type) -> frozenset[str]:
    """``NON_NULLABLE_FIELDS`` of a generated model; nothing for any other class."""
    if not model.__module__.startswith(f"{{__name__}}."):
        return frozenset()
    return NON_NULLABLE_FIELDS.get(model.__name__, frozenset())


def __getattr__(name: str) -> Any:
    module_name = _MODULE_OF.get(name)
    if module_name is None:
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
    module = importlib.import_module(f"{{__name__}}.{{module_name}}")
    globals().update({{own: getattr(module, own) for own in module.__all__}})  # later look-ups skip this
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({{*globals(), *__all__}})


__all__ = [
{exports}]
'''
