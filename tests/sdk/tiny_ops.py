"""Small hand-made operations for transport tests that must not depend on the generated table."""

from __future__ import annotations

from typing import Any

from autumn_sdk._model import AutumnModel
from autumn_sdk._operation import Operation


class GateParams(AutumnModel):
    customer_id: str
    feature_id: str | None = None
    send_event: bool | None = None
    lock: dict[str, Any] | None = None


class GateResult(AutumnModel):
    allowed: bool
    customer_id: str
    balance: dict[str, Any] | None = None
    flag: dict[str, Any] | None = None
    entity_id: str | None = None


class AttachParams(AutumnModel):
    customer_id: str
    plan_id: str


class AttachResult(AutumnModel):
    customer_id: str
    payment_url: str | None = None


class GetParams(AutumnModel):
    customer_id: str


class Person(AutumnModel):
    id: str | None
    name: str | None = None


class PersonPage(AutumnModel):
    list: list[Person]
    next_cursor: str | None


class ListParams(AutumnModel):
    start_cursor: str | None = None
    limit: int | None = None


def _op(
    operation_id: str,
    group: str | None,
    name: str,
    path: str,
    params: Any,
    result: Any,
    **policy: Any,
) -> Operation:
    """``policy``: the operation's declared policy, as codegen/policy.py gives the real one."""
    fields: dict[str, Any] = {
        "read_only": False,
        "writes_when": (),
        "fail_open": False,
        "timeout_class": "default",
        "rate_limit_group": "other",
        "locks_customer": False,
        "hot_path": False,
        "long_read": False,
        "handler_route": None,
        "handler_fail_open": False,
        "handler_requires_customer": False,
        **policy,
    }
    return Operation(
        operation_id=operation_id,
        group=group,
        name=name,
        http_method="POST",
        path=path,
        params_model_ref=params,
        response_model_ref=result,
        success_statuses=(200, 202),
        error_statuses=(),
        api="v1",
        body_style="fields",
        **fields,
    )


CHECK = _op(
    "check",
    None,
    "check",
    "/v1/balances.check",
    GateParams,
    GateResult,
    read_only=True,
    writes_when=("send_event", "lock"),
    fail_open=True,
    timeout_class="gate",
    rate_limit_group="check",
    hot_path=True,
)
ATTACH = _op(
    "attach",
    "billing",
    "attach",
    "/v1/billing.attach",
    AttachParams,
    AttachResult,
    timeout_class="billing",
    rate_limit_group="billing",
    locks_customer=True,
)
GET_PERSON = _op(
    "getCustomer",
    "customers",
    "get",
    "/v1/customers.get",
    GetParams,
    Person,
    read_only=True,
    rate_limit_group="check",
)
LIST_PEOPLE = _op(
    "listCustomers",
    "customers",
    "list",
    "/v1/customers.list",
    ListParams,
    PersonPage,
    read_only=True,
    rate_limit_group="list",
)
