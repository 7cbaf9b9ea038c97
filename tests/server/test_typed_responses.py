"""The ratchet on typed answers: every service of the endpoint table (``api/endpoints.py``) returns
its operation's generated response ``TypedDict`` (``autumn_sdk._generated.json_types``), so that
``mypy --strict`` checks the dict it builds against the spec, except the services listed in
:data:`UNTYPED`, which still return ``dict[str, Any]``.

A service missing from the list must be typed (new code starts typed); a listed service that is
typed now, or no longer served, must leave the list (so it only shrinks).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typing_extensions

from autumn_sdk._generated import json_types
from autumn_sdk._generated.models import Feature, GetFeatureParams
from reference_server.api.endpoints import Endpoint, endpoints
from reference_server.service.context import Ctx

UNTYPED: dict[str, str] = {}
"""Operation -> why its service still answers ``dict[str, Any]`` (what its builders cascade into)."""


def _answer_type(service: Callable[..., Any]) -> Any:
    return inspect.signature(service, eval_str=True).return_annotation


def _expected_type(ep: Endpoint) -> Any:
    """The generated ``TypedDict`` of ``ep``'s response, or None for an operation without one."""
    if ep.response_model is None:
        return None
    return getattr(json_types, ep.response_model.__name__ + "Json")


def _is_typed(ep: Endpoint) -> bool:
    answer = _answer_type(ep.service)
    expected = _expected_type(ep)
    if expected is not None:
        return bool(answer is expected)
    return typing_extensions.is_typeddict(answer)  # beyond the spec: a TypedDict of its own


def test_new_services_answer_their_generated_typed_dict() -> None:
    untyped = [ep.name for ep in endpoints() if not _is_typed(ep) and ep.name not in UNTYPED]
    assert untyped == [], (
        "these services must return their operation's TypedDict from autumn_sdk._generated.json_types "
        "(e.g. -> FeatureJson for a Feature), not dict[str, Any]"
    )


def test_the_untyped_list_only_shrinks() -> None:
    served = {ep.name: ep for ep in endpoints()}
    typed_now = sorted(name for name in UNTYPED if name in served and _is_typed(served[name]))
    assert typed_now == [], "typed now: remove them from UNTYPED"
    gone = sorted(set(UNTYPED) - set(served))
    assert gone == [], "no longer served: remove them from UNTYPED"


def test_the_typed_api_groups_stay_typed() -> None:
    typed = {ep.name for ep in endpoints() if _is_typed(ep)}
    assert {"features.create", "features.get", "features.list", "features.update", "features.delete"} <= typed
    assert {"balances.create", "balances.update", "balances.delete", "balances.finalize"} <= typed
    assert {"check", "track", "track_tokens", "batch_track"} <= typed
    assert {"plans.create", "plans.get", "plans.list", "plans.update", "plans.delete"} <= typed
    assert {"entities.create", "entities.get", "entities.list", "entities.update", "entities.delete"} <= typed
    assert {"customers.get_or_create", "customers.get", "customers.list", "customers.update"} <= typed
    assert {
        "invoices.list",
        "invoices.insert",
        "invoices.finalize",
        "invoices.void",
        "invoices.pay",
        "invoices.create",
        "billing.import",
        "referrals.redeem_code",
        "customers.advance_test_clock",
    } <= typed
    assert {"webhooks.sync", "webhooks.preview_sync", "sandboxes.create", "sandboxes.reset"} <= typed
    assert {"billing.verify", "logs.search", "platform.get_stripe_connection"} <= typed
    assert {
        "billing.preview_attach",
        "billing.preview_multi_attach",
        "billing.preview_update",
        "billing.preview_multi_update",
    } <= typed
    assert {"billing.attach", "billing.update", "billing.multi_attach", "billing.multi_update"} <= typed
    assert {"billing.create_schedule", "billing.setup_payment", "billing.open_customer_portal"} <= typed
    assert {"events.list", "events.aggregate", "keys.mint", "licenses.list", "platform.list_users"} <= typed
    assert {
        "rewards.create",
        "rewards.redeem_code",
        "referrals.create_code",
        "referrals.list_programs",
    } <= typed


def test_an_untyped_or_wrongly_typed_answer_is_caught() -> None:
    def untyped(ctx: Ctx, params: GetFeatureParams) -> dict[str, Any]:
        return {}

    def other_type(ctx: Ctx, params: GetFeatureParams) -> json_types.SuccessResponseJson:
        return {"success": True}

    def typed(ctx: Ctx, params: GetFeatureParams) -> json_types.FeatureJson:
        return {"id": "f", "name": "F", "type": "boolean", "consumable": False, "archived": False}

    def ep(service: Callable[..., Any]) -> Endpoint:
        return Endpoint("features.get", "/v1/features.get", "POST", service, GetFeatureParams, Feature)

    assert not _is_typed(ep(untyped))
    assert not _is_typed(ep(other_type))
    assert _is_typed(ep(typed))
