"""The 15 RPC routes the autumn-js 1.2.x React hooks call, and what each one is allowed to do.

Each route is one SDK operation from the generated table, so the upstream path, request schema and
response schema come from the spec, and the route's name and rules from the operation's declared
policy (``handler_route``, ``handler_fail_open``, ``handler_requires_customer``), instead of being
repeated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from autumn_sdk._generated import operations as ops
from autumn_sdk._operation import Operation

__all__ = [
    "CUSTOMER_PROTECTED_FIELDS",
    "DEFAULT_PROTECTED_FIELDS",
    "GET_OR_CREATE_CUSTOMER",
    "ROUTES",
    "HandlerRoute",
    "match_route",
]

DEFAULT_PROTECTED_FIELDS: frozenset[str] = frozenset(
    {"customerId", "customerData", "name", "email", "stripeId"}
)
"""Top-level browser keys that only ``identify`` may decide (autumn-js 1.2.28+)."""

CUSTOMER_PROTECTED_FIELDS: frozenset[str] = DEFAULT_PROTECTED_FIELDS | {"metadata"}
"""``getOrCreateCustomer`` also keeps the browser from writing the customer's metadata."""

GET_OR_CREATE_CUSTOMER = "getOrCreateCustomer"


@dataclass(frozen=True)
class HandlerRoute:
    """One POST route under the handler's path prefix."""

    name: str
    """The route name the hooks use in the URL (case-sensitive)."""
    operation: Operation
    requires_customer: bool = True
    """Without a customer id from ``identify`` the route answers 401."""
    protected_fields: frozenset[str] = DEFAULT_PROTECTED_FIELDS
    fail_open: bool = False
    """An Autumn outage answers 200 with an empty object instead of an error (hooks keep rendering)."""


def _route(op: Operation, name: str) -> HandlerRoute:
    protected = CUSTOMER_PROTECTED_FIELDS if name == GET_OR_CREATE_CUSTOMER else DEFAULT_PROTECTED_FIELDS
    return HandlerRoute(
        name,
        op,
        # getOrCreateCustomer has its own 401/204 rules, see the pipeline
        requires_customer=op.handler_requires_customer,
        protected_fields=protected,
        fail_open=op.handler_fail_open,
    )


ROUTES: Mapping[str, HandlerRoute] = {
    op.handler_route: _route(op, op.handler_route) for op in ops.OPERATIONS if op.handler_route is not None
}
"""Route name -> route, for every operation whose policy names a handler route (``codegen/policy.py``)."""


def match_route(subpath: str) -> HandlerRoute | None:
    """The route for the path after the prefix; trailing and doubled slashes are tolerated."""
    segments = [segment for segment in subpath.split("/") if segment]
    if len(segments) != 1:
        return None
    return ROUTES.get(segments[0])
