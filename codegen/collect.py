"""Walks the spec documents: every operation, webhook and component goes through the catalogue.

The result (:class:`Collection`) is everything the three emitters need: the named shapes and, per
endpoint and webhook, which shapes it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .catalog import PRIORITY_COMPONENT, PRIORITY_ROOT, SHAPE_REF, Catalog
from .identifiers import pascal, snake, upper_snake, words
from .spec import HTTP_METHODS, SpecDocument

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class OperationInfo:
    """One endpoint, as the emitters see it."""

    operation_id: str
    group: str | None
    name: str
    http_method: HttpMethod
    path: str
    params_shape: int | None
    response_shape: int | None
    success_statuses: tuple[int, ...]
    error_statuses: tuple[int, ...]
    api: Literal["v1", "platform"]
    body_style: Literal["fields", "request", "items"]
    summary: str
    description: str
    min_items: int = 0
    max_items: int | None = None

    @property
    def constant(self) -> str:
        """``CUSTOMERS_GET_OR_CREATE``, ``CHECK``, ``PLATFORM_CREATE_ORGANIZATION``."""
        return upper_snake(f"{self.group}_{self.name}" if self.group else self.name)


@dataclass(frozen=True)
class WebhookInfo:
    event_type: str
    payload_shape: int


@dataclass(frozen=True)
class Collection:
    catalog: Catalog
    operations: tuple[OperationInfo, ...]
    webhooks: tuple[WebhookInfo, ...]


def _json_schema(content_holder: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content_holder:
        return None
    content = content_holder.get("content") or {}
    media = content.get("application/json")
    if not isinstance(media, dict) or not isinstance(media.get("schema"), dict):
        return None
    schema: dict[str, Any] = media["schema"]
    return schema


def _platform_method_name(operation_id: str) -> str:
    """``createPlatformOrganization`` -> ``create_organization``: the group already says platform."""
    return "_".join(word for word in snake(operation_id).split("_") if word != "platform")


def collect(documents: list[SpecDocument]) -> Collection:
    """Intern every schema of every document, then name the shapes."""
    catalog = Catalog()
    operations: list[OperationInfo] = []
    webhooks: list[WebhookInfo] = []

    for document in documents:
        components = document.data.get("components", {}).get("schemas", {}) or {}
        for name, schema in components.items():
            if (
                isinstance(schema, dict)
                and isinstance(schema.get("properties"), dict)
                and schema["properties"]
            ):
                catalog.add_root(schema, components, name, PRIORITY_COMPONENT)

    for document in documents:
        components = document.data.get("components", {}).get("schemas", {}) or {}
        platform = document.is_platform
        prefix = document.server_path_prefix
        for path, path_item in (document.data.get("paths") or {}).items():
            for method in HTTP_METHODS:
                op = path_item.get(method)
                if isinstance(op, dict):
                    operations.append(_operation(catalog, components, op, method, prefix + path, platform))
        for event_type, path_item in (document.data.get("webhooks") or {}).items():
            op = path_item.get("post") or {}
            schema = _json_schema(op.get("requestBody"))
            if schema is None:
                raise ValueError(f"webhook {event_type!r} has no JSON payload schema")
            shape = catalog.add_root(schema, components, pascal(event_type) + "Event", PRIORITY_ROOT)
            webhooks.append(WebhookInfo(event_type=event_type, payload_shape=shape))

    catalog.assign_names()
    return Collection(catalog=catalog, operations=tuple(operations), webhooks=tuple(webhooks))


def _operation(
    catalog: Catalog, components: dict[str, Any], op: dict[str, Any], method: str, path: str, platform: bool
) -> OperationInfo:
    operation_id = str(op["operationId"])
    override = op.get("x-speakeasy-name-override")
    if platform:
        group: str | None = "platform"
        name = snake(override) if override else _platform_method_name(operation_id)
    else:
        tags = op.get("tags") or []
        group = str(tags[0]) if tags else None
        name = snake(override) if override else snake(operation_id)
    base = pascal(name) if platform else pascal(operation_id)

    params_shape: int | None = None
    body_style: Literal["fields", "request", "items"] = "fields"
    min_items, max_items = 0, None
    request_body = op.get("requestBody")
    body_schema = _json_schema(request_body)
    if body_schema is not None and body_schema.get("type") == "array":
        # A JSON-array body (balances.batch_track): the params model is one item's; the SDK takes
        # the list as ``request=`` as the official SDK does.
        item_schema = body_schema.get("items")
        if not isinstance(item_schema, dict):
            raise ValueError(f"{operation_id}: array body without an item schema")
        params_shape = catalog.add_root(item_schema, components, base + "Item", PRIORITY_ROOT, distinct=True)
        body_style = "items"
        min_items = int(body_schema.get("minItems", 0))
        max_items = int(body_schema["maxItems"]) if "maxItems" in body_schema else None
    elif body_schema is not None and not body_schema.get("properties") and "$ref" not in body_schema:
        # An object body with no declared fields (rewards.list): called as ``request={}``.
        body_style = "request"
    elif body_schema is not None:
        title = body_schema.get("title")
        params_name = str(title) if isinstance(title, str) and title else base + "Params"
        params_shape = catalog.add_root(body_schema, components, params_name, PRIORITY_ROOT, distinct=True)
        required = bool(request_body.get("required")) if isinstance(request_body, dict) else False
        if not required:
            body_style = "request"
    elif method == "get":
        query = [p for p in op.get("parameters", []) if isinstance(p, dict) and p.get("in") == "query"]
        if query:
            properties = {
                str(p["name"]): {
                    **p.get("schema", {}),
                    **({"description": p["description"]} if "description" in p else {}),
                }
                for p in query
            }
            schema: dict[str, Any] = {"type": "object", "properties": properties}
            required_names = [str(p["name"]) for p in query if p.get("required")]
            if required_names:
                schema["required"] = required_names
            params_shape = catalog.add_root(schema, components, base + "Params", PRIORITY_ROOT, distinct=True)
    else:
        body_style = "request"

    success: list[int] = []
    errors: list[int] = []
    response_shape: int | None = None
    for status_text, response in (op.get("responses") or {}).items():
        status = int(status_text)
        schema_or_none = _json_schema(response)
        if 200 <= status < 300:
            success.append(status)
            if schema_or_none is not None:
                title = schema_or_none.get("title")
                if isinstance(title, str) and title:
                    response_name = title
                elif body_schema is not None and str(body_schema.get("title", "")).endswith("Params"):
                    response_name = str(body_schema["title"])[: -len("Params")] + "Response"
                else:
                    response_name = base + "Response"
                shape = catalog.add_root(schema_or_none, components, response_name, PRIORITY_ROOT)
                if response_shape is not None and shape != response_shape:
                    raise ValueError(f"{operation_id}: success responses differ in shape")
                response_shape = shape
        else:
            errors.append(status)
            if schema_or_none is not None and ("$ref" in schema_or_none or schema_or_none.get("properties")):
                catalog.add_root(schema_or_none, components, base + "Error", PRIORITY_ROOT)

    summary = str(op.get("summary") or "")
    description = str(op.get("description") or summary)
    if not summary:
        summary = description.strip().split("\n", 1)[0].strip()
    return OperationInfo(
        operation_id=operation_id,
        group=group,
        name=name,
        http_method=method.upper(),  # type: ignore[arg-type]
        path=path,
        params_shape=params_shape,
        response_shape=response_shape,
        success_statuses=tuple(success),
        error_statuses=tuple(errors),
        api="platform" if platform else "v1",
        body_style=body_style,
        summary=summary,
        description=description,
        min_items=min_items,
        max_items=max_items,
    )


__all__ = ["SHAPE_REF", "Collection", "OperationInfo", "WebhookInfo", "collect", "words"]
