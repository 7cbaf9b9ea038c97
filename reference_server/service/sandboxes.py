"""Autumn's ``sandboxes.*``: child organizations with their own catalog, customers and sandbox key.

``sandboxes.create`` makes an organization whose ``parent_org_pk`` is the caller's (marked in
:data:`sandboxes`) and a sandbox-env secret key for it, shown once.  ``sandboxes.delete`` removes that
organization and everything in it; ``sandboxes.reset`` empties the calling key's sandbox environment
(customers, plans, features) and keeps the organization, its keys and its settings.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    CreateSandboxResponseJson,
    DisconnectStripeResponseJson,
    ListSandboxesItemJson,
    ListSandboxesResponseJson,
)
from autumn_sdk._generated.models import CreateSandboxParams, DeleteSandboxParams
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.extra_params import NoParams
from reference_server.store import sandboxes as sandboxes_repo
from reference_server.store.catalog import bump_catalog_version
from reference_server.store.tenancy import create_key, create_org

COLORS = ("gray", "blue", "green", "amber", "red", "pink")
DEFAULT_COLOR = "gray"
DEFAULT_ICON = "Flask"
RESERVED_SLUGS = frozenset(
    {
        "products",
        "customers",
        "features",
        "migrations",
        "dev",
        "analytics",
        "settings",
        "admin",
        "chat",
        "quickstart",
        "onboarding",
        "impersonate-redirect",
        "trmnl",
        "live",
        "sandbox",
    }
)
"""Autumn's reserved sandbox slugs (dashboard routes and the two env names)."""


def sandbox_slug(name: str) -> str:
    return re.sub(r"[^\w\s-]", "", name.lower().replace(" ", "-"))


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def _check_name(name: str) -> str:
    if re.search(r"\s", name):
        raise _invalid("Name can't contain spaces. Use - or _ instead")
    slug = sandbox_slug(name)
    if not slug:
        raise _invalid("Name must include at least one letter or number")
    if slug in RESERVED_SLUGS:
        raise _invalid(f'"{name}" is a reserved name, pick another')
    return slug


def _not_in_sandbox(conn: Connection, ctx: Ctx) -> None:
    if sandboxes_repo.is_sandbox(conn, ctx.tenant.org_pk):
        raise _invalid("Sandboxes are managed from your main organization, not from within a sandbox")


def _view(row: Any) -> ListSandboxesItemJson:
    return {
        "id": row.id,
        "name": row.name,
        "slug": row.sandbox_slug,
        "created_at": row.created_at,
        "color": row.color,
        "icon": row.icon,
    }


def _rows(conn: Connection, parent_org_pk: int) -> list[Any]:
    return sandboxes_repo.sandbox_rows(conn, parent_org_pk)


def create_sandbox(ctx: Ctx, params: CreateSandboxParams) -> CreateSandboxResponseJson:
    """``sandboxes.create``: a child organization with a sandbox secret key (shown once)."""
    name = params.name
    slug = _check_name(name)
    color = params.color or DEFAULT_COLOR
    if color not in COLORS:
        raise ApiError(400, "invalid_inputs", f"color: must be one of: {', '.join(COLORS)}")
    icon = params.icon or DEFAULT_ICON
    with ctx.db.write() as conn:
        _not_in_sandbox(conn, ctx)
        if any(row.sandbox_slug == slug for row in _rows(conn, ctx.tenant.org_pk)):
            raise _invalid(f'A sandbox named "{name}" already exists')
        org = create_org(
            conn, name, f"{slug}-{secrets.token_hex(6)}-sandbox", parent_org_pk=ctx.tenant.org_pk
        )
        sandboxes_repo.insert_sandbox(
            conn, org.pk, ctx.tenant.org_pk, name=name, slug=slug, color=color, icon=icon
        )
        secret_key = create_key(conn, org.pk, "sandbox", "Sandbox API Key")[1]
        created_at = sandboxes_repo.org_created_at(conn, org.pk)
    return {
        "id": org.id,
        "name": name,
        "slug": slug,
        "created_at": created_at,
        "color": color,
        "icon": icon,
        "secret_key": secret_key,
    }


def list_sandboxes(ctx: Ctx, params: NoParams) -> ListSandboxesResponseJson:
    """``sandboxes.list``: the calling organization's sandboxes, newest first (never their keys)."""
    with ctx.db.read() as conn:
        _not_in_sandbox(conn, ctx)
        rows = _rows(conn, ctx.tenant.org_pk)
    return {"list": [_view(row) for row in rows]}


def delete_sandbox(ctx: Ctx, params: DeleteSandboxParams) -> DisconnectStripeResponseJson:
    """``sandboxes.delete``: the sandbox organization and everything in it, its keys included."""
    sandbox_id = params.id
    with ctx.db.write() as conn:
        _not_in_sandbox(conn, ctx)
        target = next((row for row in _rows(conn, ctx.tenant.org_pk) if row.id == sandbox_id), None)
        if target is None:
            raise ApiError(404, "sandbox_not_found", f"Sandbox {sandbox_id} not found")
        if sandboxes_repo.child_org_count(conn, target.pk):
            raise _invalid("This sandbox has organizations of its own; delete those first")
        sandboxes_repo.delete_org(conn, target.pk)
    for env in ("sandbox", "live"):  # also forgets its keys' cached tenant
        ctx.state.catalog_cache.invalidate(target.pk, env)
    return {"success": True}


def reset_sandbox(ctx: Ctx, params: NoParams) -> DisconnectStripeResponseJson:
    """``sandboxes.reset``: empty the calling key's sandbox environment; keys and settings stay."""
    if ctx.tenant.env != "sandbox":
        raise _invalid("Only sandboxes can be reset")
    tenant = ctx.tenant
    with ctx.db.write() as conn:
        sandboxes_repo.empty_env(conn, tenant)
        bump_catalog_version(conn, ctx.state.catalog_cache, tenant)
    return {"success": True}
