"""The platform's RevenueCat operations, as far as a server without RevenueCat can answer them.

Autumn links a managed organization to RevenueCat through RevenueCat's OAuth (Autumn's own
registered OAuth client, and a callback that exchanges the code with RevenueCat), then reads apps and
keys from, and pushes plans to, RevenueCat's API.  This server reaches none of RevenueCat's servers,
so no organization can be linked here:

* ``platform.link_revenue_cat`` checks the organization as Autumn does, then refuses with a 501 that
  says why, rather than hand out an OAuth URL whose flow cannot complete;
* ``platform.sync_revenue_cat`` answers Autumn's own refusal for an organization not linked (400);
* ``platform.get_revenue_cat_keys`` answers Autumn's own answer for an organization not linked: no
  apps and no OAuth access token.
"""

from __future__ import annotations

from autumn_sdk._generated.json_types import (
    GetRevenueCatKeysResponseJson,
    LinkRevenueCatResponseJson,
    SyncRevenueCatResponseJson,
)
from autumn_sdk._generated.models import GetRevenueCatKeysParams, LinkRevenueCatParams, SyncRevenueCatParams
from reference_server.errors import ApiError, invalid
from reference_server.service.context import Ctx
from reference_server.service.platform import _tenant_org


def _require_org(ctx: Ctx, slug: str) -> None:
    with ctx.db.read() as conn:
        _tenant_org(ctx, conn, slug)


def link_revenue_cat(ctx: Ctx, params: LinkRevenueCatParams) -> LinkRevenueCatResponseJson:
    _require_org(ctx, params.organization_slug)
    raise ApiError(
        501,
        "not_implemented",
        "Linking RevenueCat needs RevenueCat's OAuth servers and an OAuth client registered with "
        "RevenueCat, which this server does not have: no RevenueCat OAuth URL can be issued here",
    )


def sync_revenue_cat(ctx: Ctx, params: SyncRevenueCatParams) -> SyncRevenueCatResponseJson:
    _require_org(ctx, params.organization_slug)
    raise invalid("Connect RevenueCat via OAuth for this environment before syncing")


def get_revenue_cat_keys(ctx: Ctx, params: GetRevenueCatKeysParams) -> GetRevenueCatKeysResponseJson:
    _require_org(ctx, params.organization_slug)
    return {"apps": [], "oauth_access_token": None}
