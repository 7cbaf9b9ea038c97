"""Hoisting and merging of the spec's schemas into one catalogue of named object shapes.

Autumn's spec inlines nearly every schema, so a plain generator run produces hundreds of numbered
duplicates (``Interval3`` ... ``Interval80``). Here every inline object schema is interned by its
*structure* (descriptions, titles and examples ignored), so one shape becomes one class however
many operations repeat it, and each shape is then named once, top-down, from the most meaningful
place it occurs: a component name, a request title, an operation's response, a webhook event, a
nested ``title``, or finally its parent's name plus the property that holds it. A shape that is
a component minus some optional fields (``customers.update`` returns a customer without the
expandable lists) is served by that component's class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .identifiers import pascal, singular
from .name_overrides import NAME_OVERRIDES, VARIANT_NAMES

SHAPE_REF = "#/shape/"
"""Placeholder ``$ref`` prefix for an interned shape until it has a name."""

COMPONENT_REF = "#/components/schemas/"

# Schema keywords that carry no structure for the generated models. ``default`` is dropped on
# purpose: every optional field defaults to None, so "not sent" never turns into the server's
# default on the wire (``to_api()`` sends only what was set) and responses don't invent values.
_DROPPED_KEYWORDS = frozenset(
    {"title", "example", "examples", "default", "propertyNames", "prefixItems", "readOnly", "writeOnly"}
)
# Constraints inside a union option would make the generator emit a wrapper class per option.
_OPTION_CONSTRAINTS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
    }
)
# Formats that would pull in extra validators or change values on a round trip (``AnyUrl`` adds "/").
_DROPPED_FORMATS = frozenset({"email", "uri", "url"})
# Name suffixes dropped from a parent's name when naming its children (``AttachParams.customize``
# becomes ``AttachCustomize``), unless that collides.
_ROLE_SUFFIXES = ("Params", "Response", "Request", "Event")

# A shape is absorbed into a component only when it is that component minus optional fields and
# still has at least this many fields (so tiny shapes like {"success"} never get swallowed).
_MIN_ABSORBED_FIELDS = 3

PRIORITY_COMPONENT = 0
PRIORITY_ROOT = 1


@dataclass(frozen=True)
class Link:
    """Where a child shape hangs off its parent: a property, its items, or its map values."""

    label: str
    """Singular-aware naming label, e.g. ``"price"`` or ``"auto_topup"`` for ``auto_topups[]``."""
    child: int
    variant: int = 0
    variants: int = 1


@dataclass
class Shape:
    """One distinct object structure; becomes exactly one generated class."""

    id: int
    schema: dict[str, Any]
    links: list[Link]
    root_names: list[tuple[int, int, str]] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    identity: str | None = None
    """Set for titled request bodies: they keep their own class even when shaped like another."""
    merged_into: int | None = None
    name: str | None = None

    @property
    def is_component(self) -> bool:
        return any(priority == PRIORITY_COMPONENT for priority, _, _ in self.root_names)


def _canonical(schema: Any) -> Any:
    """The schema minus documentation, for structural comparison."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "description":
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: _canonical(prop) for name, prop in value.items()}
            else:
                out[key] = _canonical(value)
        return out
    if isinstance(schema, list):
        return [_canonical(item) for item in schema]
    return schema


def _without_constraints(schema: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in schema.items() if key not in _OPTION_CONSTRAINTS}
    if isinstance(out.get("items"), dict):
        out["items"] = _without_constraints(out["items"])
    return out


def _is_object_with_properties(schema: Any) -> bool:
    return (
        isinstance(schema, dict) and isinstance(schema.get("properties"), dict) and bool(schema["properties"])
    )


class Catalog:
    """Interns schemas from one or more spec documents and names the resulting shapes."""

    def __init__(self) -> None:
        self.shapes: list[Shape] = []
        self._by_key: dict[str, int] = {}
        self._root_seq = 0
        self._roots: list[int] = []
        self.enums: dict[str, dict[str, Any]] = {}
        """Named enum components, emitted as ``Literal`` type aliases."""

    # -- interning -----------------------------------------------------------------------------

    def add_root(
        self,
        schema: dict[str, Any],
        components: dict[str, Any],
        name: str,
        priority: int,
        distinct: bool = False,
    ) -> int:
        """Intern a top-level schema (request body, response, event, component) under ``name``.

        ``distinct`` keeps the root its own class even if another root has the same shape: a titled
        request body (``PreviewAttachParams``) is part of the SDK surface and keeps its title.
        """
        if distinct and "$ref" not in schema and _is_object_with_properties(schema):
            shape_id = self._intern_object(schema, components, name, identity=name)
        else:
            links: list[Link] = []
            normalized = self.normalize(schema, components, name, links)
            ref = normalized.get("$ref", "")
            if not ref.startswith(SHAPE_REF):
                raise ValueError(f"root schema {name!r} is not an object with properties")
            shape_id = int(ref[len(SHAPE_REF) :])
        self._root_seq += 1
        self.shapes[shape_id].root_names.append((priority, self._root_seq, name))
        self._roots.append(shape_id)
        return shape_id

    def normalize(
        self,
        schema: Any,
        components: dict[str, Any],
        label: str,
        links: list[Link],
        variant: int = 0,
        variants: int = 1,
    ) -> dict[str, Any]:
        """Rewrite ``schema`` so every object with properties is a placeholder ``$ref`` to its shape."""
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            return self._normalize_ref(schema, components, label, links, variant, variants)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _DROPPED_KEYWORDS or key.startswith("x-"):
                continue
            if key == "format" and value in _DROPPED_FORMATS:
                continue
            if key == "additionalProperties" and not isinstance(value, dict):
                continue
            out[key] = value
        if "anyOf" in out or "oneOf" in out:
            return self._normalize_union(out, components, label, links)
        if _is_object_with_properties(schema):
            shape_id = self._intern_object(schema, components, label)
            links.append(Link(label, shape_id, variant, variants))
            ref: dict[str, Any] = {"$ref": f"{SHAPE_REF}{shape_id}"}
            if "description" in schema:
                ref["description"] = schema["description"]
            return ref
        if out.get("type") == "object" or "additionalProperties" in out:
            out.pop("properties", None)
            values = out.get("additionalProperties")
            if isinstance(values, dict) and values:
                out["additionalProperties"] = self.normalize(values, components, singular(label), links)
            else:
                out.pop("additionalProperties", None)
            out["type"] = "object"
        if out.get("type") == "array" and isinstance(out.get("items"), dict):
            out["items"] = self.normalize(out["items"], components, singular(label), links)
        return out

    def _normalize_ref(
        self,
        schema: dict[str, Any],
        components: dict[str, Any],
        label: str,
        links: list[Link],
        variant: int,
        variants: int,
    ) -> dict[str, Any]:
        ref = str(schema["$ref"])
        if not ref.startswith(COMPONENT_REF):
            raise ValueError(f"unsupported $ref {ref!r}")
        component_name = ref[len(COMPONENT_REF) :]
        target = components[component_name]
        if _is_object_with_properties(target):
            shape_id = self._intern_object(target, components, component_name)
            self._root_seq += 1
            self.shapes[shape_id].root_names.append((PRIORITY_COMPONENT, self._root_seq, component_name))
            links.append(Link(label, shape_id, variant, variants))
            out: dict[str, Any] = {"$ref": f"{SHAPE_REF}{shape_id}"}
        elif isinstance(target.get("enum"), list) and target.get("type") == "string":
            # A named enum component (CustomerExpand) becomes a named Literal alias.
            self.enums.setdefault(component_name, {"type": "string", "enum": list(target["enum"])})
            out = {"$ref": COMPONENT_REF + component_name}
        else:
            # Other scalar components (CustomerId) are inlined: an alias of ``str`` helps nobody.
            out = self.normalize(target, components, label, links, variant, variants)
        if "description" in schema:
            out["description"] = schema["description"]
        return out

    def _normalize_union(
        self, schema: dict[str, Any], components: dict[str, Any], label: str, links: list[Link]
    ) -> dict[str, Any]:
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        flat: list[Any] = []
        for option in schema[keyword]:
            # anyOf [anyOf [number, const inf], null] is anyOf [number, const inf, null]
            if isinstance(option, dict) and set(option) <= {"anyOf", "description"} and "anyOf" in option:
                flat.extend(option["anyOf"])
            else:
                flat.append(option)
        object_options = [opt for opt in flat if _is_object_with_properties(opt)]
        options: list[Any] = []
        seen: list[str] = []
        index = 0
        for option in flat:
            if _is_object_with_properties(option):
                normalized = self.normalize(option, components, label, links, index, len(object_options))
                index += 1
            else:
                normalized = _without_constraints(self.normalize(option, components, label, links))
            key = json.dumps(_canonical(normalized), sort_keys=True)
            if key not in seen:
                seen.append(key)
                options.append(normalized)
        out = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        out["anyOf"] = options
        return out

    def _intern_object(
        self, schema: dict[str, Any], components: dict[str, Any], label: str, identity: str | None = None
    ) -> int:
        links: list[Link] = []
        properties = {
            name: self.normalize(prop, components, name, links) for name, prop in schema["properties"].items()
        }
        normalized: dict[str, Any] = {"type": "object", "properties": properties}
        required = [name for name in schema.get("required", []) if name in properties]
        if required:
            normalized["required"] = required
        if "description" in schema:
            normalized["description"] = schema["description"]
        key = json.dumps(_canonical(normalized), sort_keys=True) + (f"#{identity}" if identity else "")
        shape_id = self._by_key.get(key)
        if shape_id is None:
            shape_id = len(self.shapes)
            self._by_key[key] = shape_id
            self.shapes.append(Shape(id=shape_id, schema=normalized, links=links, identity=identity))
        title = schema.get("title")
        if isinstance(title, str) and title and title not in self.shapes[shape_id].titles:
            self.shapes[shape_id].titles.append(title)
        return shape_id

    # -- merging -------------------------------------------------------------------------------

    def find(self, shape_id: int) -> int:
        """The shape that now stands for ``shape_id`` after merging."""
        while (target := self.shapes[shape_id].merged_into) is not None:
            shape_id = target
        return shape_id

    def live_shapes(self) -> list[Shape]:
        return [shape for shape in self.shapes if shape.merged_into is None]

    def _merge(self, source: Shape, target: Shape) -> None:
        source.merged_into = target.id
        target.root_names.extend(source.root_names)
        target.titles.extend(t for t in source.titles if t not in target.titles)

    def _resolved_properties(self, shape: Shape) -> dict[str, str]:
        return {
            name: json.dumps(_canonical(self._through_merges(prop)), sort_keys=True)
            for name, prop in shape.schema["properties"].items()
        }

    def _through_merges(self, schema: Any) -> Any:
        if isinstance(schema, dict):
            out: dict[str, Any] = {}
            for key, value in schema.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(SHAPE_REF):
                    out[key] = f"{SHAPE_REF}{self.find(int(value[len(SHAPE_REF) :]))}"
                elif key == "properties" and isinstance(value, dict):
                    out[key] = {name: self._through_merges(prop) for name, prop in value.items()}
                else:
                    out[key] = self._through_merges(value)
            return out
        if isinstance(schema, list):
            return [self._through_merges(item) for item in schema]
        return schema

    def _absorbable(self, small: Shape, component: Shape) -> bool:
        """``small`` is ``component`` minus some optional fields (``customers.update`` returns a
        customer without the expandable lists): one class serves both."""
        if small.id == component.id or small.identity is not None or small.is_component:
            return False
        small_props = self._resolved_properties(small)
        big_props = self._resolved_properties(component)
        if len(small_props) < _MIN_ABSORBED_FIELDS or len(small_props) == len(big_props):
            return False
        if set(small.schema.get("required", [])) != set(component.schema.get("required", [])):
            return False
        return all(big_props.get(name) == schema for name, schema in small_props.items())

    def merge_shapes(self) -> None:
        """Merge shapes that became identical once their children merged, and absorb near-copies
        of components, until nothing changes."""
        changed = True
        while changed:
            changed = False
            components = [shape for shape in self.live_shapes() if shape.is_component]
            for shape in self.live_shapes():
                for component in components:
                    if self._absorbable(shape, component):
                        self._merge(shape, component)
                        changed = True
                        break
            seen: dict[str, Shape] = {}
            for shape in self.live_shapes():
                key = json.dumps(_canonical(self._through_merges(shape.schema)), sort_keys=True)
                key += f"#{shape.identity}" if shape.identity else ""
                if key in seen:
                    self._merge(shape, seen[key])
                    changed = True
                else:
                    seen[key] = shape

    # -- naming --------------------------------------------------------------------------------

    def assign_names(self) -> None:
        """Name every shape: roots by priority, then children top-down from their parents."""
        self.merge_shapes()
        taken: dict[str, int] = {}

        def claim(shape: Shape, name: str) -> None:
            if name in taken and taken[name] != shape.id:
                had = sorted(self.shapes[taken[name]].schema.get("properties", {}))
                wants = sorted(shape.schema.get("properties", {}))
                raise ValueError(
                    f"two different shapes want the name {name!r} (fields {had} and {wants}); "
                    "add an entry to codegen/name_overrides.py"
                )
            taken[name] = shape.id
            shape.name = name

        for shape in sorted(
            (s for s in self.live_shapes() if s.root_names), key=lambda s: min(s.root_names)[:2]
        ):
            _, _, default = min(shape.root_names)
            claim(shape, NAME_OVERRIDES.get(default, default))

        def visit(shape: Shape) -> None:
            assert shape.name is not None
            for link in shape.links:
                child = self.shapes[self.find(link.child)]
                if child.name is None:
                    claim(child, self._child_name(shape.name, link, child, taken))
                    visit(child)

        for root in dict.fromkeys(self.find(root) for root in self._roots):
            visit(self.shapes[root])
        unnamed = [s.id for s in self.live_shapes() if s.name is None]
        if unnamed:
            raise ValueError(f"unreachable shapes without a name: {unnamed}")

    def _child_name(self, parent: str, link: Link, child: Shape, taken: dict[str, int]) -> str:
        base = parent
        for suffix in _ROLE_SUFFIXES:
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        label = pascal(link.label)
        key = parent + label
        if link.variants > 1:
            key = f"{key}[{link.variant}]"
            if key not in VARIANT_NAMES and link.variant > 0:
                raise ValueError(
                    f"union variant {key!r} needs a name in codegen/name_overrides.py VARIANT_NAMES"
                )
            if key in VARIANT_NAMES:
                return VARIANT_NAMES[key]
        if key in NAME_OVERRIDES:
            return NAME_OVERRIDES[key]
        for candidate in [*child.titles, base + label, parent + label]:
            if taken.get(candidate, child.id) == child.id:
                return candidate
        raise ValueError(
            f"no free name for a child of {parent!r} at {link.label!r}; add one to codegen/name_overrides.py"
        )

    # -- output --------------------------------------------------------------------------------

    def name_of(self, shape_id: int) -> str:
        name = self.shapes[self.find(shape_id)].name
        if name is None:
            raise ValueError("assign_names() first")
        return name

    def resolve(self, schema: Any) -> Any:
        """Replace shape placeholders with component references by final name."""
        if isinstance(schema, dict):
            out: dict[str, Any] = {}
            for key, value in schema.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(SHAPE_REF):
                    out[key] = COMPONENT_REF + self.name_of(int(value[len(SHAPE_REF) :]))
                elif key == "properties" and isinstance(value, dict):
                    out[key] = {name: self.resolve(prop) for name, prop in value.items()}
                else:
                    out[key] = self.resolve(value)
            return out
        if isinstance(schema, list):
            return [self.resolve(item) for item in schema]
        return schema

    def components(self) -> dict[str, Any]:
        """All shapes as OpenAPI components, in a stable order (by name)."""
        named = {self.name_of(s.id): self.resolve(s.schema) for s in self.live_shapes()}
        clashes = set(named) & set(self.enums)
        if clashes:
            raise ValueError(f"enum and object share a name: {sorted(clashes)}")
        named.update(self.enums)
        return {name: named[name] for name in sorted(named)}
