"""The shape of one API operation, as the generated operation table describes it.

``codegen`` writes ``autumn_sdk/_generated/operations.py`` as a list of these; the SDK's
resources, the handlers and the reference server all read the same table, so no endpoint
can be forgotten by one part and served by another. Each operation also carries its policy
(read-only, fail-open, timeout class, rate-limit group, billing lock, hot path, handler route),
declared once in ``codegen/policy.py``.

The generated table names its models rather than holding them: the generated models load one API
group at a time (``_generated/models/``), and the table must not load them all.
"""

from __future__ import annotations

import keyword
from dataclasses import KW_ONLY, dataclass
from typing import Literal

from pydantic import BaseModel

from ._generated import models as _models

_found: dict[str, type[BaseModel]] = {}


def model_named(name: str) -> type[BaseModel]:
    """The generated model called ``name``, its group's module imported on first use."""
    model = _found.get(name)
    if model is None:
        value = getattr(_models, name)
        if not (isinstance(value, type) and issubclass(value, BaseModel)):
            raise TypeError(f"{name!r} is not a generated model")
        model = _found[name] = value
    return model


def _resolve(ref: type[BaseModel] | str | None) -> type[BaseModel] | None:
    return model_named(ref) if isinstance(ref, str) else ref


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint of the Autumn API (``openapi.yml``) or of the platform API (``platform.yaml``)."""

    operation_id: str
    """The spec's ``operationId``, e.g. ``"getOrCreateCustomer"``."""
    group: str | None
    """The SDK group (``"customers"``); ``None`` for operations on the client itself
    (``check``, ``track``)."""
    name: str
    """The Python method name inside its group, e.g. ``"get_or_create"``."""
    http_method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    """Path relative to the server URL, e.g. ``"/v1/customers.get_or_create"``."""
    params_model_ref: type[BaseModel] | str | None
    """The params model (:attr:`params_model`), or the name of a generated one, loaded on first use."""
    response_model_ref: type[BaseModel] | str | None
    """The response model (:attr:`response_model`), or the name of a generated one."""
    success_statuses: tuple[int, ...]
    error_statuses: tuple[int, ...]
    """Error statuses the spec declares (Autumn's own spec declares none; any 4xx/5xx may still come)."""
    api: Literal["v1", "platform"]
    body_style: Literal["fields", "request", "items"]
    """``"fields"``: the SDK method takes the body's fields as keyword arguments;
    ``"request"``: it takes one ``request=`` argument (optional bodies, as the official SDK does);
    ``"items"``: the body is a JSON array, given as ``request=[...]``; ``params_model`` is then the
    model of one item."""
    summary: str = ""
    min_items: int = 0
    """For ``"items"`` bodies: the fewest items the spec allows."""
    max_items: int | None = None
    """For ``"items"`` bodies: the most items the spec allows (``None``: no limit)."""
    _: KW_ONLY
    read_only: bool
    """Repeating the call cannot change state: the SDK retries it without an idempotency key."""
    writes_when: tuple[str, ...]
    """Params that, when set (not ``None`` or ``False``), make a ``read_only`` call a write
    (``check`` with ``send_event`` or ``lock``)."""
    fail_open: bool
    """On an outage the SDK returns a safe default instead of raising (:mod:`autumn_sdk._fail_open`)."""
    timeout_class: Literal["gate", "billing", "default"]
    """The SDK's default per-attempt timeout: ``gate`` 5 s, ``billing`` 30 s, ``default`` 15 s."""
    rate_limit_group: Literal["check", "track", "billing", "events", "entity_get", "list", "other"]
    """Autumn's rate-limit group (documentation/rate-limits.mdx)."""
    locks_customer: bool
    """A billing change that takes the customer's billing lock (a concurrent second one gets 429)."""
    hot_path: bool
    """The reference server serves it ahead of routing, with an event-loop fast path."""
    long_read: bool
    """A read whose cost grows with the stored data (lists, aggregates): the reference server runs
    it off the request loop, so it never stalls the calls behind it."""
    handler_route: str | None
    """The autumn-js hooks route name ``autumn_handlers`` serves it under; ``None``: not a route."""
    handler_fail_open: bool
    """As a handler route: an outage answers 200 with an empty object instead of an error."""
    handler_requires_customer: bool
    """As a handler route: without a customer id from ``identify`` it answers 401."""

    @property
    def params_model(self) -> type[BaseModel] | None:
        """Model of the JSON body (POST) or of the query parameters (GET); ``None`` when it takes none."""
        return _resolve(self.params_model_ref)

    @property
    def response_model(self) -> type[BaseModel] | None:
        """Model of the success body; ``None`` when the success response has no body."""
        return _resolve(self.response_model_ref)

    @property
    def method_name(self) -> str:
        """The SDK method's name: ``name``, with ``_`` after a Python keyword (``import_``)."""
        return f"{self.name}_" if keyword.iskeyword(self.name) else self.name

    @property
    def qualified_name(self) -> str:
        """``"customers.get_or_create"`` or, on the root, ``"check"``."""
        return f"{self.group}.{self.name}" if self.group else self.name
