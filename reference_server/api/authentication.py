"""Who is calling: a secret key's tenant (cached for a moment per process), or a customer token's
(``am_jwt_``, :mod:`reference_server.service.key_ops`)."""

from __future__ import annotations

import time
from typing import Any

from reference_server.errors import ApiError
from reference_server.service import key_ops
from reference_server.service.context import AppState, CustomerToken
from reference_server.store.tenancy import Tenant, env_of_key, tenant_for_key

TENANT_CACHE_SIZE = 10_000
"""Keys cached at most; the cache starts afresh past it."""


class KeyAuthenticator:
    """Authenticates requests against the state's keys.

    key -> (tenant, monotonic expiry, catalogue generation): saves a query per request; a revoked key or
    another process's change is seen within ``cache_ttl`` seconds, a change made through this process
    at once."""

    def __init__(self, state: AppState, cache_ttl: float = 1.0) -> None:
        self.state = state
        self.cache_ttl = cache_ttl
        self._tenants: dict[str, tuple[Tenant, float, int]] = {}

    def identify(
        self, operation: str, authorization: str | None, raw: dict[str, Any]
    ) -> tuple[Tenant, CustomerToken | None]:
        """The caller's tenant, and its customer token when it authenticated with one (which scopes the
        request to its customer)."""
        if key_ops.is_customer_token(authorization):
            return key_ops.authenticate(self.state, operation, str(authorization), raw)
        return self.authenticate(authorization), None

    def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of the ``Authorization: Bearer`` secret key; 401 for none or a wrong one."""
        if (
            not authorization
            or not authorization.lower().startswith("bearer ")
            or not authorization[7:].strip()
        ):
            raise ApiError(401, "no_secret_key", "Secret key not found in Authorization header")
        key = authorization[7:].strip()
        if env_of_key(key) is None:
            if key.startswith("am_pk_"):
                raise ApiError(401, "invalid_secret_key", "Publishable keys cannot call this endpoint")
            raise ApiError(401, "invalid_request", "Invalid authorization token prefix")
        tenant = self._lookup_tenant(key)
        if tenant is None:
            raise ApiError(401, "invalid_secret_key", "Invalid secret key")
        return tenant

    def _lookup_tenant(self, key: str) -> Tenant | None:
        generation = self.state.catalog_cache.generation
        cached = self._tenants.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now and cached[2] == generation:
            return cached[0]
        with self.state.db.read() as conn:
            tenant = tenant_for_key(conn, key)
        if tenant is not None and self.cache_ttl > 0:
            if len(self._tenants) > TENANT_CACHE_SIZE:
                self._tenants.clear()
            self._tenants[key] = (tenant, now + self.cache_ttl, generation)
        return tenant
