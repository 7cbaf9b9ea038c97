"""The API's operations, run for a signed-in admin: the same validation and the same services the
``/v1`` routes use (:mod:`reference_server.api.endpoints`), in the admin's organization and chosen env."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from reference_server.api.endpoints import Endpoint, validate_request
from reference_server.errors import ApiError
from reference_server.processors.registry import describe_failure
from reference_server.service.context import AppState, Ctx
from reference_server.store.org_tenants import tenant_of

log = logging.getLogger("reference_server")


class Operations:
    def __init__(self, state: AppState, endpoints: Iterable[Endpoint]) -> None:
        self.state = state
        self.endpoints = {ep.name: ep for ep in endpoints}

    def ctx(self, org_pk: int, env: str, base_url: str | None = None) -> Ctx:
        with self.state.db.read() as conn:
            tenant = tenant_of(conn, org_pk, env)
        public = self.state.public_url or (base_url.rstrip("/") if base_url else "")
        return Ctx(self.state, tenant, base_url=public)  # "": the app's background URL

    def run(self, org_pk: int, env: str, name: str, raw: dict[str, Any], base_url: str | None = None) -> Any:
        """``name`` (e.g. ``billing.attach``) with ``raw`` as if it were the request's JSON body.

        A payment processor's failure that nothing caught (Stripe down or refusing) is raised as the
        :class:`ApiError` the API answers with (400 ``stripe_error``), so the page shows it."""
        ep = self.endpoints.get(name)
        if ep is None:
            raise ApiError(501, "not_implemented", f"{name} is not served by this server")
        try:
            return ep.service(self.ctx(org_pk, env, base_url), validate_request(ep, raw))
        except Exception as exc:  # rolled back on the way here; a processor's failure is shown as one
            described = describe_failure(exc)
            if described is None:
                raise
            log.error(
                "payment processor error in %s (dashboard): %s [%s]",
                name,
                described.message,
                type(exc).__name__,
            )
            raise described from exc
