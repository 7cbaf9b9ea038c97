"""The platform API: tenant organizations created by a master organization, their users and keys.

The Stripe OAuth URL points back at this server (a local server has no Stripe platform); the Stripe
configuration call stores the organization's account per environment, which chooses its processor.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from reference_server.errors import AutumnError, invalid
from reference_server.service.context import Ctx
from reference_server.store.org_stripe import config_updates, save_stripe_config
from reference_server.store.tables import memberships, organizations, users
from reference_server.store.tenancy import add_member, create_key, create_org, ensure_user


def _tenant_slug(ctx: Ctx, slug: str) -> str:
    return f"{ctx.tenant.org_id}_{slug}"


def _public_slug(ctx: Ctx, slug: str) -> str:
    prefix = f"{ctx.tenant.org_id}_"
    return slug[len(prefix) :] if slug.startswith(prefix) else slug


def create_organization(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    env = body.get("env") or "both"
    if env not in ("test", "live", "both"):
        raise invalid("env: must be one of: test, live, both", "invalid_inputs")
    if "@" not in str(body.get("user_email", "")):
        raise invalid("user_email: must be an email address", "invalid_inputs")
    slug = _tenant_slug(ctx, body["slug"])
    with ctx.db.write() as conn:
        row = conn.execute(select(organizations).where(organizations.c.slug == slug)).first()
        if row is None:
            org = create_org(
                conn, body["name"], slug, parent_org_pk=ctx.tenant.org_pk, owner_email=body["user_email"]
            )
            org_pk = org.pk
        else:
            org_pk = row.pk
        user_pk, _uid, _created = ensure_user(conn, body["user_email"])
        add_member(conn, org_pk, user_pk)
        out: dict[str, Any] = {"test_secret_key": None, "live_secret_key": None}
        if env in ("test", "both"):
            out["test_secret_key"] = create_key(conn, org_pk, "sandbox", "platform")[1]
        if env in ("live", "both"):
            out["live_secret_key"] = create_key(conn, org_pk, "live", "platform")[1]
    return out


def list_organizations(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    limit, offset = int(body.get("limit") or 10), int(body.get("offset") or 0)
    if not 1 <= limit <= 100 or offset < 0:
        raise invalid("limit must be 1..100 and offset >= 0", "invalid_inputs")
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(organizations)
            .where(organizations.c.parent_org_pk == ctx.tenant.org_pk)
            .order_by(organizations.c.pk)
            .limit(limit)
            .offset(offset)
        ).all()
    items = [{"slug": _public_slug(ctx, r.slug), "name": r.name, "created_at": r.created_at} for r in rows]
    return {"list": items, "total": len(items), "limit": limit, "offset": offset}


def list_users(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    limit, offset = int(body.get("limit") or 10), int(body.get("offset") or 0)
    expand = str(body.get("expand") or "")
    with ctx.db.read() as conn:
        tenant_orgs = select(organizations.c.pk).where(organizations.c.parent_org_pk == ctx.tenant.org_pk)
        user_pks = select(memberships.c.user_pk).where(memberships.c.org_pk.in_(tenant_orgs))
        rows = conn.execute(
            select(users).where(users.c.pk.in_(user_pks)).order_by(users.c.pk).limit(limit).offset(offset)
        ).all()
        items = []
        for r in rows:
            item: dict[str, Any] = {"email": r.email, "created_at": r.created_at}
            if "organizations" in expand:
                orgs = conn.execute(
                    select(organizations)
                    .join(memberships, memberships.c.org_pk == organizations.c.pk)
                    .where(memberships.c.user_pk == r.pk, organizations.c.parent_org_pk == ctx.tenant.org_pk)
                ).all()
                item["organizations"] = [
                    {"slug": _public_slug(ctx, o.slug), "name": o.name, "created_at": o.created_at}
                    for o in orgs
                ]
            items.append(item)
    return {"list": items, "total": len(items), "limit": limit, "offset": offset}


def _tenant_org(ctx: Ctx, conn: Any, slug: str) -> Any:
    row = conn.execute(
        select(organizations).where(
            organizations.c.slug == _tenant_slug(ctx, slug),
            organizations.c.parent_org_pk == ctx.tenant.org_pk,
        )
    ).first()
    if row is None:
        raise AutumnError(404, "not_found", f"Organization {slug} not found")
    return row


def oauth_url(ctx: Ctx, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    if body.get("env") not in ("test", "live"):
        raise invalid("env: must be one of: test, live", "invalid_inputs")
    with ctx.db.read() as conn:
        org = _tenant_org(ctx, conn, body["organization_slug"])
    query = urlencode({"organization": org.id, "env": body["env"], "redirect_url": body["redirect_url"]})
    return {"oauth_url": f"{base_url.rstrip('/')}/platform/oauth/connect?{query}"}


def update_stripe(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """Save the organization's Stripe account per environment.

    ``test_account_id`` / ``live_account_id`` (the platform contract) name a connected account charged
    with the server's own key; ``test_secret_key`` / ``live_secret_key`` and ``*_webhook_secret`` let
    an organization bring its own Stripe account, which then takes its payments and sends its events.
    """
    try:
        updates = config_updates(body)
    except ValueError as exc:
        raise invalid(str(exc), "invalid_inputs") from exc
    with ctx.db.write() as conn:
        org = _tenant_org(ctx, conn, body["organization_slug"])
        for env, values in updates.items():
            save_stripe_config(conn, org.pk, env, values, ctx.state.clock.now_ms())
    return {
        "message": "Stripe configuration updated",
        "organization": {"id": org.id, "slug": body["organization_slug"]},
    }
