"""Shared helpers of the ``autumn`` command's tests: a pricing config, a new organization's key, and
:class:`Cli`, which runs the command in a project directory.  Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
from typer.testing import CliRunner

from autumn_cli.main import app
from autumn_sdk import Autumn
from reference_server.testing import RunningServer

CONFIG = '''"""Our pricing."""

from autumn_sdk.config import feature, item, plan

# What customers use
messages = feature("messages", name="Messages", type="metered", consumable=True)
seats = feature("seats", name="Seats", type="metered", consumable=False)
sso = feature("sso", name="SSO", type="boolean")  # enterprise only
credits = feature(
    "credits",
    name="AI credits",
    type="credit_system",
    credit_schema=[{"metered_feature_id": "messages", "credit_cost": 2}],
)

# The free tier everyone starts on
free = plan(
    "free",
    name="Free",
    group="main",
    auto_enable=True,
    items=[item(messages, included=100, reset={"interval": "month"})],
)

pro = plan(
    "pro",
    name="Pro",
    group="main",
    price={"amount": 20, "interval": "month"},
    free_trial={"duration_length": 14, "duration_type": "day", "card_required": True},
    items=[
        # usage beyond the included amount, in tiers
        item(
            messages,
            included=1000,
            reset={"interval": "month"},
            price={
                "tiers": [{"to": 5000, "amount": 0.01}, {"to": "inf", "amount": 0.005}],
                "interval": "month",
                "billing_method": "usage_based",
            },
            rollover={"max": 500, "expiry_duration_type": "month"},
        ),
        item(
            seats,
            included=3,
            price={"amount": 10, "interval": "month", "billing_method": "prepaid"},
            proration={"on_increase": "prorate_immediately", "on_decrease": "none"},
        ),
        item(sso),
    ],
)

top_up = plan(
    "top_up",
    name="Message top-up",
    add_on=True,
    items=[
        item(
            messages,
            price={"amount": 5, "billing_units": 1000, "interval": "one_off", "billing_method": "prepaid"},
        ),
    ],
)
'''


def new_key(server: RunningServer, env: str = "test") -> str:
    r = httpx.post(
        server.url + "/v1/platform/organizations",
        headers=server.headers,
        json={
            "user_email": "o@example.com",
            "name": "CLI",
            "slug": "cli-" + secrets.token_hex(6),
            "env": env,
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["test_secret_key" if env == "test" else "live_secret_key"])


class Cli:
    """Runs ``autumn`` in a project directory against one organization."""

    def __init__(self, server: RunningServer, key: str, cwd: Path) -> None:
        self.server, self.key, self.cwd = server, key, cwd
        self.config = cwd / "autumn_config.py"
        self.client = Autumn(key, server_url=server.url, fail_open=False)

    def __call__(self, *args: str, code: int = 0, env: dict[str, str | None] | None = None) -> str:
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            result = CliRunner().invoke(
                app,
                list(args),
                env=env
                if env is not None
                else {"AUTUMN_SECRET_KEY": self.key, "AUTUMN_URL": self.server.url},
            )
        finally:
            os.chdir(old)
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        return result.output

    def plans(self) -> dict[str, dict[str, object]]:
        return {p.id: p.model_dump() for p in self.client.plans.list(request={"include_archived": True}).list}
