"""The pytest plugin as a user meets it: a project with autumn_config.py and a test file, run by pytest.

The plugin is installed (entry point ``pytest11: autumn``), so the user's project has no conftest.
The runs are in process (a pytest start costs seconds on a busy machine), except the one that checks
what the plugin imports.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import httpx
import pytest

from reference_server.testing import fresh_postgres_url, postgres_available, run_server

CONFIG = """
from autumn_sdk.config import feature, item, plan

messages = feature("messages", name="Messages", type="metered", consumable=True)

free = plan(
    "free",
    name="Free",
    auto_enable=True,
    items=[item(messages, included=10, reset={"interval": "month"})],
)

pro = plan(
    "pro",
    name="Pro",
    items=[item(messages, included=1000, reset={"interval": "month"})],
)
"""

USER_TESTS = """
import pytest


def test_pro_gets_more(autumn, autumn_pricing):
    assert {p.plan_id for p in autumn_pricing.plans} == {"free", "pro"}
    autumn.customers.get_or_create(customer_id="ada")
    autumn.billing.attach(customer_id="ada", plan_id="pro")
    assert autumn.check(customer_id="ada", feature_id="messages", required_balance=500).allowed


def test_free_runs_out_and_resets_next_month(autumn, autumn_pricing, autumn_clock):
    autumn.customers.get_or_create(customer_id="bob")
    autumn.track(customer_id="bob", feature_id="messages", value=10)
    assert not autumn.check(customer_id="bob", feature_id="messages").allowed
    autumn_clock.advance(days=31)
    assert autumn.check(customer_id="bob", feature_id="messages").allowed


def test_each_test_starts_empty(autumn):
    assert autumn.plans.list(request={}).list == []


@pytest.mark.asyncio
async def test_async_client(autumn_async, autumn_pricing):
    await autumn_async.customers.get_or_create(customer_id="cy")
    res = await autumn_async.check(customer_id="cy", feature_id="messages")
    assert res.allowed
"""


@pytest.fixture(scope="module", autouse=True)
def _imported_once() -> None:
    """Load the server's modules in this process before the in-process runs: pytester drops modules
    a run imported, and SQLAlchemy's compiled parts do not survive being imported twice."""
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

    import autumn_cli.catalog
    import autumn_cli.pytest_plugin  # noqa: F401

    with run_server():
        pass


def _project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(autumn_config=CONFIG, test_billing=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def test_user_tests_pass_on_sqlite(pytester: pytest.Pytester) -> None:
    _project(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_user_tests_pass_on_postgresql(pytester: pytest.Pytester) -> None:
    if not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must be available on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not available")
    _project(pytester)
    with fresh_postgres_url() as url:
        result = pytester.runpytest("--autumn-database-url", url, "--autumn-server-scope=test")
    result.assert_outcomes(passed=4)


def test_a_broken_config_fails_the_test_naming_the_mistake(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        autumn_config=CONFIG.replace("consumable=True", "consumable=True, credit_schema=[]").replace(
            'reset={"interval": "month"})],\n)\n\npro', 'reset={"interval": "monthly"})],\n)\n\npro'
        ),
        test_billing="def test_it(autumn_pricing):\n    pass\n",
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*autumn_config.py:*item for feature 'messages': reset.interval*"])


def test_sandbox_mode_uses_the_remote_and_skips_the_clock(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--autumn-sandbox``: no local server; the same tests run against the key's server."""
    _project(pytester)
    pytester.makepyfile(
        test_mode="def test_no_local_server(autumn_server, autumn_target):\n"
        "    assert autumn_server is None and not autumn_target.reference\n"
    )
    args = ("--autumn-sandbox", "-rs", "-k", "not test_each_test_starts_empty and not async")
    monkeypatch.delenv("AUTUMN_SECRET_KEY", raising=False)
    result = pytester.runpytest(*args)
    result.assert_outcomes(skipped=3)  # without a key the tests skip and say why
    result.stdout.fnmatch_lines(["*--autumn-sandbox needs AUTUMN_SECRET_KEY*"])
    with run_server() as remote:  # stands in for Autumn's cloud: reached only through the key and URL
        r = httpx.post(
            remote.url + "/v1/platform/organizations",
            headers=remote.headers,
            json={
                "user_email": "s@example.com",
                "name": "s",
                "slug": "s-" + secrets.token_hex(4),
                "env": "test",
            },
            timeout=30,
        )
        monkeypatch.setenv("AUTUMN_SECRET_KEY", r.json()["test_secret_key"])
        monkeypatch.setenv("AUTUMN_URL", remote.url)
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines(["*autumn_clock needs the reference server*"])
        # the marker does the same for one test; its neighbours keep the local server
        pytester.makepyfile(
            test_marker="""
import pytest

@pytest.mark.autumn_sandbox
def test_marked(autumn_server, autumn_target, autumn):
    assert autumn_server is None and not autumn_target.reference
    autumn.features.list()

def test_unmarked(autumn_server, autumn_target):
    assert autumn_server is not None and autumn_target.reference
"""
        )
        result = pytester.runpytest("test_marker.py")
        result.assert_outcomes(passed=2)


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    """The README's config and example test, as written there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Pricing as code") : readme.index("## Regenerating the models")]
    config, tests = re.findall(r"```python\n(.*?)```", section, re.S)
    pytester.makepyfile(autumn_config=config, test_billing=tests)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_plugin_costs_nothing_when_unused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
import sys

def test_nothing_heavy_loaded():
    assert "reference_server" not in sys.modules
    assert "autumn_sdk" not in sys.modules
    assert "libcst" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio")
    result.assert_outcomes(passed=1)
