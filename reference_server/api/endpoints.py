"""The operations this server serves: each one's service, request model and answer, in one table.

:func:`endpoints` joins the generated ``OPERATIONS`` (the spec's operations and their per-operation
policy) with :func:`service_table`, and adds :data:`EXTRA_OPERATIONS` (beyond the spec).  The router
serves the endpoints over HTTP and the dashboard runs them for a signed-in admin; both validate a
request with :func:`validate_request`, so a service always receives its operation's params model.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from autumn_sdk._generated import operations as ops
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation
from reference_server.api import admin, request_guard
from reference_server.api.json_types import validate_json_body
from reference_server.api.request_guard import describe_validation_error
from reference_server.api.unsupported_fields import refuse_unsupported, watches_unsupported
from reference_server.billing import import_plans as billing_import
from reference_server.billing import invoice_actions, multi_update
from reference_server.billing.attach import attach, preview_attach
from reference_server.billing.customer_pages import open_customer_portal, setup_payment
from reference_server.billing.multi_attach import multi_attach, preview_multi_attach
from reference_server.billing.schedules import create_schedule
from reference_server.billing.update import preview_update, update_subscription
from reference_server.errors import ApiError
from reference_server.service import (
    balances,
    batch_track,
    catalog_ids,
    check,
    customers,
    entities,
    events,
    features,
    invoices,
    key_ops,
    license_ops,
    locks,
    plans,
    plans_read,
    platform,
    referrals,
    revenuecat,
    rewards,
    sandboxes,
    sdk_extras,
    sdk_logs,
    track,
    track_loop,
    track_tokens,
    webhook_endpoints,
)
from reference_server.service.context import Ctx, KeyedCall
from reference_server.service.extra_params import AdvanceClockParams, NoParams

Service = Callable[[Ctx, Any], Mapping[str, Any]]
"""A service takes the context and the validated request: the operation's params model instance
(a list of them for an array body, :class:`NoParams` when the operation reads nothing).  Each
service annotates its own model; :func:`endpoints` refuses to build a table where one disagrees.
It answers the operation's response as its generated ``TypedDict`` (``FeatureJson`` for a
``Feature``, from ``autumn_sdk._generated.json_types``), or, in the services not typed yet, a plain
``dict[str, Any]`` (``tests/server/test_typed_responses.py`` lists them and lets the list only shrink)."""
AsyncService = Callable[[Ctx, Any, KeyedCall | None], Awaitable[Mapping[str, Any] | None]]
"""An event-loop fast path of a service, given the request's ``Idempotency-Key`` when it has one;
None hands the request to the synchronous service."""

ASYNC_SERVICES: dict[Operation, AsyncService] = {
    ops.CHECK: check.check_async,
    ops.TRACK: track_loop.track_async,
}
"""The event-loop fast path of each ``hot_path`` operation (:func:`endpoints` checks they match)."""


def service_table() -> dict[str, Service]:
    """Qualified operation name -> the function that serves it."""
    return {
        "customers.get_or_create": customers.get_or_create,
        "customers.get": customers.get,
        "customers.list": customers.list_customers,
        "customers.update": customers.update_customer,
        "customers.delete": customers.delete_customer,
        "plans.create": plans.create_plan,
        "plans.get": plans_read.plans_get,
        "plans.list": plans_read.plans_list,
        "plans.update": plans.update_plan,
        "plans.delete": plans.delete_plan,
        "features.create": features.create_feature,
        "features.get": features.get_feature,
        "features.list": features.list_features,
        "features.update": features.update_feature,
        "features.delete": features.delete_feature,
        "billing.attach": attach,
        "billing.update": update_subscription,
        "billing.create_schedule": create_schedule,
        "billing.multi_attach": multi_attach,
        "billing.preview_attach": preview_attach,
        "billing.preview_multi_attach": preview_multi_attach,
        "billing.preview_update": preview_update,
        "billing.open_customer_portal": open_customer_portal,
        "billing.setup_payment": setup_payment,
        "balances.create": balances.create_balance,
        "balances.update": balances.update_balance,
        "balances.delete": balances.delete_balance,
        "balances.finalize": locks.finalize,
        "check": check.check,
        "track": track.track,
        "events.list": events.list_events,
        "events.aggregate": events.aggregate,
        "entities.create": entities.create_entity,
        "entities.get": entities.get_entity_op,
        "entities.list": entities.list_entities_op,
        "entities.update": entities.update_entity,
        "entities.delete": entities.delete_entity,
        "referrals.create_code": referrals.create_code,
        "referrals.redeem_code": referrals.redeem_code,
        "rewards.redeem_code": referrals.redeem_reward,
        "platform.create_organization": platform.create_organization,
        "platform.list_organizations": platform.list_organizations,
        "platform.list_users": platform.list_users,
        "platform.update_stripe_config": platform.update_stripe,
        "platform.generate_oauth_url": platform.generate_oauth_url,
        # Autumn's current API (2026-08-22)
        "batch_track": batch_track.batch_track,
        "track_tokens": track_tokens.track_tokens,
        "billing.multi_update": multi_update.multi_update,
        "billing.preview_multi_update": multi_update.preview_multi_update,
        "billing.import": billing_import.import_billing,
        "invoices.insert": invoices.insert_invoices,
        "invoices.list": invoices.list_invoices,
        "licenses.attach": license_ops.attach_license,
        "licenses.release": license_ops.release_license,
        "licenses.list": license_ops.list_licenses,
        "licenses.list_assignments": license_ops.list_license_assignments,
        "keys.mint": key_ops.mint_key,
        "keys.refresh": key_ops.refresh_key,
        "keys.revoke": key_ops.revoke_key,
        "platform.link_revenue_cat": revenuecat.link_revenue_cat,
        "platform.sync_revenue_cat": revenuecat.sync_revenue_cat,
        "platform.get_revenue_cat_keys": revenuecat.get_revenue_cat_keys,
        "rewards.create": rewards.create_reward,
        "rewards.get": rewards.get_reward,
        "rewards.list": rewards.list_rewards,
        "rewards.update": rewards.update_reward,
        "rewards.delete": rewards.delete_reward,
        "referrals.create_program": rewards.create_referral_program,
        "referrals.get_program": rewards.get_referral_program,
        "referrals.list_programs": rewards.list_referral_programs,
        "referrals.update_program": rewards.update_referral_program,
        "referrals.delete_program": rewards.delete_referral_program,
        # The official autumn-sdk 1.2.0's operations beyond Autumn's published spec
        # (spec/autumn-sdk-1.2.0-operations.yml)
        "customers.advance_test_clock": admin.advance_customer_clock,
        "customers.list_purchases": sdk_extras.list_purchases,
        "customers.list_subscriptions": sdk_extras.list_subscriptions,
        "balances.list": sdk_extras.list_balances,
        "billing.verify": sdk_extras.verify,
        "invoices.finalize": admin.finalize_invoice,
        "invoices.void": invoice_actions.void_invoice,
        "invoices.pay": invoice_actions.pay_invoice,
        "invoices.create": invoice_actions.create_invoice,
        "invoices.update": invoice_actions.update_invoice,
        "invoices.reissue": invoice_actions.reissue_invoice,
        "invoices.issue_credit_note": invoice_actions.issue_credit_note,
        "invoices.list_templates": invoice_actions.list_invoice_templates,
        "logs.search": sdk_logs.search_logs,
        "platform.get_stripe_connection": sdk_extras.get_stripe_connection,
        "platform.disconnect_stripe": sdk_extras.disconnect_stripe,
        "sandboxes.create": sandboxes.create_sandbox,
        "sandboxes.list": sandboxes.list_sandboxes,
        "sandboxes.delete": sandboxes.delete_sandbox,
        "sandboxes.reset": sandboxes.reset_sandbox,
        "webhooks.create": webhook_endpoints.create_webhook,
        "webhooks.get": webhook_endpoints.get_webhook,
        "webhooks.list": webhook_endpoints.list_webhooks,
        "webhooks.update": webhook_endpoints.update_webhook,
        "webhooks.delete": webhook_endpoints.delete_webhook,
        "webhooks.preview_sync": webhook_endpoints.preview_sync_webhooks,
        "webhooks.sync": webhook_endpoints.sync_webhooks,
    }


WIDER_PARAMS: dict[str, type[BaseModel]] = {
    # The official {customer_id, frozen_time}, and the steps of test_clocks.advance (advance_to,
    # advance_by_ms, days, hours) that this server's tests and dashboard move a clock with.
    "customers.advance_test_clock": AdvanceClockParams,
}
"""Spec operations whose request this server takes in a wider model than the spec's (a superset:
every request the spec allows is accepted the same way)."""

LOCK_CUSTOMER_OF: dict[str, Callable[[Ctx, Any], str]] = {
    "invoices.pay": invoice_actions.invoice_customer,
    "invoices.void": invoice_actions.invoice_customer,
}
"""The ``locks_customer`` operations whose customer is found from what the request names."""


EXTRA_OPERATIONS: dict[str, tuple[str, Service, type[BaseModel]]] = {
    "/v1/test_clocks.advance": ("test_clocks.advance", admin.advance_org_clock, AdvanceClockParams),
    "/v1/catalog.internal_ids": ("catalog.internal_ids", catalog_ids.internal_ids, NoParams),
    "/v1/organizations.current": ("organizations.current", catalog_ids.current_organization, NoParams),
}
"""Operations beyond the specs: path -> (name, service, request model from :mod:`extra_params`)."""

ITEMS_KEY = "items"
"""Where the router carries the items of an array body (``balances.batch_track``) to validation."""


@dataclass(frozen=True)
class Endpoint:
    """One operation as served: where, by which service, with which request and answer models."""

    name: str
    path: str
    method: str
    service: Service
    params_model: type[BaseModel]
    response_model: type[BaseModel] | None = None
    status: int = 200
    query_params: bool = False
    items: tuple[int, int | None] | None = None
    """For an array body: the fewest and most items the spec allows."""
    async_service: AsyncService | None = None
    long_read: bool = False
    """A read whose cost grows with the data: the dispatcher runs it off the request loop."""
    operation_id: str = ""
    summary: str = ""
    in_spec: bool = True
    lock_customer_of: Callable[[Ctx, Any], str] | None = None
    """For a ``locks_customer`` operation whose request names no ``customer_id``: the customer whose
    billing lock it takes (the dispatcher takes it before a keyed request's unit of work opens)."""


def endpoints() -> list[Endpoint]:
    """Every operation with its service: the spec's (in the generated table's order), then the extras.

    Raises RuntimeError when an operation has no service, the event-loop fast paths are not exactly
    the ``hot_path`` operations, or a service's request annotation is not its operation's model.
    """
    table = service_table()
    if set(ASYNC_SERVICES) != {op for op in OPERATIONS if op.hot_path}:
        raise RuntimeError("ASYNC_SERVICES must serve exactly the hot_path operations")
    out: list[Endpoint] = []
    for op in OPERATIONS:
        service = table.get(op.qualified_name)
        if service is None:
            raise RuntimeError(
                f"operation {op.qualified_name} ({op.path}) has no service; add it to service_table"
            )
        out.append(
            Endpoint(
                op.qualified_name,
                op.path,
                op.http_method,
                service,
                WIDER_PARAMS.get(op.qualified_name) or op.params_model or NoParams,
                op.response_model,
                status=op.success_statuses[0] if op.success_statuses else 200,
                query_params=op.http_method == "GET",
                items=(op.min_items, op.max_items) if op.body_style == "items" else None,
                async_service=ASYNC_SERVICES.get(op),
                long_read=op.long_read,
                operation_id=op.operation_id,
                summary=op.summary or "",
                lock_customer_of=LOCK_CUSTOMER_OF.get(op.qualified_name),
            )
        )
    for path, (name, service, params_model) in EXTRA_OPERATIONS.items():
        doc = (service.__doc__ or "").strip()
        out.append(
            Endpoint(
                name,
                path,
                "POST",
                service,
                params_model,
                operation_id=name,
                summary=doc.splitlines()[0] if doc else "",
                in_spec=False,
            )
        )
    for ep in out:
        _check_request_type(ep, ep.service)
        if ep.async_service is not None:
            _check_request_type(ep, ep.async_service)
    return out


def takes_request(ep: Endpoint, service: Callable[..., Any]) -> bool:
    """Whether ``service``'s request parameter is annotated with what ``ep`` hands it: the params model,
    or ``list[model]`` for an array body.  It takes (ctx, request) and nothing else it requires (an
    event-loop fast path also takes the request's :class:`KeyedCall`, defaulting to None)."""
    parameters = list(inspect.signature(service, eval_str=True).parameters.values())
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    if len(parameters) < 2 or len(required) != 2:
        return False
    annotation = parameters[1].annotation
    if ep.items is not None:
        return get_origin(annotation) is list and get_args(annotation) == (ep.params_model,)
    return annotation is ep.params_model


def _check_request_type(ep: Endpoint, service: Callable[..., Any]) -> None:
    if not takes_request(ep, service):
        shape = f"list[{ep.params_model.__name__}]" if ep.items is not None else ep.params_model.__name__
        raise RuntimeError(f"{ep.name}: {service.__qualname__} must take (ctx, request: {shape})")


def validate_request(ep: Endpoint, raw: dict[str, Any]) -> Any:
    """The request ``ep``'s service takes, validated from the raw JSON body (or query) ``raw``.

    400 ``invalid_inputs`` for what the model refuses (a body's wrong JSON type too: bodies are
    validated strictly, as Autumn's Zod schemas do, :mod:`json_types`), an explicit null where none
    is allowed, or a value past :mod:`request_guard`'s limits; 400 ``unsupported_field`` for a field
    this server does not act on yet (:mod:`unsupported_fields`).
    """
    if ep.items is not None:
        return _validate_items(ep.params_model, ep.items, raw.get(ITEMS_KEY))
    try:
        if ep.query_params:  # query values are strings on the wire: the model parses them
            request = ep.params_model.model_validate(raw)
        else:
            request = validate_json_body(ep.params_model, raw)
    except ValidationError as exc:
        raise ApiError(400, "invalid_inputs", describe_validation_error(exc)) from exc
    request_guard.check_nulls(request)
    if ep.query_params:  # query values were strings until the model parsed them
        request_guard.check_values(request.model_dump(mode="json", exclude_unset=True))
    if watches_unsupported(ep.name):
        refuse_unsupported(ep.name, request.model_dump(mode="json", exclude_unset=True))
    return request


def _validate_items(model: type[BaseModel], bounds: tuple[int, int | None], items: Any) -> list[BaseModel]:
    """Each item validated as a body of its own; errors name the item's index."""
    fewest, most = bounds
    count = len(items) if isinstance(items, list) else 0
    if count < fewest or (most is not None and count > most):
        limit = f"between {fewest} and {most}" if most is not None else f"at least {fewest}"
        raise ApiError(400, "invalid_inputs", f"The request must hold {limit} items; it holds {count}")
    out: list[BaseModel] = []
    for index, item in enumerate(items):
        try:
            parsed = validate_json_body(model, item) if isinstance(item, dict) else model.model_validate(item)
        except ValidationError as exc:
            raise ApiError(400, "invalid_inputs", f"Item {index}: {describe_validation_error(exc)}") from exc
        request_guard.check_nulls(parsed)
        out.append(parsed)
    return out
