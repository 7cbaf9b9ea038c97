"""A seeded reference server for the dashboard tests: two organizations, each with an admin."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from reference_server.cli import main as cli_main
from reference_server.clock import ManualClock
from reference_server.store.db import Database
from reference_server.store.tenancy import create_key, create_org
from reference_server.testing import RunningServer, fresh_database_url, run_server
from tests.catalogue import seed_free_and_pro
from tests.server.helpers import require_postgres

NOW = 1_775_001_600_000  # 2026-04-01
ADMIN = ("owner@acme.test", "correct horse battery staple")
RIVAL_ADMIN = ("boss@rival.test", "another long passphrase")


@dataclass
class Seeded:
    server: RunningServer
    rival_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, op: str, key: str | None = None, **body: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.server.secret_key}"}
        return httpx.post(f"{self.server.url}/v1/{op}", json=body, headers=headers, timeout=30)


def create_admin_cli(
    database_url: str, org: str, email: str, password: str, monkeypatch: pytest.MonkeyPatch
) -> int:
    """``autumn-server admin create`` as an operator runs it (the password on standard input)."""
    with monkeypatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return cli_main(
            [
                "admin",
                "create",
                "--org",
                org,
                "--email",
                email,
                "--password-stdin",
                "--database-url",
                database_url,
            ]
        )


@contextlib.contextmanager
def seeded_server(kind: str) -> Iterator[Seeded]:
    if kind == "postgres":
        require_postgres()
    with fresh_database_url(kind) as url, run_server(url, clock=ManualClock(NOW)) as server:
        with server.client(timeout=30) as client:
            seed_free_and_pro(client, {"feature_id": "sso", "name": "SSO", "type": "boolean"})
            for cid, email, name in (
                ("ada", "ada@example.com", "Ada Lovelace"),
                ("bob", "bob@example.com", None),
            ):
                client.post(
                    "/v1/customers.get_or_create", json={"customer_id": cid, "email": email, "name": name}
                ).raise_for_status()
            client.post(
                "/v1/balances.track", json={"customer_id": "ada", "feature_id": "messages", "value": 30}
            )
        db = Database(url)
        try:
            with db.write() as conn:
                rival = create_org(conn, "Rival Inc", org_id="org_rival")
                _, rival_key = create_key(conn, rival.pk, "sandbox")
        finally:
            db.dispose()
        httpx.post(
            f"{server.url}/v1/customers.get_or_create",
            json={"customer_id": "rival_customer", "email": "secret@rival.test"},
            headers={"Authorization": f"Bearer {rival_key}"},
        ).raise_for_status()
        yield Seeded(server, rival_key)


class Browser:
    """An httpx client that signs in like a browser (cookies, the forms' CSRF tokens)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def sign_in(self, email: str, password: str) -> httpx.Response:
        page = self.http.get("/dashboard/login")
        token = form_token(page.text)
        response = self.http.post(
            "/dashboard/login", data={"csrf_token": token, "email": email, "password": password}
        )
        if response.status_code == 303:
            self.csrf = form_token(self.http.get(response.headers["location"]).text)
        return response

    def post(self, path: str, **data: str) -> httpx.Response:
        return self.http.post(path, data={"csrf_token": self.csrf, **data})


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)
