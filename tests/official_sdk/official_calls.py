"""Every operation of the official ``autumn-sdk`` 1.2.0 that this server serves, called through it.

Run by the virtualenv's interpreter that holds the official SDK (never ours: both install the
import package ``autumn_sdk``)::

    <venv>/bin/python -I official_calls.py <server url> <secret key>
    <venv>/bin/python -I official_calls.py --inventory   # the official operations and their paths

It prints one JSON object per call (``name``, ``ok``, ``model``, ``error``) on its own line. Each call
goes through the official client, so its response is parsed by the official SDK's own models; the
script also checks the response is an instance of the model the method declares and that it carries
the values the call must produce. Calls run in :data:`CALLS` order against one server: the early ones
build the world (features, plans, customers) the later ones act on. A failing call is reported and
the next one still runs.

Only the standard library is imported at module level, so pytest imports this module to read the
call names (:func:`call_names`) without the official SDK.

The official 1.2.0 wheel has an import bug: ``autumn_sdk.models.createfeatureop`` and
``updatefeatureop`` use type aliases before the classes they name are defined, so ``autumn.features``
raises ``NameError`` on first use. :func:`bind_around_feature_models` loads those two modules with
their top-level statements run in dependency order (each statement that names a class defined
further down runs once that class exists); their text and every model stay the official ones.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import re
import sys
import time
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SERVER_OPERATIONS_BEYOND_SPEC = (
    "customers.advance_test_clock",
    "invoices.finalize",
    "invoices.create",
    "invoices.issue_credit_note",
    "invoices.list_templates",
    "invoices.pay",
    "invoices.reissue",
    "invoices.update",
    "invoices.void",
    "balances.list",
    "billing.verify",
    "customers.list_purchases",
    "customers.list_subscriptions",
    "logs.search",
    "platform.disconnect_stripe",
    "platform.get_stripe_connection",
    "sandboxes.create",
    "sandboxes.delete",
    "sandboxes.list",
    "sandboxes.reset",
    "webhooks.create",
    "webhooks.delete",
    "webhooks.get",
    "webhooks.list",
    "webhooks.preview_sync",
    "webhooks.sync",
    "webhooks.update",
)
"""Official operations missing from spec/autumn-2026-08-22.yml that the reference server serves."""

NOT_SERVED: tuple[str, ...] = ()
"""Official operations of Autumn's cloud that neither the current spec nor this server has."""

BROKEN_MODEL_MODULES = ("autumn_sdk.models.createfeatureop", "autumn_sdk.models.updatefeatureop")

Client = Any
"""The official ``autumn_sdk.Autumn`` (untyped here: mypy must not read it as our own package)."""
State = dict[str, Any]
"""Values earlier calls hand to later ones (an invoice id, a refresh token...)."""


@dataclass(frozen=True)
class Call:
    name: str
    """The official method, ``group.method`` (``check`` for a method of the client itself)."""
    run: Callable[[Client, State], Any]
    observe: Callable[[Any], object]
    """What of the response is compared with :attr:`expected`."""
    expected: object
    refused: tuple[int, str] | None = None
    """For a call the reference server refuses by design: the status and a part of the message the
    official SDK's ``AutumnDefaultError`` must carry (the call passes when it does)."""


def bind_around_feature_models() -> None:
    """Import the official feature models despite their forward references (see the docstring)."""
    for name in BROKEN_MODEL_MODULES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or spec.loader is None:
            raise ImportError(f"the official SDK has no {name}")
        with open(spec.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), spec.origin)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        _run_in_dependency_order(tree.body, module, spec.origin)


def _run_in_dependency_order(statements: list[ast.stmt], module: ModuleType, filename: str) -> None:
    pending = statements
    while pending:
        deferred: list[ast.stmt] = []
        last_error: NameError | None = None
        for statement in pending:
            code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
            try:
                exec(code, module.__dict__)
            except NameError as exc:  # names a class defined further down: run it after that class
                deferred.append(statement)
                last_error = exc
        if len(deferred) == len(pending):
            raise ImportError(f"{filename}: unresolvable names") from last_error
        pending = deferred


def _ids(items: Any) -> set[str]:
    return {item.id for item in items}


def call_names() -> list[str]:
    return [call.name for call in CALLS]


# The world the calls act on, created over plain HTTP so that one call's failure does not take the
# others' preconditions with it (each group's create call under test makes one more of its kind).
AI_MODEL = "anthropic/claude-sonnet-4-20250514"
SEAT_PRICE = {"amount": 5, "interval": "month", "billing_method": "prepaid", "billing_units": 1}
SEED: list[tuple[str, dict[str, Any]]] = [
    (
        "features.create",
        {"feature_id": "messages", "name": "Messages", "type": "metered", "consumable": True},
    ),
    (
        "features.create",
        {"feature_id": "api_calls", "name": "API calls", "type": "metered", "consumable": True},
    ),
    ("features.create", {"feature_id": "seats", "name": "Seats", "type": "metered", "consumable": False}),
    ("features.create", {"feature_id": "old-feature", "name": "Old feature", "type": "boolean"}),
    (
        "features.create",
        {
            "feature_id": "ai_credits",
            "name": "AI credits",
            "type": "ai_credit_system",
            "default_markup": 0,
            "model_markups": {AI_MODEL: {"input_cost": 3, "output_cost": 15}},
        },
    ),
    (
        "plans.create",
        {
            "plan_id": "pro_plan",
            "name": "Pro",
            "price": {"amount": 10, "interval": "month"},
            "items": [
                {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}},
                {"feature_id": "seats", "included": 5, "price": SEAT_PRICE},
            ],
        },
    ),
    ("plans.create", {"plan_id": "trial_plan", "name": "Trial"}),
    (
        "plans.create",
        {
            "plan_id": "addon_seats",
            "name": "Extra seats",
            "add_on": True,
            "items": [{"feature_id": "seats", "included": 0, "price": SEAT_PRICE}],
        },
    ),
    ("plans.create", {"plan_id": "unused_plan", "name": "Unused"}),
    (
        "plans.create",
        {
            "plan_id": "seat_plan",
            "name": "Seat",
            "add_on": True,
            "items": [{"feature_id": "messages", "included": 50}],
        },
    ),
    (
        "plans.create",
        {
            "plan_id": "team_plan",
            "name": "Team",
            "items": [{"feature_id": "ai_credits", "included": 100}, {"feature_id": "seats", "included": 5}],
            "licenses": [{"license_plan_id": "seat_plan", "included": 5}],
        },
    ),
    ("customers.get_or_create", {"customer_id": "cus_456", "name": "Referred Friend"}),
    ("customers.get_or_create", {"customer_id": "cus_team"}),
    ("customers.get_or_create", {"customer_id": "cus_ai"}),
    ("customers.get_or_create", {"customer_id": "cus_draft"}),
    ("billing.attach", {"customer_id": "cus_team", "plan_id": "team_plan"}),
    ("billing.attach", {"customer_id": "cus_ai", "plan_id": "team_plan"}),
    # A one-off purchase (invoice mode, enabled at once) for customers.list_purchases.
    (
        "plans.create",
        {"plan_id": "setup_fee", "name": "Setup fee", "price": {"amount": 50, "interval": "one_off"}},
    ),
    (
        "billing.attach",
        {
            "customer_id": "cus_ai",
            "plan_id": "setup_fee",
            "invoice_mode": {"enabled": True, "enable_plan_immediately": True},
        },
    ),
    # The entity licenses.attach assigns a seat_plan license to.
    (
        "entities.create",
        {"customer_id": "cus_team", "feature_id": "seats", "entity_id": "user_123", "name": "Ada"},
    ),
    # The tenant organization the RevenueCat calls name (platform API: not in the official SDK).
    (
        "platform/organizations",
        {"name": "Acme", "slug": "acme", "user_email": "owner@acme.test", "env": "test"},
    ),
]
"""``(operation path, JSON body)`` posted before the first call."""


def seed(server_url: str, secret_key: str) -> list[str]:
    """Create :data:`SEED`; returns the failures (reported, not fatal: the calls then show them)."""
    import httpx

    failures = []
    headers = {"Authorization": f"Bearer {secret_key}"}
    with httpx.Client(base_url=server_url, headers=headers, timeout=30) as http:
        for path, body in SEED:
            response = http.post(f"/v1/{path}", json=body)
            if response.status_code >= 400:
                failures.append(f"{path} {body}: {response.status_code} {response.text[:300]}")
    return failures


def _create_sandbox(a: Client, s: State) -> Any:
    created = a.sandboxes.create(name="staging", color="blue")
    s["sandbox_id"], s["sandbox_key"] = created.id, created.secret_key
    return created


def _reset_sandbox(a: Client, s: State) -> Any:
    """Resets the sandbox made by sandboxes.create, through its own key (never the calls' catalogue)."""
    official = importlib.import_module("autumn_sdk")
    with official.Autumn(secret_key=s["sandbox_key"], server_url=s["server_url"]) as sandbox:
        return sandbox.sandboxes.reset(request={})


def _attach_draft_invoice(a: Client, s: State) -> Any:
    """An invoice-mode draft of cus_draft's Pro plan, for invoices.finalize (beyond the spec)."""
    res = a.billing.attach(
        customer_id="cus_draft", plan_id="pro_plan", invoice_mode={"enabled": True, "finalize": False}
    )
    s["draft_invoice"] = res.invoice.stripe_id
    return a.invoices.finalize(invoice_id=s["draft_invoice"])


def _void_open_invoice(a: Client, s: State) -> Any:
    """An open invoice-mode invoice of a new customer's Pro plan, voided."""
    a.customers.get_or_create(customer_id="cus_void")
    res = a.billing.attach(
        customer_id="cus_void", plan_id="pro_plan", invoice_mode={"enabled": True, "finalize": True}
    )
    return a.invoices.void(invoice_id=res.invoice.stripe_id)


def _hold_lock_and_finalize(a: Client, s: State) -> Any:
    a.check(
        customer_id="cus_123",
        feature_id="messages",
        required_balance=3,
        lock={"enabled": True, "lock_id": "lock_abc123"},
    )
    return a.balances.finalize(lock_id="lock_abc123", action="confirm")


def _link_revenue_cat(a: Client, s: State) -> Any:
    return a.platform.link_revenue_cat(
        organization_slug="acme",
        env="test",
        project_name="acme-mobile",
        redirect_url="https://dashboard.useautumn.com/dev?tab=revenuecat",
    )


def _mint(a: Client, s: State) -> Any:
    res = a.keys.mint(customer_id="cus_123")
    s["refresh_token"] = res.refresh_token
    return res


def _refresh(a: Client, s: State) -> Any:
    """keys.refresh authenticates with the refresh token itself, not the secret key."""
    official = importlib.import_module("autumn_sdk")
    with official.Autumn(secret_key=s["refresh_token"], server_url=s["server_url"]) as holder:
        return holder.keys.refresh(request={})


def _create_reward(a: Client, s: State) -> Any:
    return a.rewards.create(
        coupon={
            "id": "summer_sale",
            "name": "Summer Sale",
            "duration": {"type": "months", "length": 3},
            "plan_ids": None,
            "promo_codes": [{"code": "SUMMER20", "max_uses": None}],
            "type": "percentage_discount",
            "value": 20,
        }
    )


def _create_program(a: Client, s: State) -> Any:
    # The reward the program gives, and the one redeemed by code, exist first.
    a.rewards.create(
        feature_grant={
            "id": "referral_messages",
            "name": "Referral messages",
            "grants": [{"feature_id": "messages", "included": 50, "expiry": None}],
            "promo_codes": [{"code": "REFERRAL50", "max_uses": None}],
        }
    )
    a.rewards.create(
        feature_grant={
            "id": "reward_10",
            "name": "10 free API calls",
            "grants": [{"feature_id": "api_calls", "included": 10, "expiry": None}],
            "promo_codes": [{"code": "REWARD10", "max_uses": None}],
        }
    )
    return a.referrals.create_program(
        id="prog_123", reward_id="referral_messages", redeem_on="customer_creation", received_by="all"
    )


def _create_code(a: Client, s: State) -> Any:
    res = a.referrals.create_code(customer_id="cus_123", program_id="prog_123")
    s["referral_code"] = res.code
    return res


CALLS: list[Call] = [
    Call(
        "features.create",
        lambda a, s: a.features.create(
            name="API Calls", type_="metered", feature_id="api-calls", consumable=True
        ),
        lambda r: (r.id, r.type, r.consumable),
        ("api-calls", "metered", True),
    ),
    Call("features.get", lambda a, s: a.features.get(feature_id="api-calls"), lambda r: r.name, "API Calls"),
    Call(
        "features.list",
        lambda a, s: a.features.list(),
        lambda r: _ids(r.list),
        {"messages", "api_calls", "seats", "old-feature", "ai_credits", "api-calls"},
    ),
    Call(
        "features.update",
        lambda a, s: a.features.update(
            feature_id="api-calls",
            name="API Requests",
            display={"singular": "API request", "plural": "API requests"},
        ),
        lambda r: (r.name, r.display.plural),
        ("API Requests", "API requests"),
    ),
    Call(
        "plans.create",
        lambda a, s: a.plans.create(
            plan_id="free_plan",
            name="Free",
            auto_enable=True,
            items=[{"feature_id": "messages", "included": 100, "reset": {"interval": "month"}}],
        ),
        lambda r: (r.id, r.auto_enable),
        ("free_plan", True),
    ),
    Call(
        "plans.get",
        lambda a, s: a.plans.get(plan_id="pro_plan"),
        lambda r: (r.id, r.price.amount),
        ("pro_plan", 10),
    ),
    Call(
        "plans.list",
        lambda a, s: a.plans.list(request={}),
        lambda r: _ids(r.list) >= {"pro_plan", "team_plan", "seat_plan", "trial_plan"},
        True,
    ),
    Call(
        "plans.update",
        lambda a, s: a.plans.update(plan_id="trial_plan", name="Trial (updated)"),
        lambda r: r.name,
        "Trial (updated)",
    ),
    Call(
        "customers.get_or_create",
        lambda a, s: a.customers.get_or_create(
            customer_id="cus_123", name="John Doe", email="john@example.com"
        ),
        lambda r: (r.id, r.name),
        ("cus_123", "John Doe"),
    ),
    Call(
        "customers.get",
        lambda a, s: a.customers.get(customer_id="cus_123"),
        lambda r: (r.id, r.email),
        ("cus_123", "john@example.com"),
    ),
    Call(
        "customers.list",
        lambda a, s: a.customers.list(limit=10),
        lambda r: _ids(r.list) >= {"cus_123", "cus_456"},
        True,
    ),
    Call(
        "customers.update",
        lambda a, s: a.customers.update(customer_id="cus_123", name="Jane Doe"),
        lambda r: r.name,
        "Jane Doe",
    ),
    Call(
        "billing.preview_attach",
        lambda a, s: a.billing.preview_attach(customer_id="cus_123", plan_id="pro_plan"),
        lambda r: (r.customer_id, r.total),
        ("cus_123", 10),
    ),
    Call(
        "billing.preview_multi_attach",
        lambda a, s: a.billing.preview_multi_attach(
            customer_id="cus_123",
            plans=[
                {"plan_id": "pro_plan"},
                {"plan_id": "addon_seats", "feature_quantities": [{"feature_id": "seats", "quantity": 5}]},
            ],
        ),
        lambda r: r.total,
        10 + 5 * 5,
    ),
    Call(
        "billing.attach",
        lambda a, s: a.billing.attach(customer_id="cus_123", plan_id="pro_plan", redirect_mode="if_required"),
        lambda r: (r.customer_id, bool(r.payment_url)),
        ("cus_123", True),
    ),
    Call(
        "billing.multi_attach",
        lambda a, s: a.billing.multi_attach(
            customer_id="cus_123",
            plans=[
                {"plan_id": "pro_plan"},
                {"plan_id": "addon_seats", "feature_quantities": [{"feature_id": "seats", "quantity": 5}]},
            ],
        ),
        lambda r: r.customer_id,
        "cus_123",
    ),
    Call(
        "billing.create_schedule",
        lambda a, s: a.billing.create_schedule(
            customer_id="cus_123",
            phases=[
                {"starts_at": 1735689600000, "plans": [{"plan_id": "trial_plan"}]},
                {"starts_at": 1736899200000, "plans": [{"plan_id": "pro_plan"}]},
            ],
        ),
        lambda r: [p.starts_at for p in r.phases],
        [1735689600000, 1736899200000],
    ),
    Call(
        "billing.update",
        lambda a, s: a.billing.update(
            customer_id="cus_123",
            plan_id="pro_plan",
            feature_quantities=[{"feature_id": "seats", "quantity": 10}],
        ),
        lambda r: r.customer_id,
        "cus_123",
    ),
    Call(
        "billing.preview_update",
        lambda a, s: a.billing.preview_update(
            customer_id="cus_123",
            plan_id="pro_plan",
            feature_quantities=[{"feature_id": "seats", "quantity": 15}],
        ),
        lambda r: r.customer_id,
        "cus_123",
    ),
    Call(
        "billing.preview_multi_update",
        lambda a, s: a.billing.preview_multi_update(
            customer_id="cus_123",
            updates=[{"plan_id": "pro_plan", "cancel_action": "cancel_immediately"}],
        ),
        lambda r: r.customer_id,
        "cus_123",
    ),
    Call(
        "billing.multi_update",
        lambda a, s: a.billing.multi_update(
            customer_id="cus_123",
            updates=[{"plan_id": "pro_plan", "cancel_action": "cancel_end_of_cycle"}],
        ),
        lambda r: r.customer_id,
        "cus_123",
    ),
    Call(
        "billing.open_customer_portal",
        lambda a, s: a.billing.open_customer_portal(customer_id="cus_123", return_url="https://example.com"),
        lambda r: (r.customer_id, "/portal/" in r.url),
        ("cus_123", True),
    ),
    Call(
        "billing.setup_payment",
        lambda a, s: a.billing.setup_payment(
            customer_id="cus_123", success_url="https://example.com/billing"
        ),
        lambda r: (r.customer_id, "/setup/" in r.url),
        ("cus_123", True),
    ),
    Call(
        "billing.import_",
        lambda a, s: a.billing.import_(
            customer_id="cus_import",
            billables=[
                {
                    "processor": "stripe",
                    "link": {"subscription_id": "sub_123"},
                    "plan": {
                        "plan_id": "pro_plan",
                        "status": "active",
                        "balances": [{"feature_id": "messages", "usage": 10}],
                    },
                }
            ],
            processors=[{"type": "stripe", "id": "cus_stripe_123"}],
        ),
        lambda r: r.customer_id,
        "cus_import",
    ),
    Call(
        "balances.create",
        lambda a, s: a.balances.create(
            customer_id="cus_123", feature_id="api_calls", included_grant=1000, reset={"interval": "month"}
        ),
        lambda r: r.success,
        True,
    ),
    Call(
        "balances.update",
        lambda a, s: a.balances.update(customer_id="cus_123", feature_id="api_calls", remaining=5),
        lambda r: r.success,
        True,
    ),
    Call("balances.finalize", _hold_lock_and_finalize, lambda r: r.success, True),
    Call(
        "check",
        lambda a, s: a.check(customer_id="cus_123", feature_id="messages"),
        lambda r: (r.allowed, r.balance.remaining),
        (True, 997),
    ),
    Call(
        "track",
        lambda a, s: a.track(customer_id="cus_123", feature_id="messages", value=1),
        lambda r: (r.value, r.balance.remaining),
        (1, 996),
    ),
    Call(
        "track_tokens",
        lambda a, s: a.track_tokens(
            customer_id="cus_ai",
            model_id=AI_MODEL,
            input_tokens=1000,
            output_tokens=500,
            feature_id="ai_credits",
        ),
        lambda r: r.customer_id,
        "cus_ai",
    ),
    Call(
        "batch_track",
        lambda a, s: a.batch_track(
            request=[
                {"customer_id": "cus_123", "feature_id": "messages", "value": 1},
                {"customer_id": "cus_123", "feature_id": "api_calls", "value": 1},
            ]
        ),
        lambda r: True,
        True,
    ),
    Call(
        "events.list",
        lambda a, s: a.events.list(customer_id="cus_123", limit=50),
        lambda r: len(r.list) >= 2,
        True,
    ),
    Call(
        "events.aggregate",
        lambda a, s: a.events.aggregate(
            customer_id="cus_123", feature_id="messages", range="30d", bin_size="day"
        ),
        lambda r: len(r.list) >= 30,
        True,
    ),
    Call(
        "balances.delete",
        lambda a, s: a.balances.delete(customer_id="cus_123", feature_id="api_calls"),
        lambda r: r.success,
        True,
    ),
    Call(
        "invoices.insert",
        lambda a, s: a.invoices.insert(
            invoices=[
                {
                    "customer_id": "cus_123",
                    "plan_ids": ["pro_plan"],
                    "stripe_id": "in_legacy_123",
                    "status": "paid",
                    "total": 29.99,
                    "amount_paid": 29.99,
                    "currency": "usd",
                    "created_at": 1451606400000,
                    "hosted_invoice_url": "https://billing.example.com/invoices/legacy-123",
                }
            ]
        ),
        lambda r: True,
        True,
    ),
    Call(
        "invoices.list",
        lambda a, s: a.invoices.list(customer_id="cus_123", limit=10, status=["paid"]),
        lambda r: "in_legacy_123" in {i.stripe_id for i in r.list},
        True,
    ),
    Call("invoices.finalize", _attach_draft_invoice, lambda r: r.invoice.customer_id, "cus_draft"),
    Call(
        "invoices.pay",
        lambda a, s: a.invoices.pay(invoice_id=s["draft_invoice"]),
        lambda r: (r.invoice.status, r.invoice.customer_id),
        ("paid", "cus_draft"),
    ),
    Call(
        "invoices.void",
        _void_open_invoice,
        lambda r: (r.invoice.status, r.invoice.customer_id),
        ("void", "cus_void"),
    ),
    # Refused by design: this server has no standalone invoices, templates, credit notes or payment
    # method types (each a 400 saying why).
    Call(
        "invoices.create",
        lambda a, s: a.invoices.create(customer_id="cus_123"),
        lambda r: True,
        True,
        refused=(400, "invoices.create is part of Autumn's API but the reference server does not support"),
    ),
    Call(
        "invoices.update",
        lambda a, s: a.invoices.update(invoice_id=s["draft_invoice"], payment_method_types=["card"]),
        lambda r: True,
        True,
        refused=(400, "no payment method types to choose"),
    ),
    Call(
        "invoices.reissue",
        lambda a, s: a.invoices.reissue(invoice_id=s["draft_invoice"]),
        lambda r: True,
        True,
        refused=(400, "no invoice templates or due dates"),
    ),
    Call(
        "invoices.issue_credit_note",
        lambda a, s: a.invoices.issue_credit_note(invoice_id=s["draft_invoice"], amount=5),
        lambda r: True,
        True,
        refused=(400, "it issues no credit notes"),
    ),
    Call(
        "invoices.list_templates",
        lambda a, s: a.invoices.list_templates(),
        lambda r: True,
        True,
        refused=(400, "it has no invoice templates"),
    ),
    Call(
        "licenses.attach",
        lambda a, s: a.licenses.attach(
            customer_id="cus_team",
            plan_id="seat_plan",
            entities=[{"entity_id": "user_123", "name": "Ada Lovelace"}],
        ),
        lambda r: True,
        True,
    ),
    Call(
        "licenses.release",
        lambda a, s: a.licenses.release(
            customer_id="cus_team", entity_ids=["user_123"], license_plan_id="seat_plan"
        ),
        lambda r: True,
        True,
    ),
    Call(
        "entities.create",
        lambda a, s: a.entities.create(
            feature_id="seats", customer_id="cus_123", entity_id="seat_42", name="Seat 42"
        ),
        lambda r: (r.id, r.customer_id),
        ("seat_42", "cus_123"),
    ),
    Call("entities.get", lambda a, s: a.entities.get(entity_id="seat_42"), lambda r: r.name, "Seat 42"),
    Call("entities.list", lambda a, s: a.entities.list(limit=10), lambda r: "seat_42" in _ids(r.list), True),
    Call(
        "entities.update",
        lambda a, s: a.entities.update(
            entity_id="seat_42",
            customer_id="cus_123",
            billing_controls={
                "spend_limits": [
                    {
                        "feature_id": "messages",
                        "enabled": True,
                        "limit_type": "usage_percentage",
                        "overage_limit": 120,
                    }
                ]
            },
        ),
        lambda r: [(limit.feature_id, limit.overage_limit) for limit in r.billing_controls.spend_limits],
        [("messages", 120)],
    ),
    Call(
        "entities.delete",
        lambda a, s: a.entities.delete(entity_id="seat_42", customer_id="cus_123"),
        lambda r: r.success,
        True,
    ),
    Call("rewards.create", _create_reward, lambda r: r.coupon.id, "summer_sale"),
    Call(
        "rewards.list",
        lambda a, s: a.rewards.list(request={}),
        lambda r: [c.id for c in r.coupons],
        ["summer_sale"],
    ),
    Call(
        "rewards.get",
        lambda a, s: a.rewards.get(reward_id="summer_sale"),
        lambda r: r.coupon.id,
        "summer_sale",
    ),
    Call(
        "rewards.update",
        lambda a, s: a.rewards.update(reward_id="summer_sale", coupon={"name": "Summer Sale 2"}),
        lambda r: r.coupon.name,
        "Summer Sale 2",
    ),
    Call("referrals.create_program", _create_program, lambda r: r.id, "prog_123"),
    Call("referrals.list_programs", lambda a, s: a.referrals.list_programs(request={}), lambda r: True, True),
    Call(
        "referrals.get_program",
        lambda a, s: a.referrals.get_program(referral_program_id="prog_123"),
        lambda r: r.id,
        "prog_123",
    ),
    Call(
        "referrals.update_program",
        lambda a, s: a.referrals.update_program(referral_program_id="prog_123", max_redemptions=10),
        lambda r: r.id,
        "prog_123",
    ),
    Call("referrals.create_code", _create_code, lambda r: r.customer_id, "cus_123"),
    Call(
        "referrals.redeem_code",
        lambda a, s: a.referrals.redeem_code(code=s["referral_code"], customer_id="cus_456"),
        lambda r: r.customer_id,
        "cus_456",
    ),
    Call(
        "rewards.redeem_code",
        lambda a, s: a.rewards.redeem_code(code="REWARD10", customer_id="cus_456"),
        lambda r: r.reward_id,
        "reward_10",
    ),
    Call(
        "referrals.delete_program",
        lambda a, s: a.referrals.delete_program(referral_program_id="prog_123"),
        lambda r: True,
        True,
    ),
    Call("rewards.delete", lambda a, s: a.rewards.delete(reward_id="summer_sale"), lambda r: True, True),
    # Linking goes through RevenueCat's OAuth, which the reference server cannot reach: it says so
    # with a 501; acme is then never linked, and syncing refuses as Autumn does (400).
    Call(
        "platform.link_revenue_cat",
        _link_revenue_cat,
        lambda r: True,
        True,
        refused=(501, "no RevenueCat OAuth URL can be issued here"),
    ),
    Call(
        "platform.sync_revenue_cat",
        lambda a, s: a.platform.sync_revenue_cat(
            organization_slug="acme", env="test", product_ids=["pro_plan"]
        ),
        lambda r: True,
        True,
        refused=(400, "Connect RevenueCat via OAuth"),
    ),
    Call(
        "platform.get_revenue_cat_keys",
        lambda a, s: a.platform.get_revenue_cat_keys(organization_slug="acme", env="test"),
        lambda r: True,
        True,
    ),
    # acme has no Stripe OAuth connection (this server has no Stripe OAuth): nothing to revoke.
    Call(
        "platform.get_stripe_connection",
        lambda a, s: a.platform.get_stripe_connection(organization_slug="acme", env="test"),
        lambda r: (r.connected, r.account_id, r.connected_at),
        (False, None, None),
    ),
    Call(
        "platform.disconnect_stripe",
        lambda a, s: a.platform.disconnect_stripe(organization_slug="acme", env="test"),
        lambda r: r.success,
        True,
    ),
    Call(
        "balances.list",
        lambda a, s: a.balances.list(customer_id="cus_team", limit=50),
        lambda r: ({b.feature_id for b in r.list} >= {"ai_credits", "seats"}, r.has_more),
        (True, False),
    ),
    Call(
        "customers.list_subscriptions",
        lambda a, s: a.customers.list_subscriptions(customer_id="cus_team"),
        lambda r: [(x.plan_id, x.status, x.customer_id) for x in r.list],
        [("team_plan", "active", "cus_team")],
    ),
    Call(
        "customers.list_purchases",
        lambda a, s: a.customers.list_purchases(plan_id="setup_fee"),
        lambda r: [(x.plan_id, x.status, x.customer_id) for x in r.list],
        [("setup_fee", "active", "cus_ai")],
    ),
    # cus_team has no Stripe customer: nothing in Stripe disagrees with its plans.
    Call(
        "billing.verify",
        lambda a, s: a.billing.verify(customer_id="cus_team"),
        lambda r: (r.customer_id, r.customer_mismatches, r.subscriptions),
        ("cus_team", [], []),
    ),
    Call(
        "logs.search",
        lambda a, s: a.logs.search(query="where request_path == '/v1/balances.list'", limit=10),
        lambda r: [(x.source, x.status_code, x.request.path) for x in r.list],
        [("api_request", 200, "/v1/balances.list")],
    ),
    Call("keys.mint", _mint, lambda r: bool(r.refresh_token), True),
    Call("keys.refresh", _refresh, lambda r: True, True),
    Call("keys.revoke", lambda a, s: a.keys.revoke(customer_id="cus_123"), lambda r: True, True),
    Call(
        "customers.advance_test_clock",
        lambda a, s: a.customers.advance_test_clock(
            customer_id="cus_123", frozen_time=int(time.time() * 1000) + 86_400_000
        ),
        lambda r: True,
        True,
    ),
    Call(
        "webhooks.create",
        lambda a, s: a.webhooks.create(
            id="orders", url="https://example.com/hooks", events=["billing.updated"], description="Orders"
        ),
        lambda r: (r.id, r.secret.startswith("whsec_")),
        ("orders", True),
    ),
    Call("webhooks.get", lambda a, s: a.webhooks.get(id="orders"), lambda r: r.events, ["billing.updated"]),
    Call(
        "webhooks.list",
        lambda a, s: a.webhooks.list(request={}),
        lambda r: [w.id for w in r.list],
        ["orders"],
    ),
    Call(
        "webhooks.update",
        lambda a, s: a.webhooks.update(id="orders", disabled=True),
        lambda r: r.disabled,
        True,
    ),
    Call(
        "webhooks.preview_sync",
        lambda a, s: a.webhooks.preview_sync(
            webhooks=[{"id": "alerts", "url": "https://example.com/alerts"}], skip_deletions=False
        ),
        lambda r: [(c.action, c.id) for c in r.changes],
        [("create", "alerts"), ("delete", "orders")],
    ),
    Call(
        "webhooks.sync",
        lambda a, s: a.webhooks.sync(webhooks=[{"id": "alerts", "url": "https://example.com/alerts"}]),
        lambda r: ([w.id for w in r.webhooks], [x.id for x in r.secrets]),
        (["alerts"], ["alerts"]),
    ),
    Call("webhooks.delete", lambda a, s: a.webhooks.delete(id="alerts"), lambda r: r.success, True),
    Call(
        "sandboxes.create", _create_sandbox, lambda r: (r.name, r.secret_key[:11]), ("staging", "am_sk_test_")
    ),
    Call(
        "sandboxes.list",
        lambda a, s: a.sandboxes.list(request={}),
        lambda r: [x.name for x in r.list],
        ["staging"],
    ),
    Call("sandboxes.reset", _reset_sandbox, lambda r: r.success, True),
    Call("sandboxes.delete", lambda a, s: a.sandboxes.delete(id=s["sandbox_id"]), lambda r: r.success, True),
    Call(
        "features.delete", lambda a, s: a.features.delete(feature_id="old-feature"), lambda r: r.success, True
    ),
    Call("plans.delete", lambda a, s: a.plans.delete(plan_id="unused_plan"), lambda r: r.success, True),
    Call(
        "customers.delete", lambda a, s: a.customers.delete(customer_id="cus_456"), lambda r: r.success, True
    ),
]


def _method(client: Client, name: str) -> Any:
    target: Any = client
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _model_classes(annotation: Any) -> tuple[type, ...]:
    """The classes a declared return type admits (a model, or a union of models behind an alias)."""
    annotation = getattr(annotation, "__value__", annotation)  # typing.TypeAliasType
    members = typing.get_args(annotation) or (annotation,)
    return tuple(m for member in members for m in _model_classes(member)) if len(members) > 1 else members


def run_call(call: Call, client: Client, state: State) -> dict[str, Any]:
    report: dict[str, Any] = {"name": call.name, "ok": False, "model": None, "error": None}
    if call.refused is not None:
        return _run_refused(call, call.refused, client, state, report)
    try:
        declared = _model_classes(inspect.signature(_method(client, call.name)).return_annotation)
        res = call.run(client, state)
        report["model"] = type(res).__name__
        if not isinstance(res, declared):
            names = " | ".join(model.__name__ for model in declared)
            report["error"] = f"returned {type(res).__name__}, the method declares {names}"
            return report
        observed = call.observe(res)
        if observed != call.expected:
            report["error"] = f"observed {observed!r}, expected {call.expected!r}"
            return report
    except Exception as exc:
        report["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:1500]
        return report
    report["ok"] = True
    return report


def _operation_methods() -> dict[str, tuple[str, Any]]:
    """Every operation method of the official client: ``group.method`` -> (its HTTP path, the function)."""
    official = importlib.import_module("autumn_sdk")
    bind_around_feature_models()
    owners: dict[str, type] = {"": official.Autumn}
    for group, (module_name, class_name) in official.Autumn._sub_sdk_map.items():
        owners[f"{group}."] = getattr(importlib.import_module(module_name), class_name)
    found = {}
    for prefix, owner in owners.items():
        for attr, member in vars(owner).items():
            if attr.startswith("_") or attr.endswith("_async") or not inspect.isfunction(member):
                continue
            path = re.search(r'path="([^"]+)"', inspect.getsource(member))
            if path is not None:
                found[prefix + attr] = (path.group(1), member)
    return found


def inventory() -> dict[str, str]:
    """Every operation method of the official client (``group.method`` -> its HTTP path)."""
    return {name: path for name, (path, _method) in _operation_methods().items()}


CALL_OPTIONS = frozenset({"self", "retries", "server_url", "timeout_ms", "http_headers"})
"""The official methods' per-call options, beside each operation's own arguments."""


def signatures() -> dict[str, dict[str, list[str]]]:
    """Each official operation method's keyword arguments: ``{"required": [...], "optional": [...]}``."""
    found = {}
    for name, (_path, method) in _operation_methods().items():
        parameters = [p for p in inspect.signature(method).parameters.values() if p.name not in CALL_OPTIONS]
        found[name] = {
            "required": sorted(p.name for p in parameters if p.default is inspect.Parameter.empty),
            "optional": sorted(p.name for p in parameters if p.default is not inspect.Parameter.empty),
        }
    return found


def _run_refused(
    call: Call, refused: tuple[int, str], client: Client, state: State, report: dict[str, Any]
) -> dict[str, Any]:
    status, fragment = refused
    errors = importlib.import_module("autumn_sdk.errors")
    try:
        res = call.run(client, state)
    except errors.AutumnDefaultError as exc:
        report["model"] = type(exc).__name__
        if exc.status_code == status and fragment in exc.message:
            report["ok"] = True
        else:
            report["error"] = f"expected a {status} saying {fragment!r}, got: {exc.message[:1500]}"
        return report
    except Exception as exc:
        report["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:1500]
        return report
    report["error"] = f"expected a {status} refusal, got {type(res).__name__}"
    return report


def main(argv: list[str]) -> int:
    if argv[1:] == ["--inventory"]:
        print(json.dumps(inventory()))
        return 0
    if argv[1:] == ["--signatures"]:
        print(json.dumps(signatures()))
        return 0
    server_url, secret_key = argv[1], argv[2]
    official = importlib.import_module("autumn_sdk")
    utils = importlib.import_module("autumn_sdk.utils")
    bind_around_feature_models()
    no_retries = utils.RetryConfig("none", utils.BackoffStrategy(1, 1, 1, 1), False)
    state: State = {"server_url": server_url, "secret_key": secret_key}
    print(json.dumps({"name": "(seed)", "ok": True, "errors": seed(server_url, secret_key)}), flush=True)
    with official.Autumn(secret_key=secret_key, server_url=server_url, retry_config=no_retries) as client:
        for call in CALLS:
            print(json.dumps(run_call(call, client, state)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
