"""Every ``x-codeSamples`` Python snippet of the spec runs unchanged against this SDK.

The snippets construct ``Autumn(secret_key="am_sk_test...")`` without a URL, so they reach the
server named by ``AUTUMN_URL``: here the local stub (``stub_server.py``) serving the spec's examples
over real HTTP. REFERENCE SERVER: once ``reference_server`` serves these paths, point the
``api_url`` fixture at it (seeded with cus_123, pro_plan, seats, ...) to run the same snippets
against real behaviour instead of canned examples.

Each snippet also runs on ``AsyncAutumn``, rewritten only so its call is awaited.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import pytest

from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation

from .spec_samples import CodeSample, python_code_samples
from .stub_server import serve

SAMPLES = python_code_samples()
OPS_BY_PATH = {op.path: op for op in OPERATIONS}


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def autumn_env(api_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUTUMN_URL", api_url)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")  # a broken sample must fail, not fail open
    return api_url


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
def test_sample_runs_unchanged_sync(sample: CodeSample, autumn_env: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(sample.source, f"<sample {sample.operation_id}>", "exec"), namespace)
    try:
        op = _op(sample)
        assert op.response_model is not None
        assert isinstance(namespace["res"], op.response_model)
        assert namespace["autumn"].base_url == autumn_env
    finally:
        namespace["autumn"].close()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.operation_id for s in SAMPLES])
async def test_sample_runs_on_async_client(sample: CodeSample, autumn_env: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_as_async(sample.source), f"<async sample {sample.operation_id}>", "exec"), namespace)
    result = await namespace["_sample"]()
    op = _op(sample)
    assert op.response_model is not None
    assert isinstance(result, op.response_model)
