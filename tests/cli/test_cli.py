"""The ``autumn`` command against the reference server over real HTTP (SQLite and PostgreSQL).

Each test gets its own organization on a module-wide server; the command runs headless (not a TTY),
as in CI, through typer's runner, and once as the installed console script.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autumn_sdk import Autumn
from autumn_sdk.config import ConfigError, load_config
from reference_server.testing import RunningServer, run_server

from .helpers import CONFIG, Cli, new_key


def test_push_needs_yes_dry_run_applies_nothing_and_round_trip_is_identity(cli: Cli) -> None:
    cli.config.write_text(CONFIG)
    out = cli("push", code=1)  # headless without --yes: the plan, then "confirmation required"
    assert "+ create feature messages" in out and "+ create plan pro" in out
    assert "confirmation required" in out
    out = cli("push", "--yes", "--dry-run")
    assert "Dry run: nothing applied." in out
    assert cli.plans() == {} and cli.client.features.list().list == []
    assert cli.config.read_text() == CONFIG

    out = cli("push", "--yes")
    assert "4 to create" not in out and "Applied." in out
    plans = cli.plans()
    assert set(plans) == {"free", "pro", "top_up"}
    pro = cli.client.plans.get(plan_id="pro")
    assert pro.price is not None and pro.price.amount == 20 and pro.free_trial is not None
    msg = next(i for i in pro.items if i.feature_id == "messages")
    assert msg.price is not None and msg.price.tiers and msg.rollover is not None and msg.rollover.max == 500
    seats = next(i for i in pro.items if i.feature_id == "seats")
    assert seats.proration is not None and seats.proration.model_dump() == {
        "on_increase": "prorate_immediately",
        "on_decrease": "none",
    }
    assert cli.client.plans.get(plan_id="top_up").add_on
    # push recorded the server's ids, touching nothing else (comments and layout kept)
    pushed = cli.config.read_text()
    assert pushed.count('internal_id="fe_') == 4 and pushed.count('internal_id="pl_') == 3
    assert "# enterprise only" in pushed and "# usage beyond the included amount, in tiers" in pushed
    assert sorted(set(pushed.splitlines()) - set(CONFIG.splitlines()))  # only additions
    assert set(CONFIG.splitlines()) - set(pushed.splitlines()) <= {
        'messages = feature("messages", name="Messages", type="metered", consumable=True)',
        'seats = feature("seats", name="Seats", type="metered", consumable=False)',
        'sso = feature("sso", name="SSO", type="boolean")  # enterprise only',
    }

    assert "is up to date" in cli("pull")
    assert cli.config.read_text() == pushed
    assert "No changes" in cli("push")


def test_pull_after_a_dashboard_change_edits_only_what_changed(cli: Cli) -> None:
    cli.config.write_text(CONFIG)
    cli("push", "--yes")
    before = cli.config.read_text()
    # Someone changes the catalogue through the API (as the dashboard does).
    cli.client.plans.update(plan_id="top_up", name="Message pack", price=None)
    cli.client.features.create(feature_id="exports", name="Exports", type_="boolean")
    cli.client.plans.delete(plan_id="free", all_versions=True)

    out = cli("pull")
    assert "~ plan top_up" in out and "+ feature exports" in out and "- plan free" in out
    after = cli.config.read_text()
    assert 'name="Message pack"' in after and 'exports = feature("exports"' in after
    assert "free = plan(" not in after
    # pro and its comments are untouched, byte for byte
    pro_block = before[before.index("pro = plan(") : before.index("top_up = plan(")]
    assert pro_block in after
    assert "# enterprise only" in after and "# What customers use" in after
    assert load_config(cli.config).plan("top_up").name == "Message pack"
    assert "No changes" in cli("push")
    assert "is up to date" in cli("pull")


def test_rename_is_recognized_through_the_internal_id(cli: Cli) -> None:
    cli.config.write_text(CONFIG)
    cli("push", "--yes")
    ids_before = load_config(cli.config).plan("pro").internal_id
    cli.config.write_text(
        cli.config.read_text().replace('"pro",\n    name="Pro"', '"pro_plus",\n    name="Pro+"')
    )
    out = cli("push", "--yes")
    assert "~ update plan pro_plus" in out and "renamed from 'pro'" in out
    assert "create plan" not in out and "archive" not in out.split("Changes:")[1].split("\n")[0]
    plans = cli.plans()
    assert "pro" not in plans and plans["pro_plus"]["name"] == "Pro+"
    assert load_config(cli.config).plan("pro_plus").internal_id == ids_before
    assert "No changes" in cli("push")

    # a feature renamed, and the plan that uses it follows
    sso_id = load_config(cli.config).feature("sso").internal_id
    cli.config.write_text(
        cli.config.read_text().replace('feature("sso", name="SSO"', 'feature("single_sign_on", name="SSO"')
    )
    out = cli("push", "--yes")
    assert "~ update feature single_sign_on" in out and "renamed from 'sso'" in out
    assert "item single_sign_on added" in out and "item sso removed" in out
    assert [f.id for f in cli.client.features.list().list if f.id in ("sso", "single_sign_on")] == [
        "single_sign_on"
    ]
    assert load_config(cli.config).feature("single_sign_on").internal_id == sso_id
    assert "No changes" in cli("push")
    assert "is up to date" in cli("pull")


def test_archive_and_init(cli: Cli) -> None:
    cli.config.write_text(CONFIG)
    cli("push", "--yes")
    text = cli.config.read_text()
    cli.config.write_text(text[: text.index("top_up = plan(")])
    out = cli("push", "--yes")
    assert "- archive plan top_up" in out
    assert cli.plans()["top_up"]["archived"] is True
    cli.config.unlink()
    out = cli("init")
    assert "3 features and 2 plans" in out or "4 features and 2 plans" in out
    config = load_config(cli.config)
    assert {p.plan_id for p in config.plans} == {"free", "pro"}
    assert "No changes" in cli("push")
    cli("init", code=1)  # never overwrites without --overwrite


def test_reset_empties_a_sandbox_and_is_refused_on_a_live_key(cli: Cli, server: RunningServer) -> None:
    cli.config.write_text(CONFIG)
    cli("push", "--yes")
    cli.client.customers.get_or_create(customer_id="ada")
    assert "confirmation required" in cli("reset", code=1)
    assert "Deleted 1 customers, 3 plans and 4 features" in cli("reset", "--yes")
    assert cli.plans() == {} and cli.client.features.list().list == []

    live = new_key(server, env="live")
    live_client = Autumn(live, server_url=server.url, fail_open=False)
    live_client.features.create(feature_id="kept", name="Kept", type_="boolean")
    out = cli("--prod", "--secret-key", live, "reset", "--yes", code=1)  # atmn's global flags, first
    assert "refused on a live key" in out
    out = cli("reset", "--yes", "--secret-key", live, code=1)  # a live key without --prod
    assert "live key" in out
    assert [f.id for f in live_client.features.list().list] == ["kept"]
    live_client.close()


def test_env_and_config_errors(cli: Cli) -> None:
    out = cli("env")
    assert "Environment:  sandbox" in out and cli.key not in out and "am_sk_test_" in out
    # keys where `atmn login` saves them: ./.env (the environment wins when both are set)
    unset: dict[str, str | None] = {"AUTUMN_SECRET_KEY": None, "AUTUMN_URL": None}
    assert "no secret key" in cli("env", env=unset, code=1)
    (cli.cwd / ".env").write_text(f"AUTUMN_SECRET_KEY={cli.key}\nAUTUMN_URL={cli.server.url}\n")
    assert "Environment:  sandbox" in cli("env", env=unset)
    cli.config.write_text(
        CONFIG.replace(
            'reset={"interval": "month"},\n            price',
            'reset={"intervall": "month"},\n            price',
        )
    )
    out = cli("push", code=1)
    assert "autumn_config.py:" in out and "item for feature 'messages'" in out and "reset" in out
    with pytest.raises(ConfigError) as err:
        load_config(cli.config)
    assert (
        err.value.line is not None and err.value.file and "reset.interval: Field required" in str(err.value)
    )
    cli.config.write_text(CONFIG.replace("item(sso)", 'item("nope")'))
    with pytest.raises(ConfigError, match=r"plan 'pro': items\[2\].feature_id: 'nope' is not a feature"):
        load_config(cli.config)


@pytest.fixture(scope="module")
def sqlite_server() -> Iterator[RunningServer]:
    with run_server() as srv:
        yield srv


def test_console_script_headless_exit_codes(sqlite_server: RunningServer, tmp_path: Path) -> None:
    """The installed script's exit codes (the database plays no part: SQLite only)."""
    server = sqlite_server
    key = new_key(server)
    (tmp_path / "autumn_config.py").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTUMN_")}
    script = Path(sys.executable).with_name("autumn")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run("push", "--no-such-flag").returncode == 1
    assert run("-V").stdout.strip() == importlib.metadata.version("autumn-kit")
    missing = run("push")
    assert missing.returncode == 1 and "AUTUMN_SECRET_KEY" in missing.stdout + missing.stderr
    target = {"AUTUMN_SECRET_KEY": key, "AUTUMN_URL": server.url}
    assert run("push", "--headless", **target).returncode == 1  # confirmation required
    assert run("push", "--dry-run", **target).returncode == 0
    assert run("push", "--yes", **target).returncode == 0
    down = run("push", "--url", "http://127.0.0.1:9", "--secret-key", key)
    assert down.returncode == 1 and "Error" in down.stdout + down.stderr


def test_objects_in_lists_are_declared_but_pull_needs_a_name_to_edit_them(cli: Cli) -> None:
    cli.config.write_text(CONFIG + '\nEXTRA_PLANS = [plan("team", name="Team", items=[item(sso)])]\n')
    assert "+ create plan team" in cli("push", "--yes")
    assert "is up to date" in cli("pull")
    cli.client.plans.update(plan_id="team", name="Teams")
    assert "not bound to a top-level name" in cli("pull", code=1)
    assert "Wrote" in cli("pull", "--overwrite", "--yes")
    assert load_config(cli.config).plan("team").name == "Teams"
    assert "No changes" in cli("push")
