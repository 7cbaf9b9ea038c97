"""Per-customer tokens (Autumn's ``keys.mint`` / ``keys.refresh`` / ``keys.revoke``).

A token is an HS256 JWT prefixed ``am_jwt_``, bound to one customer: the access token (1 hour, or no
expiry when minted ``indefinite``) reaches only check, track, customers.get and entities.get, always for
its own customer; the refresh token (24 hours) reaches only ``keys.refresh``, which rotates the pair.
The previous refresh token is honoured for one rotation; presenting an older one revokes every token of
the customer, as does ``keys.revoke`` (the customer's epoch moves on; tokens of an older epoch are
refused with Autumn's 401).  Tokens are signed with ``AUTUMN_CUSTOMER_JWT_SECRET`` when it is set
(32 characters or more), else with a key generated once and stored in the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from autumn_sdk._generated.json_types import MintKeyResponseJson, RevokeKeyResponseJson
from autumn_sdk._generated.models import MintKeyParams, RevokeKeyParams
from reference_server.errors import ApiError, customer_not_found
from reference_server.service.context import AppState, Ctx, CustomerToken
from reference_server.service.extra_params import NoParams
from reference_server.store import customer_tokens as store
from reference_server.store.subjects import get_customer
from reference_server.store.tenancy import Tenant

PREFIX = "am_jwt_"
ISSUER = "autumn-reference-server"
AUD_ACCESS = "autumn-api"
AUD_REFRESH = "autumn-refresh"
ACCESS_TTL_MS = 60 * 60 * 1000
REFRESH_TTL_MS = 24 * 60 * 60 * 1000
SECRET_ENV = "AUTUMN_CUSTOMER_JWT_SECRET"
MIN_SECRET_LENGTH = 32
SCOPES = ["customers:read", "balances:read", "balances:write"]

ACCESS_OPERATIONS = frozenset({"check", "track", "customers.get", "entities.get"})
"""What an access token reaches (Autumn's allowlist: check, track, customers.get, entities.get)."""
REFRESH_OPERATIONS = frozenset({"keys.refresh"})


def is_customer_token(authorization: str | None) -> bool:
    """Whether the Authorization header carries an ``am_jwt_`` token (rather than a secret key)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    return authorization[7:].strip().startswith(PREFIX)


def version_refusal(version: str | None) -> ApiError | None:
    """Autumn's refusal of a customer token sent with an API version before 2.3 (None: allowed)."""
    if version is None or not all(part.isdigit() for part in version.split(".")):
        return None
    if tuple(int(part) for part in version.split(".")) >= (2, 3):
        return None
    return ApiError(400, "invalid_api_version", "Customer tokens require API version 2.3 or higher")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _configured_secret() -> str | None:
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        return None
    if len(secret) < MIN_SECRET_LENGTH:
        raise ApiError(500, "internal_error", f"{SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters")
    return secret


def _secret(state: AppState, *, create: bool) -> str | None:
    configured = _configured_secret()
    if configured is not None:
        return configured
    cached = state.customer_jwt_secret
    if cached is not None:
        return cached
    now = state.clock.now_ms()
    if create:
        with state.db.write() as conn:
            secret: str | None = store.signing_secret(conn, now)
    else:
        with state.db.read() as conn:
            secret = store.stored_secret(conn)
    if secret is not None:
        state.customer_jwt_secret = secret
    return secret


def _sign(secret: str, claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = _b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return f"{PREFIX}{header}.{payload}.{signature}"


def _bad_token() -> ApiError:
    return ApiError(401, "invalid_request", "Invalid or expired customer token")


def _verify(secret: str, token: str, now_ms: int) -> dict[str, Any]:
    body = token[len(PREFIX) :]
    parts = body.split(".")
    if len(parts) != 3:
        raise _bad_token()
    header_b64, payload_b64, signature_b64 = parts
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256
    ).digest()
    try:
        signature = _unb64(signature_b64)
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _bad_token() from exc
    if (
        not hmac.compare_digest(signature, expected)
        or not isinstance(header, dict)
        or header.get("alg") != "HS256"
    ):
        raise _bad_token()
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        raise _bad_token()
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int) or exp * 1000 <= now_ms):
        raise _bad_token()
    if claims.get("aud") not in (AUD_ACCESS, AUD_REFRESH):
        raise _bad_token()
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("cpk"), int):
        raise _bad_token()
    return claims


def authenticate(
    state: AppState, operation: str, authorization: str, raw: dict[str, Any]
) -> tuple[Tenant, CustomerToken]:
    """The tenant and claims of a request made with an ``am_jwt_`` token.

    An access token's request is scoped to its customer: ``customer_id`` is set to the token's, as
    Autumn forces it.  Refused: a bad or expired token (401), an operation outside the token's
    allowlist (403), a deleted customer or a revoked token (401).
    """
    token = authorization[7:].strip()
    now = state.clock.now_ms()
    secret = _secret(state, create=False)
    if secret is None:
        raise _bad_token()
    claims = _verify(secret, token, now)
    audience = str(claims["aud"])
    allowed = REFRESH_OPERATIONS if audience == AUD_REFRESH else ACCESS_OPERATIONS
    if operation not in allowed:
        raise ApiError(
            403, "invalid_request", f"Endpoint {operation} is not accessible with this customer token"
        )
    with state.db.read() as conn:
        row = store.token_subject(conn, int(claims["cpk"]))
        family = store.read_family(conn, int(claims["cpk"])) if row is not None else None
    if (
        row is None
        or family is None
        or row.id != claims["sub"]
        or row.org_id != claims.get("orgId")
        or row.env != claims.get("env")
    ):
        raise ApiError(401, "invalid_request", "Customer token is no longer valid")
    epoch = int(claims.get("epoch") or 0)
    if epoch < family.epoch:
        raise ApiError(401, "invalid_request", "Customer token revoked")
    offset = row.sandbox_clock_offset_ms if row.env == "sandbox" else row.live_clock_offset_ms
    tenant = Tenant(
        org_pk=row.org_pk,
        org_id=row.org_id,
        env=row.env,
        clock_offset_ms=int(offset or 0),
        catalog_version=int(row.catalog_version),
    )
    if audience == AUD_ACCESS:
        raw["customer_id"] = claims["sub"]
    return tenant, CustomerToken(
        customer_id=str(claims["sub"]),
        customer_pk=int(claims["cpk"]),
        epoch=epoch,
        refresh_kid=int(claims.get("refresh_kid") or 0),
        audience=audience,
    )


def _pair(
    state: AppState,
    tenant: Tenant,
    customer_id: str,
    customer_pk: int,
    family: store.Family,
    *,
    indefinite: bool = False,
) -> MintKeyResponseJson:
    secret = _secret(state, create=True)
    assert secret is not None
    now = state.clock.now_ms()
    base: dict[str, Any] = {
        "v": 1,
        "iss": ISSUER,
        "sub": customer_id,
        "cpk": customer_pk,
        "orgId": tenant.org_id,
        "env": tenant.env,
        "scopes": SCOPES,
        "epoch": family.epoch,
        "refresh_kid": family.refresh_kid,
        "iat": now // 1000,
    }
    if indefinite:
        return {"access_token": _sign(secret, {**base, "aud": AUD_ACCESS}), "expires_at": None}
    access_exp = (now + ACCESS_TTL_MS) // 1000
    refresh_exp = (now + REFRESH_TTL_MS) // 1000
    return {
        "access_token": _sign(secret, {**base, "aud": AUD_ACCESS, "exp": access_exp}),
        "refresh_token": _sign(secret, {**base, "aud": AUD_REFRESH, "exp": refresh_exp}),
        "expires_at": access_exp * 1000,
        "refresh_expires_at": refresh_exp * 1000,
    }


def mint_key(ctx: Ctx, params: MintKeyParams) -> MintKeyResponseJson:
    """A token pair for the customer (a non-expiring access token alone when ``indefinite``)."""
    customer_id = params.customer_id
    indefinite = bool(params.indefinite)
    now = ctx.state.clock.now_ms()
    with ctx.db.write() as conn:
        customer = get_customer(conn, ctx.tenant, customer_id, lock=True)
        if customer is None:
            raise customer_not_found(customer_id)
        family = store.read_family(conn, customer.pk, lock=True)
        if not indefinite:
            family = store.Family(family.epoch, family.refresh_kid + 1)
            store.write_family(conn, customer.pk, family, now)
    return _pair(ctx.state, ctx.tenant, customer_id, customer.pk, family, indefinite=indefinite)


def refresh_key(ctx: Ctx, params: NoParams) -> MintKeyResponseJson:
    """Rotate the pair of the refresh token the request was made with."""
    claim = ctx.customer_token
    if claim is None or claim.audience != AUD_REFRESH:
        raise ApiError(401, "invalid_request", "Missing customer token")
    now = ctx.state.clock.now_ms()
    reused = False
    with ctx.db.write() as conn:
        family = store.read_family(conn, claim.customer_pk, lock=True)
        if claim.epoch < family.epoch:
            raise ApiError(401, "invalid_request", "Customer token revoked")
        if claim.refresh_kid == family.refresh_kid:
            family = store.Family(family.epoch, family.refresh_kid + 1)
        elif claim.refresh_kid != family.refresh_kid - 1:
            family = store.Family(family.epoch + 1, family.refresh_kid)
            reused = True
        store.write_family(conn, claim.customer_pk, family, now)
    if reused:  # the epoch moved on (committed): every token of the customer is revoked
        raise ApiError(401, "invalid_request", "Refresh token reuse detected")
    return _pair(ctx.state, ctx.tenant, claim.customer_id, claim.customer_pk, family)


def revoke_key(ctx: Ctx, params: RevokeKeyParams) -> RevokeKeyResponseJson:
    """Revoke every outstanding token of the customer (new ones can be minted afterwards)."""
    customer_id = params.customer_id
    now = ctx.state.clock.now_ms()
    with ctx.db.write() as conn:
        customer = get_customer(conn, ctx.tenant, customer_id, lock=True)
        if customer is not None:
            family = store.read_family(conn, customer.pk, lock=True)
            store.write_family(conn, customer.pk, store.Family(family.epoch + 1, family.refresh_kid), now)
    return {"revoked": True}
