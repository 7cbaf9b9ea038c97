"""The ``autumn`` command against a server shaped like Autumn's cloud: only the spec's operations.

The reference server adds two operations of its own for the CLI (``/v1/catalog.internal_ids``,
``/v1/organizations.current``). Autumn's cloud has neither, so this server answers them 404 here,
as the cloud does for any unknown path, and every verb must still work: push (with its plan of
changes, ``--dry-run`` and ``--yes``), pull, init, env and reset. What needs the extras is said:
without internal ids a rename is an archive and a create.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from autumn_cli.main import app as cli_app
from autumn_sdk import Autumn
from autumn_sdk.config import load_config
from reference_server.app import create_app
from reference_server.testing import (
    DEFAULT_TEST_ENCRYPTION_KEY,
    DEFAULT_TEST_KEY,
    RunningServer,
    fresh_sqlite_url,
    serve_app,
)

from .helpers import CONFIG, new_key

OURS_ONLY = frozenset({"/v1/catalog.internal_ids", "/v1/organizations.current"})


class SpecOnly:
    """Answers the reference server's own CLI operations 404, as Autumn's cloud would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in OURS_ONLY:
            missing = {"message": f"Route {scope['path']} not found", "code": "not_found", "env": "sandbox"}
            await JSONResponse(missing, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningServer]:
    with fresh_sqlite_url() as database_url:
        app = create_app(
            database_url,
            secret_key=DEFAULT_TEST_KEY,
            encryption_keys=DEFAULT_TEST_ENCRYPTION_KEY,
            rate_limits=False,
            validate_responses=True,
        )
        app.add_middleware(SpecOnly)
        with serve_app(app) as url:
            yield RunningServer(url=url, secret_key=DEFAULT_TEST_KEY, app=app, database_url=database_url)


def _run(cwd: Path, key: str, url: str, *args: str, code: int = 0) -> str:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli_app, list(args), env={"AUTUMN_SECRET_KEY": key, "AUTUMN_URL": url})
    finally:
        os.chdir(old)
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


def test_every_verb_works_with_the_specs_operations_only(cloud: RunningServer, tmp_path: Path) -> None:
    key = new_key(cloud)
    client = Autumn(key, server_url=cloud.url, fail_open=False)
    assert (
        httpx.post(
            cloud.url + "/v1/catalog.internal_ids", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 404
    )

    def autumn(*args: str, code: int = 0) -> str:
        return _run(tmp_path, key, cloud.url, *args, code=code)

    out = autumn("env")
    assert "Environment:  sandbox" in out and key not in out
    config = tmp_path / "autumn_config.py"
    config.write_text(CONFIG)
    out = autumn("push", "--yes", "--dry-run")
    assert "+ create plan pro" in out and "Dry run: nothing applied." in out
    assert client.features.list().list == []
    assert "Applied." in autumn("push", "--yes")
    assert {p.id for p in client.plans.list().list} == {"free", "pro", "top_up"}
    pushed = config.read_text()
    assert "internal_id=" not in pushed  # nothing to record: the cloud has no such operation
    assert "No changes" in autumn("push")
    assert "is up to date" in autumn("pull")
    assert config.read_text() == pushed

    # A change made elsewhere is pulled into the file, keeping its comments.
    client.plans.update(plan_id="top_up", name="Message pack")
    autumn("pull")
    pulled = config.read_text()
    assert 'name="Message pack"' in pulled and "# enterprise only" in pulled
    assert load_config(config).plan("top_up").name == "Message pack"

    # Without internal ids a renamed plan cannot be told from a new one: an archive and a create.
    config.write_text(pulled.replace('"pro",\n    name="Pro"', '"pro_plus",\n    name="Pro+"'))
    out = autumn("push", "--yes")
    assert "+ create plan pro_plus" in out and "- archive plan pro" in out

    config.unlink()
    assert "plans" in autumn("init")
    assert "No changes" in autumn("push")
    assert "Deleted" in autumn("reset", "--yes")
    assert client.plans.list().list == []
    client.close()
