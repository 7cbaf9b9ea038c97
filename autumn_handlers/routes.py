"""The 15 RPC routes the autumn-js 1.2.x React hooks call, and what each one is allowed to do.

Each route is one SDK operation from the generated table, so the upstream path, request schema and
response schema come from the spec instead of being repeated here.
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


ROUTES: Mapping[str, HandlerRoute] = {
    route.name: route
    for route in (
        HandlerRoute(
            GET_OR_CREATE_CUSTOMER,
            ops.CUSTOMERS_GET_OR_CREATE,
            requires_customer=False,  # its own 401/204 rules, see the pipeline
            protected_fields=CUSTOMER_PROTECTED_FIELDS,
            fail_open=True,
        ),
        HandlerRoute("getEntity", ops.ENTITIES_GET, fail_open=True),
        HandlerRoute("attach", ops.BILLING_ATTACH),
        HandlerRoute("previewAttach", ops.BILLING_PREVIEW_ATTACH),
        HandlerRoute("updateSubscription", ops.BILLING_UPDATE),
        HandlerRoute("previewUpdateSubscription", ops.BILLING_PREVIEW_UPDATE),
        HandlerRoute("multiAttach", ops.BILLING_MULTI_ATTACH),
        HandlerRoute("previewMultiAttach", ops.BILLING_PREVIEW_MULTI_ATTACH),
        HandlerRoute("setupPayment", ops.BILLING_SETUP_PAYMENT),
        HandlerRoute("openCustomerPortal", ops.BILLING_OPEN_CUSTOMER_PORTAL),
        HandlerRoute("createReferralCode", ops.REFERRALS_CREATE_CODE),
        HandlerRoute("redeemReferralCode", ops.REFERRALS_REDEEM_CODE),
        HandlerRoute("listPlans", ops.PLANS_LIST, requires_customer=False),
        HandlerRoute("listEvents", ops.EVENTS_LIST),
        HandlerRoute("aggregateEvents", ops.EVENTS_AGGREGATE),
    )
}


def match_route(subpath: str) -> HandlerRoute | None:
    """The route for the path after the prefix; trailing and doubled slashes are tolerated."""
    segments = [segment for segment in subpath.split("/") if segment]
    if len(segments) != 1:
        return None
    return ROUTES.get(segments[0])
