"""Billing changes hold the customer's billing lock (:mod:`reference_server.store.billing_lock`) for
their whole run, so a second billing change of the same customer in flight gets 429."""

from __future__ import annotations

from contextlib import AbstractContextManager

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.service.context import Ctx
from reference_server.store.billing_lock import billing_lock

LOCKED_OPERATIONS = frozenset(op.qualified_name for op in OPERATIONS if op.locks_customer)
"""Billing changes that take the customer's billing lock (a concurrent second one gets 429): the
operations whose policy (``codegen/policy.py``) says ``locks_customer``."""


def customer_lock(ctx: Ctx, customer_id: str) -> AbstractContextManager[None]:
    """The request's customer's billing lock."""
    return billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
