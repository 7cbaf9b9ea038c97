"""``autumn_config.py`` as source text: written from config objects, and edited in place with libcst.

An in-place edit touches only what changed: an unchanged object's statement (its formatting and
comments) is left as it is, a changed one is replaced (the comment lines above it kept), a new one is
added after the others of its kind, one gone from the server is removed, and ``internal_id`` /
``version`` (and a plan version's ``version_slug`` / ``active``) are set as keyword arguments without
reformatting the call.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autumn_sdk import models
from autumn_sdk.config import Feature, Plan

if TYPE_CHECKING:
    import libcst as cst

WIDTH = 100
IMPORT_LINE = "from autumn_sdk.config import feature, item, plan\n"
HEADER = '"""Pricing for this project: features and plans (`autumn push` / `autumn pull`)."""\n\n'


# ---------------------------------------------------------------- writing objects as Python


@dataclass
class _Call:
    func: str
    args: list[Any]
    kwargs: list[tuple[str, Any]]


@dataclass
class _List:
    elems: list[Any]


@dataclass
class _Name:
    name: str


def _literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} into a config")


def _flat(node: Any) -> str:
    if isinstance(node, _Call):
        parts = [_flat(a) for a in node.args] + [f"{k}={_flat(v)}" for k, v in node.kwargs]
        return f"{node.func}({', '.join(parts)})"
    if isinstance(node, _List):
        return "[" + ", ".join(_flat(e) for e in node.elems) + "]"
    if isinstance(node, _Name):
        return node.name
    return _literal(node)


def _render(node: Any, indent: int, prefix_len: int) -> str:
    flat = _flat(node)
    if indent + prefix_len + len(flat) <= WIDTH or not isinstance(node, (_Call, _List)):
        return flat
    pad = " " * (indent + 4)
    if isinstance(node, _List):
        inner = [pad + _render(e, indent + 4, 0) + ",\n" for e in node.elems]
        return "[\n" + "".join(inner) + " " * indent + "]"
    lines = [pad + _render(a, indent + 4, 0) + ",\n" for a in node.args]
    lines += [pad + f"{k}=" + _render(v, indent + 4, len(k) + 1) + ",\n" for k, v in node.kwargs]
    return f"{node.func}(\n" + "".join(lines) + " " * indent + ")"


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _feature_node(f: Feature) -> _Call:
    kwargs: list[tuple[str, Any]] = [("name", f.name), ("type", f.type)]
    if f.consumable is not None and f.type == "metered":
        kwargs.append(("consumable", f.consumable))
    if f.credit_schema:
        kwargs.append(("credit_schema", [e.model_dump(exclude_none=True) for e in f.credit_schema]))
    if f.event_names:
        kwargs.append(("event_names", list(f.event_names)))
    if f.display is not None:
        kwargs.append(("display", f.display.model_dump(exclude_none=True)))
    if f.archived:
        kwargs.append(("archived", True))
    if f.internal_id:
        kwargs.append(("internal_id", f.internal_id))
    return _Call("feature", [f.feature_id], kwargs)


def _item_node(it: models.PlanItemParams, feature_vars: dict[str, str]) -> _Call:
    ref: Any = _Name(feature_vars[it.feature_id]) if it.feature_id in feature_vars else it.feature_id
    kwargs: list[tuple[str, Any]] = []
    for key in ("included", "unlimited"):
        value = getattr(it, key)
        if value is not None:
            kwargs.append((key, value))
    for key in ("reset", "price", "proration", "rollover"):
        value = getattr(it, key)
        if value is not None:
            kwargs.append((key, value.model_dump(mode="json", exclude_none=True)))
    return _Call("item", [ref], kwargs)


def _plan_node(p: Plan, feature_vars: dict[str, str]) -> _Call:
    kwargs: list[tuple[str, Any]] = []
    if p.version_slug is not None:
        kwargs.append(("version_slug", p.version_slug))
    if p.active is not None:
        kwargs.append(("active", p.active))
    kwargs.append(("name", p.name))
    for key in ("description", "group", "add_on", "auto_enable"):
        value = getattr(p, key)
        if value is not None:
            kwargs.append((key, value))
    if p.price is not None:
        kwargs.append(("price", p.price.model_dump(mode="json", exclude_none=True)))
    kwargs.append(("items", _List([_item_node(it, feature_vars) for it in p.items or []])))
    for key in ("free_trial", "config"):
        value = getattr(p, key)
        if value is not None:
            kwargs.append((key, _clean(value.model_dump(mode="json", exclude_none=True))))
    if p.version is not None:
        kwargs.append(("version", p.version))
    if p.archived:
        kwargs.append(("archived", True))
    if p.internal_id:
        kwargs.append(("internal_id", p.internal_id))
    return _Call("plan", [p.plan_id], kwargs)


def statement(var: str, obj: Feature | Plan, feature_vars: dict[str, str]) -> str:
    """``var = feature(...)`` / ``var = plan(...)`` as formatted source (one statement, with newline)."""
    node = _feature_node(obj) if isinstance(obj, Feature) else _plan_node(obj, feature_vars)
    if isinstance(obj, Plan) and (obj.items or []):
        # Plans read best one argument per line, whatever their length.
        pad = "    "
        lines = [pad + _render(a, 4, 0) + ",\n" for a in node.args]
        lines += [pad + f"{k}=" + _render(v, 4, len(k) + 1) + ",\n" for k, v in node.kwargs]
        return f"{var} = plan(\n" + "".join(lines) + ")\n"
    return f"{var} = " + _render(node, 0, len(var) + 3) + "\n"


def variable_name(obj_id: str, taken: set[str], suffix: str) -> str:
    """A Python name for an object id, unique among ``taken`` (which it is added to)."""
    name = re.sub(r"\W", "_", obj_id)
    if not name or name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name) or name in {"feature", "item", "plan"} or name in taken:
        name = f"{name}_{suffix}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def write_config(features: Sequence[Feature], plans: Sequence[Plan]) -> str:
    """A whole config file for these objects (``autumn init``, ``autumn pull --overwrite``)."""
    taken: set[str] = set()
    fvars = {f.feature_id: variable_name(f.feature_id, taken, "feature") for f in features}
    out = [HEADER, IMPORT_LINE]
    if features:
        out.append("\n# Features\n\n")
        out += [statement(fvars[f.feature_id], f, fvars) for f in features]
    if plans:
        out.append("\n# Plans\n")
        for p in plans:
            base = p.plan_id if p.is_active else f"{p.plan_id}_{p.version_slug}"
            out += ["\n", statement(variable_name(base, taken, "plan"), p, fvars)]
    return "".join(out)


# ---------------------------------------------------------------- editing a config in place


def _assigned_call(stmt: cst.CSTNode) -> tuple[str, cst.Call] | None:
    """``name = <call>`` at module level -> (name, call)."""
    import libcst as cst

    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return None
    assign = stmt.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    if not isinstance(target, cst.Name) or not isinstance(assign.value, cst.Call):
        return None
    return target.value, assign.value


_LEADING = ("version_slug", "active")
"""Keywords :func:`_set_kwargs` adds right after a call's positional id, as ``statement`` writes them."""


def _keyword(arg: cst.Arg) -> str | None:
    return arg.keyword.value if arg.keyword is not None else None


def _set_kwargs(call: cst.Call, values: dict[str, Any]) -> cst.Call:
    """Set keyword arguments of ``call``, replacing values in place or appending in the call's style."""
    import libcst as cst

    args = list(call.args)
    for key, value in values.items():
        expr = cst.parse_expression(_literal(value))
        index = next(
            (i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == key), None
        )
        if index is not None:
            args[index] = args[index].with_changes(value=expr)
            continue
        new = cst.Arg(
            keyword=cst.Name(key),
            value=expr,
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            ),
        )
        if not args:
            args.append(new)
            continue
        if key in _LEADING and args[0].keyword is None and isinstance(args[0].comma, cst.Comma):
            # A plan version's name and status read best beside its id: after the leading
            # positional argument (and any leading keyword already there), in its layout.
            at = 1
            while at < len(args) and _keyword(args[at]) in _LEADING:
                at += 1
            args.insert(at, new.with_changes(comma=args[0].comma))
            continue
        last = args[-1]
        if isinstance(last.comma, cst.Comma):
            # One argument per line with a trailing comma: the new one goes on its own line, the
            # closing parenthesis keeps its indentation.
            between = args[-2].comma if len(args) > 1 else None
            ws = between.whitespace_after if isinstance(between, cst.Comma) else call.whitespace_before_args
            args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=ws))
            args.append(new.with_changes(comma=last.comma))
        else:
            args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(new)
    return call.with_changes(args=args)


@dataclass
class Edit:
    """What to do to one module-level object of the config, by its variable name."""

    replace: dict[str, Feature | Plan]
    remove: set[str]
    set_kwargs: dict[str, dict[str, Any]]
    add_features: list[tuple[str, Feature]]
    add_plans: list[tuple[str, Plan]]
    feature_vars: dict[str, str]


def _used_names(statements: Iterable[str]) -> set[str]:
    used = set()
    for src in statements:
        for name in ("feature", "item", "plan"):
            if re.search(rf"\b{name}\(", src):
                used.add(name)
    return used


def edit_config(text: str, edit: Edit) -> str:
    """Apply ``edit`` to the source ``text`` of a config, leaving everything else byte for byte."""
    import libcst as cst

    module = cst.parse_module(text)
    body: list[cst.BaseStatement] = []
    new_sources: list[str] = []
    last_feature = last_plan = last_import = -1
    for stmt in module.body:
        found = _assigned_call(stmt)
        if found is not None:
            var, call = found
            if var in edit.remove:
                continue
            if var in edit.replace:
                src = statement(var, edit.replace[var], edit.feature_vars)
                new_sources.append(src)
                new_stmt = cst.parse_statement(src)
                assert isinstance(stmt, cst.SimpleStatementLine)
                stmt = new_stmt.with_changes(leading_lines=stmt.leading_lines)
            elif var in edit.set_kwargs:
                assert isinstance(stmt, cst.SimpleStatementLine)
                assign = stmt.body[0]
                assert isinstance(assign, cst.Assign)
                stmt = stmt.with_changes(
                    body=[assign.with_changes(value=_set_kwargs(call, edit.set_kwargs[var]))]
                )
            func = call.func
            fname = (
                func.value
                if isinstance(func, cst.Name)
                else func.attr.value
                if isinstance(func, cst.Attribute)
                else ""
            )
            body.append(stmt)
            if fname == "feature":
                last_feature = len(body) - 1
            elif fname == "plan":
                last_plan = len(body) - 1
            continue
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[0], (cst.Import, cst.ImportFrom)
        ):
            last_import = len(body) - 1
        body.append(stmt)

    def block(pairs: Sequence[tuple[str, Feature | Plan]], blank_between: bool) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for var, obj in pairs:
            src = statement(var, obj, edit.feature_vars)
            new_sources.append(src)
            stmt = cst.parse_statement(src)
            if blank_between or not out:
                stmt = stmt.with_changes(leading_lines=[cst.EmptyLine()])
            out.append(stmt)
        return out

    feature_block = block(edit.add_features, blank_between=False)
    plan_block = block(edit.add_plans, blank_between=True)
    if feature_block:
        at = last_feature + 1 if last_feature >= 0 else last_import + 1
        body[at:at] = feature_block
        if last_plan >= at:
            last_plan += len(feature_block)
    if plan_block:
        at = last_plan + 1 if last_plan >= 0 else len(body)
        body[at:at] = plan_block
    module = module.with_changes(body=body)
    return _ensure_imports(module, _used_names(new_sources)).code


def _ensure_imports(module: cst.Module, needed: set[str]) -> cst.Module:
    import libcst as cst

    if not needed:
        return module
    body = list(module.body)
    for i, stmt in enumerate(body):
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        imp = stmt.body[0]
        if not isinstance(imp, cst.ImportFrom) or imp.module is None:
            continue
        if cst.Module([]).code_for_node(imp.module) != "autumn_sdk.config":
            continue
        if isinstance(imp.names, cst.ImportStar):
            return module
        have = {a.name.value for a in imp.names if isinstance(a.name, cst.Name)}
        missing = sorted(needed - have)
        if not missing:
            return module
        names = sorted(have | needed)
        src = f"from autumn_sdk.config import {', '.join(names)}\n"
        body[i] = cst.parse_statement(src).with_changes(leading_lines=stmt.leading_lines)
        return module.with_changes(body=body)
    at = 0
    if body and isinstance(body[0], cst.SimpleStatementLine) and isinstance(body[0].body[0], cst.Expr):
        at = 1  # after the module docstring
    body.insert(at, cst.parse_statement(IMPORT_LINE))
    return module.with_changes(body=body)
