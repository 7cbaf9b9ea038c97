"""Plan versions in ``autumn_config.py`` (atmn's ``versionSlug`` / ``active``), pushed and pulled
through the current API against the reference server over real HTTP (SQLite and PostgreSQL).

Several ``plan()`` entries with one id are that plan's versions; the ``active=True`` one is what new
customers get, and customers on an older version stay on it. Editing an entry changes that version for
everyone on it; a new entry is a new version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autumn_sdk.config import ConfigError, load_config

from .helpers import CONFIG, Cli

FREE = """free = plan(
    "free",
    name="Free",
    group="main",
    auto_enable=True,
    items=[item(messages, included=100, reset={"interval": "month"})],
)
"""


def granted(cli: Cli, customer_id: str) -> float:
    return float(cli.client.customers.get(customer_id=customer_id).balances["messages"].granted or 0)


def pushed_free(cli: Cli) -> str:
    """CONFIG pushed, with customer ada on free version 1; returns the recorded free entry."""
    cli.config.write_text(CONFIG)
    cli("push", "--yes")
    cli.client.customers.get_or_create(customer_id="ada")
    text = cli.config.read_text()
    return text[text.index("free = plan(") : text.index("pro = plan(")]


def test_a_new_version_is_for_new_customers_and_the_old_one_is_kept(cli: Cli) -> None:
    entry = pushed_free(cli)
    assert "version=1" in entry
    v1 = entry.replace(
        'free = plan(\n    "free",', 'free_v1 = plan(\n    "free",\n    version_slug="v1",\n    active=False,'
    )
    v2 = entry.replace('"free",', '"free",\n    version_slug="v2",\n    active=True,').replace(
        "included=100,", "included=200,"
    )
    v2 = v2.replace("    version=1,\n", "")
    cli.config.write_text(cli.config.read_text().replace(entry, v1.rstrip() + "\n\n" + v2))
    assert [p.version_slug for p in load_config(cli.config).versions("free")] == ["v1", "v2"]

    out = cli("push", "--dry-run")
    assert "+ new version of plan free" in out and "version v2: the one new customers get" in out
    assert "item messages: included 100 -> 200" in out
    assert "new version 2: 1 customer stays on version 1" in out
    assert "0 to create, 0 to update, 0 to archive, 1 new plan version" in out

    cli("push", "--yes")
    assert cli.client.plans.get(plan_id="free").version == 2
    old = cli.client.plans.get(plan_id="free", version=1)
    assert old.items[0].included == 100
    assert granted(cli, "ada") == 100  # stays on version 1
    cli.client.customers.get_or_create(customer_id="bob")
    assert granted(cli, "bob") == 200  # new customers get the active version
    config = load_config(cli.config)
    assert config.plan("free").version == 2 and config.plan("free", "v1").version == 1
    assert "No changes" in cli("push")
    assert "is up to date" in cli("pull")


def test_editing_an_entry_changes_that_version_for_everyone_on_it(cli: Cli) -> None:
    pushed_free(cli)
    cli.config.write_text(cli.config.read_text().replace("included=100,", "included=150,"))
    out = cli("push", "--dry-run")
    assert "~ update plan free" in out and "item messages: included 100 -> 150" in out
    assert "applies to 1 customer already on version 1" in out and "new plan version" not in out
    cli("push", "--yes")
    latest = cli.client.plans.get(plan_id="free")
    assert latest.version == 1 and latest.items[0].included == 150
    assert "No changes" in cli("push")


def test_a_new_plan_with_two_versions_is_created_oldest_first(cli: Cli) -> None:
    two = CONFIG.replace(
        FREE,
        FREE.replace('"free",', '"free",\n    version_slug="launch",\n    active=False,').replace(
            "free = plan(", "free_launch = plan("
        )
        + "\n"
        + FREE.replace('"free",', '"free",\n    version_slug="current",\n    active=True,').replace(
            "included=100,", "included=50,"
        ),
    )
    cli.config.write_text(two)
    out = cli("push", "--yes")
    assert "+ create plan free" in out and "versions launch, current" in out
    assert cli.client.plans.get(plan_id="free").items[0].included == 50
    assert cli.client.plans.get(plan_id="free", version=1).items[0].included == 100
    config = load_config(cli.config)
    assert config.plan("free", "launch").version == 1 and config.plan("free").version == 2
    assert "No changes" in cli("push")
    assert "is up to date" in cli("pull")


def test_pull_writes_the_servers_versions_back(cli: Cli) -> None:
    pushed_free(cli)
    # A new version made through the API (as the dashboard does): ada keeps version 1.
    cli.client.plans.update(
        plan_id="free",
        items=[{"feature_id": "messages", "included": 300, "reset": {"interval": "month"}}],
    )
    assert cli.client.plans.get(plan_id="free").version == 2
    out = cli("pull")
    # the entry that recorded version=1 is version 1, now kept; version 2 is added as the active one
    assert "~ plan free version v1: kept, not active" in out and "+ plan free version v2" in out
    config = load_config(cli.config)
    v1, v2 = config.plan("free", "v1"), config.plan("free")
    assert (v1.version_slug, v1.active, v1.version) == ("v1", False, 1)
    assert (v2.version_slug, v2.active, v2.version) == ("v2", True, 2)
    assert v1.items and v1.items[0].included == 100 and v2.items and v2.items[0].included == 300
    text = cli.config.read_text()
    assert "free = plan(" in text and "free_v2 = plan(" in text
    assert "No changes" in cli("push")
    assert "is up to date" in cli("pull")

    cli.config.unlink()
    cli("init")
    assert [(p.version_slug, p.active) for p in load_config(cli.config).versions("free")] == [
        ("v1", False),
        ("v2", True),
    ]
    assert "No changes" in cli("push")


def test_what_the_current_api_cannot_do_is_refused_before_anything_is_sent(cli: Cli) -> None:
    entry = pushed_free(cli)
    cli.client.plans.update(
        plan_id="free",
        items=[{"feature_id": "messages", "included": 300, "reset": {"interval": "month"}}],
    )
    cli("pull")
    pulled = cli.config.read_text()

    # making version 1 the active one again: new customers always get the latest version
    swapped = pulled.replace("active=False", "active=@").replace("active=True", "active=False")
    cli.config.write_text(swapped.replace("active=@", "active=True"))
    out = cli("push", "--dry-run", code=1)
    assert "plan 'free' (v1): is the server's version 1" in out and "latest version (2)" in out

    # editing the kept version 1: the current API edits only a plan's latest version
    v1_block = pulled[pulled.index("free = plan(") :]
    v1_block = v1_block[: v1_block.index("\n)\n") + 3]
    cli.config.write_text(pulled.replace(v1_block, v1_block.replace("included=100", "included=101")))
    out = cli("push", code=1)
    assert "differs from the server's version 1" in out and "edits only a plan's latest version" in out

    # a new version beside the existing active one that is not active itself
    extra = entry.replace("free = plan(", "free_v0 = plan(").replace(
        '"free",', '"free",\n    version_slug="v0",\n    active=False,'
    )
    extra = extra.replace("    version=1,\n", "")
    cli.config.write_text(pulled + "\n" + extra)
    out = cli("push", code=1)
    assert "'v0' are new but not active" in out
    assert cli.client.plans.get(plan_id="free").version == 2  # nothing was sent


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (['plan("p", name="P")', 'plan("p", name="P2")'], "each needs a version_slug"),
        (
            ['plan("p", version_slug="a", name="P")', 'plan("p", version_slug="b", name="P")'],
            "exactly one version must be active=True",
        ),
        (
            [
                'plan("p", version_slug="a", active=False, name="P")',
                'plan("p", version_slug="b", active=False, name="P")',
            ],
            "active: none",
        ),
        (
            [
                'plan("p", version_slug="a", active=True, name="P")',
                'plan("p", version_slug="a", active=False, name="P")',
            ],
            "version 'a' declared twice",
        ),
        (
            [
                'plan("p", version_slug="a", active=True, name="P")',
                'plan("p", version_slug="b", active=False, name="P", archived=True)',
            ],
            "archived is the plan's",
        ),
        (['plan("p", active=False, name="P")'], "its only version is active=False"),
        (['plan("p", version_slug="v 2", name="P")'], "version_slug: letters, digits"),
    ],
)
def test_version_rules(tmp_path: Path, entries: list[str], message: str) -> None:
    path = tmp_path / "autumn_config.py"
    body = "".join(f"p{i} = {e}\n" for i, e in enumerate(entries))
    path.write_text("from autumn_sdk.config import plan\n\n" + body)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
