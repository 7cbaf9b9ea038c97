"""The platform's RevenueCat link: stored keys, and what needs RevenueCat's own servers."""

from __future__ import annotations

from typing import Any

from reference_server.errors import AutumnError
from reference_server.service.context import Ctx


def link_revenue_cat(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "link_revenue_cat is being built")


def sync_revenue_cat(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "sync_revenue_cat is being built")


def get_revenue_cat_keys(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "get_revenue_cat_keys is being built")
