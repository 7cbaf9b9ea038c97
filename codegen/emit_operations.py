"""``_generated/operations.py``: one :class:`~autumn_sdk._operation.Operation` per endpoint."""

from __future__ import annotations

from .collect import Collection, OperationInfo
from .policy import Policy, policy_for


def _qualified_name(op: OperationInfo) -> str:
    return f"{op.group}.{op.name}" if op.group else op.name


def _model_ref(collection: Collection, shape: int | None) -> str:
    return "None" if shape is None else repr(collection.catalog.name_of(shape))


def _policy_fields(policy: Policy) -> list[tuple[str, str]]:
    handler = policy.handler
    return [
        ("read_only", repr(policy.read_only)),
        ("writes_when", repr(policy.writes_when)),
        ("fail_open", repr(policy.fail_open)),
        ("timeout_class", repr(policy.timeout_class)),
        ("rate_limit_group", repr(policy.rate_limit_group)),
        ("locks_customer", repr(policy.locks_customer)),
        ("hot_path", repr(policy.hot_path)),
        ("long_read", repr(policy.long_read)),
        ("handler_route", repr(handler.name if handler else None)),
        ("handler_fail_open", repr(handler.fail_open if handler else False)),
        ("handler_requires_customer", repr(handler.requires_customer if handler else False)),
    ]


def _operation(collection: Collection, op: OperationInfo, policy: Policy) -> str:
    fields = [
        ("operation_id", repr(op.operation_id)),
        ("group", repr(op.group)),
        ("name", repr(op.name)),
        ("http_method", repr(op.http_method)),
        ("path", repr(op.path)),
        ("params_model_ref", _model_ref(collection, op.params_shape)),
        ("response_model_ref", _model_ref(collection, op.response_shape)),
        ("success_statuses", repr(op.success_statuses)),
        ("error_statuses", repr(op.error_statuses)),
        ("api", repr(op.api)),
        ("body_style", repr(op.body_style)),
        ("summary", repr(op.summary)),
    ]
    if op.body_style == "items":
        fields += [("min_items", repr(op.min_items)), ("max_items", repr(op.max_items))]
    fields += _policy_fields(policy)
    body = "".join(f"    {key}={value},\n" for key, value in fields)
    return f"{op.constant} = Operation(\n{body})\n"


def render_operations(collection: Collection, header: str) -> str:
    constants = [op.constant for op in collection.operations]
    if len(set(constants)) != len(constants):
        raise ValueError("two operations share a qualified name")
    parts = [
        header,
        '"""Every endpoint of the Autumn API and the platform API, and the webhook payload models."""',
        "",
        "from __future__ import annotations",
        "",
        "from autumn_sdk._operation import Operation",
        "",
    ]
    policies = policy_for(_qualified_name(op) for op in collection.operations)
    parts.extend(_operation(collection, op, policies[_qualified_name(op)]) for op in collection.operations)
    parts.append(
        "OPERATIONS: tuple[Operation, ...] = (\n" + "".join(f"    {c},\n" for c in constants) + ")\n"
    )
    by_path: dict[str, OperationInfo] = {}
    for op in collection.operations:
        # GET and POST share /v1/platform/organizations: the path maps to the POST (the write);
        # OPERATIONS_BY_ROUTE tells every (method, path) apart.
        if op.path not in by_path or op.http_method != "GET":
            by_path[op.path] = op
    parts.append(
        "# Path -> operation; where GET and POST share a path the POST is listed (see OPERATIONS_BY_ROUTE).\n"
        "OPERATIONS_BY_PATH: dict[str, Operation] = {\n"
        + "".join(f"    {path!r}: {op.constant},\n" for path, op in by_path.items())
        + "}\n"
    )
    parts.append(
        "OPERATIONS_BY_ROUTE: dict[tuple[str, str], Operation] = {\n"
        + "".join(f"    ({op.http_method!r}, {op.path!r}): {op.constant},\n" for op in collection.operations)
        + "}\n"
    )
    events = "".join(
        f"    {hook.event_type!r}: {collection.catalog.name_of(hook.payload_shape)!r},\n"
        for hook in collection.webhooks
    )
    parts.append(
        "# Webhook event type -> the name of its payload model (``autumn_sdk._operation.model_named``).\n"
        f"WEBHOOK_EVENTS: dict[str, str] = {{\n{events}}}\n"
    )
    names = ["OPERATIONS", "OPERATIONS_BY_PATH", "OPERATIONS_BY_ROUTE", "WEBHOOK_EVENTS", *constants]
    parts.append("__all__ = [\n" + "".join(f"    {n!r},\n" for n in names) + "]\n")
    return "\n".join(parts)
