"""Autumn's ``webhooks.*`` operations on this server's webhook endpoints (and their delivery).

The endpoints are those of :mod:`reference_server.webhooks.endpoints` (URL, signing secret, event
filter, enabled), delivered by the same outbox; :data:`webhook_endpoint_details` adds what Autumn's
webhooks carry beyond that: the caller's id, a description and a change time.  An endpoint made through
this server's own ``webhooks.create_endpoint`` answers to its ``ep_`` id and plays the part of a webhook
made in Autumn's dashboard: ``webhooks.sync`` adopts it when a listed webhook has its URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import (
    CreateWebhookResponseJson,
    DisconnectStripeResponseJson,
    GetWebhookWebhookJson,
    ListWebhooksResponseJson,
    PreviewSyncWebhooksErrorJson,
    PreviewSyncWebhooksResponseJson,
    SyncWebhooksResponseJson,
    SyncWebhooksSecretJson,
    WebhookSyncAdoptJson,
    WebhookSyncCreateJson,
    WebhookSyncDeleteJson,
    WebhookSyncUnmanagedJson,
    WebhookSyncUpdateJson,
)
from autumn_sdk._generated.models import (
    CreateWebhookParams,
    DeleteWebhookParams,
    GetWebhookParams,
    SyncWebhookItem,
    SyncWebhooksParams,
    UpdateWebhookParams,
)
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.extra_params import NoParams
from reference_server.store import webhook_endpoints as webhook_endpoints_repo
from reference_server.webhooks.endpoints import create_endpoint
from reference_server.webhooks.events import EVENT_TYPES

AUTUMN_EVENT_TYPES: tuple[str, ...] = (
    "customer.products.updated",
    "customer.threshold_reached",
    "balances.usage_alert_triggered",
    "balances.limit_reached",
    "billing.auto_topup_failed",
    "billing.auto_topup_succeeded",
    "billing.updated",
    "invoice.finalized",
    "vercel.resources.deleted",
    "vercel.resources.provisioned",
    "vercel.resources.rotate_secrets",
    "vercel.webhooks.event",
)
"""Every event type Autumn's webhooks accept (its ``WebhookEventType``)."""

WEBHOOK_ID = re.compile(r"^[a-zA-Z0-9_-]{1,256}$")

WebhookSyncChange = (
    WebhookSyncCreateJson
    | WebhookSyncUpdateJson
    | WebhookSyncAdoptJson
    | WebhookSyncUnmanagedJson
    | WebhookSyncDeleteJson
)
"""One entry of a sync's ``changes``."""


@dataclass(frozen=True)
class Webhook:
    """One endpoint as Autumn's ``Webhook`` shows it."""

    pk: int
    endpoint_id: str
    """The ``ep_`` id of :data:`webhook_endpoints`."""
    id: str
    """The id callers use: the one they chose, or the ``ep_`` id."""
    managed: bool
    has_details: bool
    url: str
    events: tuple[str, ...]
    description: str | None
    disabled: bool
    created_at: int
    updated_at: int

    def to_json(self) -> GetWebhookWebhookJson:
        return {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "events": list(self.events),
            "disabled": self.disabled,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def same_as(self, other: Webhook) -> bool:
        return (
            self.url == other.url
            and self.description == other.description
            and self.disabled == other.disabled
            and set(self.events) == set(other.events)
        )


@dataclass(frozen=True)
class Stated:
    """A webhook as a request states it; None fields were left out."""

    id: str
    url: str | None
    events: tuple[str, ...] | None
    description: str | None
    """``""`` clears the description."""
    disabled: bool | None


def _not_found(webhook_id: str) -> ApiError:
    return ApiError(404, "webhook_not_found", f"Webhook {webhook_id} not found")


def _duplicate(webhook_id: str) -> ApiError:
    return ApiError(409, "duplicate_webhook_id", f"A webhook with id {webhook_id} already exists")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "invalid_inputs", "url: must be an http(s) URL with a host")
    return url


def _check_events(events: Sequence[str]) -> tuple[str, ...]:
    if not events:
        raise ApiError(
            400, "invalid_inputs", "events: list at least one event, or leave it out for every event"
        )
    unknown = sorted(set(events) - set(AUTUMN_EVENT_TYPES))
    if unknown:
        raise ApiError(400, "invalid_inputs", f"events: unknown event types: {', '.join(unknown)}")
    unsent = sorted(set(events) - set(EVENT_TYPES))
    if unsent:
        raise ApiError(
            400,
            "invalid_inputs",
            f"events: this server never sends {', '.join(unsent)}; it sends {', '.join(EVENT_TYPES)}",
        )
    return tuple(dict.fromkeys(events))


def _check_id(webhook_id: str) -> str:
    if not WEBHOOK_ID.match(webhook_id):
        raise ApiError(400, "invalid_inputs", "id: 1 to 256 characters, only letters, digits, `-` and `_`")
    return webhook_id


def stated_from(
    params: CreateWebhookParams | UpdateWebhookParams | SyncWebhookItem, *, create: bool
) -> Stated:
    """The checked webhook of a request (``create``: ``url`` is required)."""
    webhook_id = _check_id(params.id)
    if params.url is None and create:
        raise ApiError(400, "invalid_inputs", "url: is required")
    return Stated(
        webhook_id,
        _check_url(params.url) if params.url is not None else None,
        _check_events(params.events) if params.events is not None else None,
        params.description,
        params.disabled,
    )


def load(conn: Connection, org_pk: int, env: str) -> list[Webhook]:
    """Every endpoint of the org env, oldest first."""
    rows = webhook_endpoints_repo.endpoints_with_details(conn, org_pk, env)
    return [
        Webhook(
            pk=row.pk,
            endpoint_id=row.id,
            id=row.webhook_id if row.webhook_id is not None else row.id,
            managed=bool(row.managed),
            has_details=row.webhook_id is not None,
            url=row.url,
            events=tuple(row.event_types or ()),
            description=row.description,
            disabled=not row.enabled,
            created_at=row.created_at,
            updated_at=row.updated_at if row.updated_at is not None else row.created_at,
        )
        for row in rows
    ]


def find(hooks: Sequence[Webhook], webhook_id: str) -> Webhook | None:
    for hook in hooks:
        if hook.id == webhook_id:
            return hook
    return None


def _insert(conn: Connection, ctx: Ctx, stated: Stated, now: int) -> tuple[Webhook, str]:
    endpoint = create_endpoint(
        conn, ctx.tenant.org_pk, ctx.tenant.env, str(stated.url), now, stated.events or ()
    )
    if stated.disabled:
        webhook_endpoints_repo.disable_endpoint(conn, endpoint.pk)
    webhook_endpoints_repo.insert_details(
        conn,
        endpoint.pk,
        ctx.tenant.org_pk,
        ctx.tenant.env,
        {
            "webhook_id": stated.id,
            "managed": True,
            "description": stated.description or None,
            "updated_at": now,
        },
    )
    hook = Webhook(
        endpoint.pk,
        endpoint.id,
        stated.id,
        True,
        True,
        endpoint.url,
        endpoint.event_types,
        stated.description or None,
        bool(stated.disabled),
        now,
        now,
    )
    return hook, endpoint.secret


def _applied(hook: Webhook, stated: Stated, now: int, *, adopt: bool = False) -> Webhook:
    """The webhook as the stated fields leave it (left-out fields keep their value)."""
    return replace(
        hook,
        id=stated.id if adopt else hook.id,
        managed=hook.managed or adopt,
        url=stated.url if stated.url is not None else hook.url,
        events=stated.events if stated.events is not None else hook.events,
        description=(stated.description or None) if stated.description is not None else hook.description,
        disabled=stated.disabled if stated.disabled is not None else hook.disabled,
        updated_at=now,
    )


def _store(conn: Connection, ctx: Ctx, after: Webhook) -> None:
    webhook_endpoints_repo.update_endpoint(
        conn, after.pk, url=after.url, event_types=list(after.events), enabled=not after.disabled
    )
    details = {
        "webhook_id": after.id,
        "managed": after.managed,
        "description": after.description,
        "updated_at": after.updated_at,
    }
    if not webhook_endpoints_repo.update_details(conn, after.pk, details):
        webhook_endpoints_repo.insert_details(conn, after.pk, ctx.tenant.org_pk, ctx.tenant.env, details)


def _changed(ctx: Ctx) -> None:
    """Forget the track watcher's cached answer to "has this org env any endpoint?"."""
    watcher = ctx.state.billing.track_watcher
    if watcher is not None:
        watcher.cache.clear()


def create_webhook(ctx: Ctx, params: CreateWebhookParams) -> CreateWebhookResponseJson:
    """``webhooks.create``: a new webhook with the caller's id; its signing secret is shown once."""
    stated = stated_from(params, create=True)
    now = ctx.now()
    try:
        with ctx.db.write() as conn:
            if find(load(conn, ctx.tenant.org_pk, ctx.tenant.env), stated.id) is not None:
                raise _duplicate(stated.id)
            hook, secret = _insert(conn, ctx, stated, now)
    except IntegrityError as exc:
        raise _duplicate(stated.id) from exc
    _changed(ctx)
    return {**hook.to_json(), "secret": secret}


def get_webhook(ctx: Ctx, params: GetWebhookParams) -> GetWebhookWebhookJson:
    """``webhooks.get``: one webhook by its id (or the ``ep_`` id of one made without an id)."""
    webhook_id = _check_id(params.id)
    with ctx.db.read() as conn:
        hook = find(load(conn, ctx.tenant.org_pk, ctx.tenant.env), webhook_id)
    if hook is None:
        raise _not_found(webhook_id)
    return hook.to_json()


def list_webhooks(ctx: Ctx, params: NoParams) -> ListWebhooksResponseJson:
    """``webhooks.list``: every webhook of the calling key's environment."""
    with ctx.db.read() as conn:
        hooks = load(conn, ctx.tenant.org_pk, ctx.tenant.env)
    return {"list": [hook.to_json() for hook in hooks]}


def update_webhook(ctx: Ctx, params: UpdateWebhookParams) -> GetWebhookWebhookJson:
    """``webhooks.update``: change the URL, events, description or disabled of a webhook."""
    stated = stated_from(params, create=False)
    now = ctx.now()
    with ctx.db.write() as conn:
        hook = find(load(conn, ctx.tenant.org_pk, ctx.tenant.env), stated.id)
        if hook is None:
            raise _not_found(stated.id)
        after = _applied(hook, stated, now)
        _store(conn, ctx, after)
    _changed(ctx)
    return after.to_json()


def delete_webhook(ctx: Ctx, params: DeleteWebhookParams) -> DisconnectStripeResponseJson:
    """``webhooks.delete``: remove a webhook; undelivered messages to it are dropped with it."""
    webhook_id = _check_id(params.id)
    with ctx.db.write() as conn:
        hook = find(load(conn, ctx.tenant.org_pk, ctx.tenant.env), webhook_id)
        if hook is None:
            raise _not_found(webhook_id)
        webhook_endpoints_repo.delete_endpoint(conn, hook.pk)
    _changed(ctx)
    return {"success": True}


@dataclass(frozen=True)
class SyncPlan:
    changes: list[WebhookSyncChange]
    errors: list[PreviewSyncWebhooksErrorJson]
    creates: list[Stated]
    stores: list[Webhook]
    deletes: list[Webhook]
    listed: list[str]


def _sync_request(params: SyncWebhooksParams) -> tuple[list[Stated], bool]:
    """The checked webhooks of a sync, and whether unlisted webhooks stay (the default)."""
    stated = [stated_from(item, create=True) for item in params.webhooks]
    ids = [s.id for s in stated]
    if len(set(ids)) != len(ids):
        raise ApiError(400, "invalid_inputs", "webhooks: each webhook id may appear only once")
    return stated, params.skip_deletions is not False


def plan_sync(hooks: Sequence[Webhook], stated: Sequence[Stated], skip_deletions: bool, now: int) -> SyncPlan:
    """What a sync does: create, update, adopt an id-less webhook with the URL, leave or delete the rest."""
    owned = {hook.id: hook for hook in hooks if hook.managed}
    idless = [hook for hook in hooks if not hook.managed]
    new = [s for s in stated if s.id not in owned]
    errors: list[PreviewSyncWebhooksErrorJson] = []
    adoptions: dict[str, Webhook] = {}
    for s in new:
        matches = [hook for hook in idless if hook.url == s.url]
        claimants = [other for other in new if other.url == s.url]
        if len(matches) > 1:
            errors.append(
                {
                    "id": s.id,
                    "message": f"{len(matches)} webhooks without an id use this URL; delete the extras",
                }
            )
        elif matches and len(claimants) > 1:
            errors.append(
                {
                    "id": s.id,
                    "message": f"{len(claimants)} listed webhooks use the URL of one webhook without an id; "
                    "give them different URLs or list only one",
                }
            )
        elif matches:
            adoptions[s.id] = matches[0]
    failed = {error["id"] for error in errors}
    changes: list[WebhookSyncChange] = []
    creates: list[Stated] = []
    stores: list[Webhook] = []
    for s in stated:
        if s.id in failed:
            continue
        existing = owned.get(s.id)
        if existing is not None:
            after = _applied(existing, s, now)
            if not existing.same_as(after):
                changes.append(
                    {"action": "update", "id": s.id, "before": existing.to_json(), "after": after.to_json()}
                )
                stores.append(after)
        elif s.id in adoptions:
            before = adoptions[s.id]
            after = _applied(before, s, now, adopt=True)
            changes.append(
                {"action": "adopt", "id": s.id, "before": before.to_json(), "after": after.to_json()}
            )
            stores.append(after)
        else:
            created = Webhook(
                0,
                "",
                s.id,
                True,
                True,
                str(s.url),
                s.events or (),
                s.description or None,
                bool(s.disabled),
                now,
                now,
            )
            changes.append({"action": "create", "id": s.id, "webhook": created.to_json()})
            creates.append(s)
    stated_ids = {s.id for s in stated}
    adopted = {hook.pk for hook in adoptions.values()}
    deletes: list[Webhook] = []
    for hook in hooks:
        if (hook.managed and hook.id in stated_ids) or hook.pk in adopted:
            continue
        if skip_deletions:
            changes.append({"action": "unmanaged", "id": hook.id, "webhook": hook.to_json()})
        else:
            changes.append({"action": "delete", "id": hook.id, "webhook": hook.to_json()})
            deletes.append(hook)
    listed = [s.id for s in stated if s.id not in failed]
    return SyncPlan(changes, errors, creates, stores, deletes, listed)


def preview_sync_webhooks(ctx: Ctx, params: SyncWebhooksParams) -> PreviewSyncWebhooksResponseJson:
    """``webhooks.preview_sync``: what ``webhooks.sync`` would do with the same body; changes nothing."""
    stated, skip_deletions = _sync_request(params)
    with ctx.db.read() as conn:
        hooks = load(conn, ctx.tenant.org_pk, ctx.tenant.env)
    plan = plan_sync(hooks, stated, skip_deletions, ctx.now())
    return {"changes": plan.changes, "errors": plan.errors}


def sync_webhooks(ctx: Ctx, params: SyncWebhooksParams) -> SyncWebhooksResponseJson:
    """``webhooks.sync``: make the environment's webhooks match the list, in one transaction."""
    stated, skip_deletions = _sync_request(params)
    now = ctx.now()
    try:
        return _sync(ctx, stated, skip_deletions, now)
    except IntegrityError as exc:
        raise ApiError(409, "duplicate_webhook_id", "A listed webhook id is already in use") from exc


def _sync(ctx: Ctx, stated: Sequence[Stated], skip_deletions: bool, now: int) -> SyncWebhooksResponseJson:
    with ctx.db.write() as conn:
        plan = plan_sync(load(conn, ctx.tenant.org_pk, ctx.tenant.env), stated, skip_deletions, now)
        if stated and len(plan.errors) == len(stated):
            raise ApiError(
                400, "invalid_inputs", "; ".join(f"{e['id']}: {e['message']}" for e in plan.errors)
            )
        secrets: list[SyncWebhooksSecretJson] = []
        for hook in plan.deletes:
            webhook_endpoints_repo.delete_endpoint(conn, hook.pk)
        for after in plan.stores:
            _store(conn, ctx, after)
        for s in plan.creates:
            _, secret = _insert(conn, ctx, s, now)
            secrets.append({"id": s.id, "secret": secret})
        hooks = load(conn, ctx.tenant.org_pk, ctx.tenant.env)
    _changed(ctx)
    by_id = {hook.id: hook for hook in hooks if hook.managed}
    return {
        "webhooks": [by_id[i].to_json() for i in plan.listed if i in by_id],
        "secrets": secrets,
        "errors": plan.errors,
    }
