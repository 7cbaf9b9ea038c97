"""The operation table covers both specs exactly once, with the names the official SDK uses."""

from __future__ import annotations

from collections import Counter

from codegen_specs import spec_documents

from autumn_sdk._generated import operations as ops
from autumn_sdk._operation import Operation
from codegen.spec import HTTP_METHODS


def _spec_operations() -> list[tuple[str, str, str]]:
    found = []
    for document in spec_documents():
        for route, item in document.data["paths"].items():
            for method in HTTP_METHODS:
                if isinstance(item.get(method), dict):
                    op_id = item[method]["operationId"]
                    found.append((op_id, method.upper(), document.server_path_prefix + route))
    return found


def test_every_spec_operation_appears_exactly_once() -> None:
    spec = _spec_operations()
    # Autumn's 67 (2026-08-22), the platform API's 5 and the official SDK's 27 beyond them
    assert len(spec) == 99
    table = Counter((op.operation_id, op.http_method, op.path) for op in ops.OPERATIONS)
    assert table == Counter(spec)
    assert all(isinstance(op, Operation) for op in ops.OPERATIONS)


def test_constants_are_upper_snake_qualified_names() -> None:
    for op in ops.OPERATIONS:
        constant = op.qualified_name.replace(".", "_").upper()
        assert getattr(ops, constant) is op
    assert ops.CHECK.group is None and ops.TRACK.group is None
    assert ops.CUSTOMERS_GET_OR_CREATE.name == "get_or_create"
    assert ops.REFERRALS_CREATE_CODE.name == "create_code"
    assert ops.BILLING_ATTACH.qualified_name == "billing.attach"


def test_platform_operations() -> None:
    platform = {op.name: op for op in ops.OPERATIONS if op.group == "platform"}
    assert set(platform) == {
        "create_organization",
        "list_organizations",
        "generate_oauth_url",
        "update_stripe_config",
        "list_users",
        "link_revenue_cat",
        "sync_revenue_cat",
        "get_revenue_cat_keys",
        "get_stripe_connection",
        "disconnect_stripe",
    }
    # Autumn's own spec and the official SDK's operations serve these at /v1/platform.*
    dotted = {"link_revenue_cat", "sync_revenue_cat", "get_revenue_cat_keys"}
    dotted |= {"get_stripe_connection", "disconnect_stripe"}
    assert all(
        op.api == "platform" and op.path.startswith("/v1/platform/")
        for op in platform.values()
        if op.name not in dotted
    )
    assert platform["list_users"].http_method == "GET"
    assert platform["list_users"].params_model is not None
    assert set(platform["list_users"].params_model.model_fields) == {"limit", "offset", "expand"}
    assert platform["create_organization"].success_statuses == (201,)
    assert platform["generate_oauth_url"].error_statuses == (400, 403, 404)
    assert all(op.api == "v1" for op in ops.OPERATIONS if op.group != "platform" or op.name in dotted)


def test_check_track_finalize_have_one_model_for_200_and_202() -> None:
    for op in (ops.CHECK, ops.TRACK, ops.BALANCES_FINALIZE):
        assert op.success_statuses == (200, 202)
        assert op.response_model is not None


def test_body_styles_follow_the_official_sdk() -> None:
    request_style = {op.qualified_name for op in ops.OPERATIONS if op.body_style == "request"}
    assert request_style == {
        "plans.list",
        "features.list",
        "rewards.list",
        "referrals.list_programs",
        "keys.refresh",
        "sandboxes.list",
        "sandboxes.reset",
        "webhooks.list",
    }
    assert ops.BATCH_TRACK.body_style == "items"
    assert (ops.BATCH_TRACK.min_items, ops.BATCH_TRACK.max_items) == (1, 1000)
    assert ops.FEATURES_LIST.params_model is None


def test_lookup_tables() -> None:
    assert ops.OPERATIONS_BY_PATH["/v1/balances.check"] is ops.CHECK
    assert ops.OPERATIONS_BY_PATH["/v1/platform/organizations"] is ops.PLATFORM_CREATE_ORGANIZATION
    assert ops.OPERATIONS_BY_ROUTE[("GET", "/v1/platform/organizations")] is ops.PLATFORM_LIST_ORGANIZATIONS
    assert len(ops.OPERATIONS_BY_ROUTE) == len(ops.OPERATIONS)


def test_the_official_sdks_operations_beyond_the_spec_keep_its_names_and_paths() -> None:
    """spec/autumn-sdk-1.2.0-operations.yml: ``client.<group>.<method>`` as the official SDK calls it."""
    by_name = {op.qualified_name: op for op in ops.OPERATIONS}
    assert by_name["customers.list_purchases"].path == "/v1/purchases.list"
    assert by_name["customers.list_subscriptions"].path == "/v1/subscriptions.list"
    assert by_name["invoices.list_templates"].path == "/v1/invoices.listTemplates"
    assert by_name["invoices.list_templates"].operation_id == "listInvoiceTemplates"
    assert by_name["logs.search"].operation_id == "searchRequestLogs"
    assert {op.name for op in ops.OPERATIONS if op.group in ("sandboxes", "webhooks")} == {
        "create",
        "delete",
        "get",
        "list",
        "preview_sync",
        "reset",
        "sync",
        "update",
    }
    assert by_name["webhooks.sync"].params_model is by_name["webhooks.preview_sync"].params_model
