"""Every ``x-codeSamples`` Python snippet of the spec runs unchanged against this SDK.

The snippets construct ``Autumn(secret_key="am_sk_test...")`` without a URL, so they reach the
server named by ``AUTUMN_URL``: by default the local stub (``stub_server.py``) serving the spec's
examples over real HTTP.

REFERENCE SERVER: ``AUTUMN_SAMPLES_TARGET=reference`` runs the same snippets against
``reference_server`` instead (fresh SQLite, catalogue seeded by ``reference_seed.py``, the sample's
placeholder key replaced by the server's key, which must start with ``am_sk_test_``). Make that the
default once the server answers every sample; until then the stub keeps this suite about the SDK.

Each snippet also runs on ``AsyncAutumn``, rewritten only so its call is awaited.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from autumn_sdk import Autumn
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation

from .spec_samples import CodeSample, python_code_samples
from .stub_server import serve

# customers.delete last, so the samples after it still find cus_123 on a stateful server.
SAMPLES = sorted(python_code_samples(), key=lambda s: s.path == "/v1/customers.delete")
OPS_BY_PATH = {op.path: op for op in OPERATIONS}


SAMPLE_KEY = "am_sk_test..."


@dataclass(frozen=True)
class Target:
    url: str
    secret_key: str
    client: str
    """``"Autumn"`` (the snippet as written) or ``"AsyncAutumn"`` (the snippet with its call awaited)."""

    def prepare(self, source: str) -> str:
        return source.replace(f'secret_key="{SAMPLE_KEY}"', f'secret_key="{self.secret_key}"')


@pytest.fixture(scope="module", params=["Autumn", "AsyncAutumn"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A server per client flavour, so a stateful server sees each snippet sequence once."""
    if os.environ.get("AUTUMN_SAMPLES_TARGET") == "reference":
        from reference_server.testing import run_server

        from .reference_seed import seed_sample_catalog

        with run_server() as server, Autumn(server.secret_key, server_url=server.url) as autumn:
            seed_sample_catalog(autumn)
            yield Target(server.url, server.secret_key, request.param)
    else:
        with serve() as url:
            yield Target(url, SAMPLE_KEY, request.param)


@pytest.fixture
def autumn_env(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("AUTUMN_URL", target.url)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")  # a broken sample must fail, not fail open
    return target


class _AwaitTheCall(ast.NodeTransformer):
    """``from autumn_sdk import Autumn`` -> ``AsyncAutumn as Autumn``; ``res = call`` -> ``await``."""

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        node.names = [ast.alias("AsyncAutumn", "Autumn") if a.name == "Autumn" else a for a in node.names]
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.Assign:
        targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if targets == ["res"]:
            node.value = ast.Await(node.value)
        return node


def _as_async(source: str) -> str:
    tree = _AwaitTheCall().visit(ast.parse(source))
    body = ast.unparse(tree).replace("\n", "\n    ")
    return f"async def _sample():\n    {body}\n    await autumn.aclose()\n    return res\n"


def _op(sample: CodeSample) -> Operation:
    return OPS_BY_PATH[sample.path]


def test_every_spec_path_has_a_python_sample() -> None:
    sampled = {s.path for s in SAMPLES}
    assert len(SAMPLES) == 40
    assert sampled == {op.path for op in OPERATIONS if op.api == "v1"}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.operation_id for s in SAMPLES])
async def test_sample_runs_unchanged(sample: CodeSample, autumn_env: Target) -> None:
    op = _op(sample)
    assert op.response_model is not None
    namespace: dict[str, Any] = {}
    if autumn_env.client == "Autumn":
        exec(compile(autumn_env.prepare(sample.source), f"<sample {sample.operation_id}>", "exec"), namespace)
        namespace["autumn"].close()
        assert namespace["autumn"].base_url == autumn_env.url
        result = namespace["res"]
    else:
        source = _as_async(autumn_env.prepare(sample.source))
        exec(compile(source, f"<async sample {sample.operation_id}>", "exec"), namespace)
        result = await namespace["_sample"]()
    assert isinstance(result, op.response_model)
