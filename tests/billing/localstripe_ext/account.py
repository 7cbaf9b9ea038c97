"""``GET /v1/account`` for localstripe: TEST INFRASTRUCTURE ONLY.

Stripe answers ``GET /v1/account`` with the account the request's secret key belongs to (the server
asks it to tell whether a new key of an organization is another account).  localstripe keeps one store
for every key and has no Account object, so here each secret key is its own account
(``acct_`` + a digest of the key) unless ``POST /_config/accounts/{account_id}`` with ``key=...`` made
it a key of that account (a rolled key, say).  Objects are not separated per account.
"""

from __future__ import annotations

import hashlib
from typing import Any

_ACCOUNT_OF_KEY: dict[str, str] = {}


def account_of(key: str) -> str:
    return _ACCOUNT_OF_KEY.get(key) or "acct_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def install(app: Any) -> None:
    from aiohttp import web
    from localstripe.server import get_api_key

    async def retrieve(request: Any) -> Any:
        key = get_api_key(request)  # localstripe's auth middleware already refused requests without one
        return web.json_response(
            {
                "id": account_of(str(key)),
                "object": "account",
                "type": "standard",
                "charges_enabled": True,
                "payouts_enabled": True,
                "country": "US",
                "default_currency": "usd",
            }
        )

    async def configure(request: Any) -> Any:
        data = await request.post()
        key = data.get("key")
        if not isinstance(key, str) or not key.startswith("sk_"):
            return web.json_response({"error": {"message": "key: a secret key"}}, status=400)
        _ACCOUNT_OF_KEY[key] = request.match_info["id"]
        return web.Response()

    app.router.add_get("/v1/account", retrieve)
    app.router.add_post("/_config/accounts/{id}", configure)
