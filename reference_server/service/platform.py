"""The platform API: tenant organizations created by a master organization, their users and keys.

The Stripe OAuth URL points back at this server (a local server has no Stripe platform); the Stripe
configuration call stores the organization's account per environment, which chooses its processor.
No response ever contains a stored Stripe secret (they are stored encrypted, see
:mod:`reference_server.store.secrets`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import stripe
from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    CreateOrganizationResponseJson,
    GenerateOAuthURLResponseJson,
    ListOrganizationsResponseJson,
    ListUsersResponseJson,
    PlatformOrganizationJson,
    PlatformUserJson,
    UpdateStripeConfigResponseJson,
)
from autumn_sdk._generated.models import (
    CreateOrganizationRequest,
    GenerateOAuthURLRequest,
    ListOrganizationsParams,
    ListUsersParams,
    UpdateStripeConfigRequest,
)
from reference_server.errors import ApiError, invalid
from reference_server.processors.registry import processors_from_env
from reference_server.processors.stripe.registration import STRIPE
from reference_server.service.context import Ctx
from reference_server.store import platform_orgs as platform_repo
from reference_server.store.org_stripe import (
    OrgStripeConfig,
    config_updates,
    forget_stripe_ids,
    save_stripe_config,
    stripe_config,
)
from reference_server.store.secrets import EncryptionKeyError, SecretDecryptionError
from reference_server.store.tenancy import add_member, create_key, create_org, ensure_user


def _tenant_slug(ctx: Ctx, slug: str) -> str:
    return f"{ctx.tenant.org_id}_{slug}"


def _public_slug(ctx: Ctx, slug: str) -> str:
    prefix = f"{ctx.tenant.org_id}_"
    return slug[len(prefix) :] if slug.startswith(prefix) else slug


def create_organization(ctx: Ctx, params: CreateOrganizationRequest) -> CreateOrganizationResponseJson:
    env = params.env or "both"
    if "@" not in params.user_email:
        raise invalid("user_email: must be an email address", "invalid_inputs")
    slug = _tenant_slug(ctx, params.slug)
    with ctx.db.write() as conn:
        row = platform_repo.org_by_slug(conn, slug)
        if row is None:
            org = create_org(
                conn, params.name, slug, parent_org_pk=ctx.tenant.org_pk, owner_email=params.user_email
            )
            org_pk = org.pk
        else:
            org_pk = row.pk
        user_pk, _uid, _created = ensure_user(conn, params.user_email)
        add_member(conn, org_pk, user_pk)
        out: CreateOrganizationResponseJson = {"test_secret_key": None, "live_secret_key": None}
        if env in ("test", "both"):
            out["test_secret_key"] = create_key(conn, org_pk, "sandbox", "platform")[1]
        if env in ("live", "both"):
            out["live_secret_key"] = create_key(conn, org_pk, "live", "platform")[1]
    return out


def list_organizations(ctx: Ctx, params: ListOrganizationsParams) -> ListOrganizationsResponseJson:
    limit, offset = params.limit or 10, params.offset or 0
    if not 1 <= limit <= 100 or offset < 0:
        raise invalid("limit must be 1..100 and offset >= 0", "invalid_inputs")
    with ctx.db.read() as conn:
        rows = platform_repo.child_orgs(conn, ctx.tenant.org_pk, limit, offset)
    items: list[PlatformOrganizationJson] = [
        {"slug": _public_slug(ctx, r.slug), "name": r.name, "created_at": r.created_at} for r in rows
    ]
    return {"list": items, "total": len(items), "limit": limit, "offset": offset}


def list_users(ctx: Ctx, params: ListUsersParams) -> ListUsersResponseJson:
    limit, offset = params.limit or 10, params.offset or 0
    expand = params.expand or ""
    with ctx.db.read() as conn:
        rows = platform_repo.child_org_users(conn, ctx.tenant.org_pk, limit, offset)
        items: list[PlatformUserJson] = []
        for r in rows:
            item: PlatformUserJson = {"email": r.email, "created_at": r.created_at}
            if "organizations" in expand:
                orgs = platform_repo.user_child_orgs(conn, ctx.tenant.org_pk, r.pk)
                item["organizations"] = [
                    {"slug": _public_slug(ctx, o.slug), "name": o.name, "created_at": o.created_at}
                    for o in orgs
                ]
            items.append(item)
    return {"list": items, "total": len(items), "limit": limit, "offset": offset}


def _tenant_org(ctx: Ctx, conn: Connection, slug: str) -> Any:
    row = platform_repo.child_org_by_slug(conn, ctx.tenant.org_pk, _tenant_slug(ctx, slug))
    if row is None:
        raise ApiError(404, "not_found", f"Organization {slug} not found")
    return row


def generate_oauth_url(ctx: Ctx, params: GenerateOAuthURLRequest) -> GenerateOAuthURLResponseJson:
    """The Stripe OAuth URL of an organization: this server's own connect page (``ctx.base_url``)."""
    with ctx.db.read() as conn:
        org = _tenant_org(ctx, conn, params.organization_slug)
    query = urlencode({"organization": org.id, "env": params.env, "redirect_url": params.redirect_url})
    return {"oauth_url": f"{ctx.base_url.rstrip('/')}/platform/oauth/connect?{query}"}


log = logging.getLogger("reference_server.platform")

Identity = tuple[str, str] | None
"""Which Stripe account an environment is charged on: ("key", secret key) or ("connected", acct id)."""


def _identity(config: OrgStripeConfig | None) -> Identity:
    if config is None:
        return None
    if config.secret_key:
        return ("key", config.secret_key)
    if config.account_id:
        return ("connected", config.account_id)
    return None


def _merged(config: OrgStripeConfig | None, values: dict[str, str]) -> OrgStripeConfig:
    base = config or OrgStripeConfig(None, None, None)
    return OrgStripeConfig(
        values.get("secret_key", base.secret_key),
        values.get("account_id", base.account_id),
        values.get("webhook_secret", base.webhook_secret),
    )


def stripe_account_of(secret_key: str, api_base: str | None = None) -> str | None:
    """The id of the Stripe account a secret key belongs to (``GET /v1/account`` at ``api_base``, the
    server's ``STRIPE_API_BASE``, else Stripe's), None when Stripe does not say (a revoked key, no
    network, or localstripe, which has no such endpoint)."""
    client = stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else {},
        max_network_retries=0,
        http_client=stripe.new_default_http_client(timeout=15),
    )
    try:
        account = client.v1.accounts.retrieve_current()
    except stripe.StripeError:
        return None
    return str(account.id) if account.id else None


def same_account(before: Identity, after: Identity, api_base: str | None = None) -> bool:
    """Whether customers and cards saved under ``before`` still exist under ``after``.

    The same key or the same connected account: yes.  Two different secret keys: Stripe is asked which
    account each belongs to (a rolled key of the same account keeps everything); when it cannot tell
    for either key, the keys are taken as different accounts, because a stale customer id fails every
    charge ("No such customer") while a fresh one only costs re-entering a card.  No account before
    (local payments or the server's default Stripe account): a different account.  ``api_base``: the
    Stripe API address the server's Stripe settings name (``STRIPE_API_BASE``), None for Stripe's.
    """
    if before == after:
        return True
    if before is None or after is None or before[0] != "key" or after[0] != "key":
        return False
    old_account, new_account = stripe_account_of(before[1], api_base), stripe_account_of(after[1], api_base)
    return old_account is not None and old_account == new_account


def update_stripe(ctx: Ctx, params: UpdateStripeConfigRequest) -> UpdateStripeConfigResponseJson:
    """Save the organization's Stripe account per environment.

    ``test_account_id`` / ``live_account_id`` (the platform contract) name a connected account charged
    with the server's own key; ``test_secret_key`` / ``live_secret_key`` and ``*_webhook_secret`` let
    an organization bring its own Stripe account, which then takes its payments and sends its events.
    Secrets are stored encrypted and never returned.  When an environment moves to another Stripe
    account (:func:`same_account`), its customers' Stripe ids and saved cards are forgotten
    (:func:`reference_server.store.org_stripe.forget_stripe_ids`) in the same transaction.
    The spec's request declares only the account ids; the secret fields arrive as extra fields,
    which :func:`~reference_server.store.org_stripe.config_updates` reads from the sent JSON.
    """
    try:
        updates = config_updates(params.model_dump(mode="json", exclude_unset=True))
    except ValueError as exc:
        raise invalid(str(exc), "invalid_inputs") from exc
    try:
        with ctx.db.read() as conn:
            org = _tenant_org(ctx, conn, params.organization_slug)
            before = {env: stripe_config(conn, org.pk, env) for env in updates}
        # Stripe is asked outside the transaction; the write below re-checks that nothing changed since.
        if ctx.state.processors is None:
            ctx.state.processors = processors_from_env()
        api_base = ctx.state.processors.accounts_of(STRIPE).api_base
        moved = {
            env: not same_account(_identity(before[env]), _identity(_merged(before[env], values)), api_base)
            for env, values in updates.items()
        }
        with ctx.db.write() as conn:
            for env, values in updates.items():
                current = stripe_config(conn, org.pk, env)
                if current != before[env]:  # changed meanwhile: compare with what is there now
                    moved[env] = _identity(current) != _identity(_merged(current, values))
                save_stripe_config(conn, org.pk, env, values, ctx.state.clock.now_ms())
                if moved[env]:
                    cleared = forget_stripe_ids(conn, org.pk, env)
                    log.info(
                        "org %s %s moved Stripe account: forgot %s customer ids, %s cards",
                        org.id,
                        env,
                        *cleared,
                    )
    except EncryptionKeyError as exc:
        raise ApiError(503, "encryption_not_configured", str(exc)) from exc
    except SecretDecryptionError as exc:
        raise ApiError(500, "secret_decryption_failed", str(exc)) from exc
    return {
        "message": "Stripe configuration updated",
        "organization": {"id": org.id, "slug": params.organization_slug},
    }
