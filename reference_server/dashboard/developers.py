"""The developers screen: API keys, webhook endpoints and deliveries, recent API requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reference_server.store.api_keys import keys_of, owns_key
from reference_server.store.request_log import recent_requests
from reference_server.store.tenancy import create_key, revoke_key
from reference_server.store.webhook_deliveries import (
    endpoints_of,
    owns_delivery,
    recent_deliveries,
    resend_delivery,
)

from .base import DashboardBase, form_int


class DeveloperScreens(DashboardBase):
    """The developers page and its actions (create or revoke a key, resend a delivery)."""

    def developers_page(self, request: Request, revealed: tuple[str, str] | None = None) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        if self.ctx.request_log is not None:
            self.ctx.request_log.flush()
        with self.ctx.db.read() as conn:
            keys = keys_of(conn, admin.org_pk, env)
            endpoints = endpoints_of(conn, admin.org_pk, env)
            deliveries = recent_deliveries(conn, admin.org_pk, env)
            requests_ = recent_requests(conn, admin.org_pk, env)
        return self.render(
            request,
            "developers.html",
            admin,
            env=env,
            section="developers",
            keys=keys,
            endpoints=endpoints,
            deliveries=deliveries,
            requests=requests_,
            revealed=revealed,
        )

    def developers_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        action = str(request.path_params["action"])
        if action == "create-key":
            name = str(form.get("name", "")).strip()[:255] or None
            with self.ctx.db.write() as conn:
                key_id, key = create_key(conn, admin.org_pk, env, name)
            return self.developers_page(request, revealed=(key_id, key))
        if action == "revoke-key":
            key_id = str(form.get("key_id", ""))
            with self.ctx.db.write() as conn:
                if not owns_key(conn, admin.org_pk, env, key_id) or not revoke_key(conn, key_id):
                    return self.not_found(request, admin, f"Key {key_id}")
            self.ctx.ops.state.catalog_cache.invalidate(admin.org_pk, env)
            return self.back(f"/{env}/developers", "revoked")
        if action == "resend":
            pk = form_int(form.get("delivery"))
            with self.ctx.db.write() as conn:
                if not owns_delivery(conn, admin.org_pk, env, pk):
                    return self.not_found(request, admin, "That delivery")
                resend_delivery(conn, pk, self.ctx.now())
            return self.back(f"/{env}/developers", "resent")
        return self.not_found(request, admin)
