"""``create_in_stripe`` on ``plans.create`` and ``plans.update``: the plan version's Stripe Product and
Prices made at once, in the organization's Stripe account.

Otherwise they are made the first time the version is billed
(:mod:`reference_server.processors.stripe.catalog`), which is also what ``create_in_stripe: false``
asks for.  Autumn creates them when the plan is written, unless ``create_in_stripe`` is false, and skips
it for an organization without Stripe: an organization charged by the local processor has no Stripe
account, so there is nothing to create for it either.
"""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.processors.registry import processors_from_env
from reference_server.processors.stripe_accounts import stripe_for_org
from reference_server.service.context import Ctx
from reference_server.store.stripe_products import plan_version


def create_plan_in_stripe(ctx: Ctx, conn: Connection, plan_pk: int, now: int) -> None:
    """Make plan version ``plan_pk``'s Product and Prices in the organization's Stripe account now
    (none for an organization charged locally).  Stripe failing raises its own error, answered as any
    Stripe error nothing caught (the dispatcher's catch-all, ``registry.describe_failure``): 400
    ``stripe_error``, "(Stripe Error) <Stripe's message>", as Autumn answers; the caller's transaction,
    the plan's write with it, is rolled back, so the request can be sent again."""
    if ctx.state.processors is None:
        ctx.state.processors = processors_from_env()
    account = stripe_for_org(ctx.state.processors, conn, ctx.tenant.org_pk, ctx.tenant.env)
    if account is None:
        return
    account.catalog.plan_objects(conn, ctx.tenant.org_pk, plan_version(conn, plan_pk), now)
