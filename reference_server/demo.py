"""``--demo``: a small catalogue and one customer, so the quick start works at once."""

from __future__ import annotations

from autumn_sdk._generated.models import CreateFeatureParams, CreatePlanParams, GetOrCreateCustomerParams
from reference_server.service import customers, features, plans
from reference_server.service.context import AppState, Ctx
from reference_server.service.extra_params import NoParams
from reference_server.store.org_tenants import tenant_of
from reference_server.store.tenancy import tenant_for_key

DEMO_CUSTOMER_ID = "demo_customer"


def seed_demo(state: AppState, org_pk: int) -> None:
    """Create features, a free default plan, a pro plan and a customer (idempotent)."""
    with state.db.read() as conn:
        tenant = tenant_of(conn, org_pk, "sandbox")
    ctx = Ctx(state, tenant)
    existing = features.list_features(ctx, NoParams())["list"]
    if any(f["id"] == "messages" for f in existing):
        return
    for feature in (
        {"feature_id": "messages", "name": "Messages", "type": "metered", "consumable": True},
        {"feature_id": "ai_actions", "name": "AI actions", "type": "metered", "consumable": True},
        {
            "feature_id": "credits",
            "name": "Credits",
            "type": "credit_system",
            "credit_schema": [{"metered_feature_id": "ai_actions", "credit_cost": 5}],
        },
        {"feature_id": "seats", "name": "Seats", "type": "metered", "consumable": False},
        {"feature_id": "analytics", "name": "Analytics", "type": "boolean"},
    ):
        features.create_feature(ctx, CreateFeatureParams.model_validate(feature))
    plans.create_plan(
        ctx,
        CreatePlanParams.model_validate(
            {
                "plan_id": "free",
                "name": "Free",
                "auto_enable": True,
                "items": [
                    {"feature_id": "messages", "included": 50, "reset": {"interval": "month"}},
                    {"feature_id": "seats", "included": 1},
                ],
            }
        ),
    )
    plans.create_plan(
        ctx,
        CreatePlanParams.model_validate(
            {
                "plan_id": "pro",
                "name": "Pro",
                "price": {"amount": 20, "interval": "month"},
                "items": [
                    {"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}},
                    {"feature_id": "credits", "included": 500, "reset": {"interval": "month"}},
                    {"feature_id": "seats", "included": 5},
                    {"feature_id": "analytics"},
                ],
            }
        ),
    )
    customers.get_or_create(
        ctx,
        GetOrCreateCustomerParams.model_validate(
            {"customer_id": DEMO_CUSTOMER_ID, "name": "Demo Customer", "email": "demo@example.com"}
        ),
    )


__all__ = ["DEMO_CUSTOMER_ID", "seed_demo", "tenant_for_key"]
