"""Every ``x-codeSamples`` Python snippet of the May 2026 spec runs unchanged against this SDK.

(The current spec's snippets: test_code_samples_current.py.)

The snippets construct ``Autumn(secret_key="am_sk_test...")`` without a URL, so they reach the
server named by ``AUTUMN_URL``. Two servers answer them:

- the reference server (fresh SQLite, its key in place of the placeholder), with the world the
  snippets assume built by ``reference_seed.py``; each result is checked for the values that
  snippet's call must produce;
- the local stub (``stub_server.py``) serving the spec's own examples, which checks that every
  documented example parses into the operation's response model.

Each snippet also runs on ``AsyncAutumn``, rewritten only so its call is awaited.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autumn_sdk import Autumn
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk._operation import Operation
from reference_server.testing import run_server

from .code_samples import EXPECT, REJECTED_AS_AUTUMN_DOES, SAMPLE_KEY, TARGETS, Target, run_sample
from .reference_seed import ARRANGE, seed_sample_world
from .spec_samples import MAY_SPEC_PATH, CodeSample, python_code_samples, spec
from .stub_server import serve


def _run_order(samples: list[CodeSample]) -> list[CodeSample]:
    """Spec order, moved where one stateful server needs it.

    Previews run before the attach they preview (afterwards the plan would already be attached),
    the schedule after attach/multi_attach (its past phases activate pro_plan, which billing.update
    then changes), and customers.delete last so later snippets still find cus_123.
    """
    position = {s.operation_id: float(i) for i, s in enumerate(samples)}
    position["previewAttach"] = position["attach"] - 0.2
    position["previewMultiAttach"] = position["attach"] - 0.1
    position["createSchedule"] = position["multiAttach"] + 0.5
    position["deleteCustomer"] = float("inf")
    return sorted(samples, key=lambda s: position[s.operation_id])


SAMPLES = _run_order(python_code_samples(MAY_SPEC_PATH))
OPS_BY_PATH = {op.path: op for op in OPERATIONS}


@pytest.fixture(scope="module", params=TARGETS, ids=["-".join(t) for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A server per target and client flavour, so a stateful server sees each snippet sequence once."""
    kind, client = request.param
    if kind == "reference":
        with run_server() as server, Autumn(server.secret_key, server_url=server.url) as autumn:
            seed_sample_world(server, autumn)
            yield Target(server.url, server.secret_key, client, server)
    else:
        with serve() as url:
            yield Target(url, SAMPLE_KEY, client)


@pytest.fixture
def autumn_env(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("AUTUMN_URL", target.url)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")  # a broken sample must fail, not fail open
    return target


def _op(sample: CodeSample) -> Operation:
    return OPS_BY_PATH[sample.path]


def test_every_spec_path_has_a_python_sample() -> None:
    sampled = {s.path for s in SAMPLES}
    assert len(SAMPLES) == 40
    assert sampled == set(spec(MAY_SPEC_PATH)["paths"])
    assert sampled <= {op.path for op in OPERATIONS if op.api == "v1"}
    assert set(EXPECT) | set(REJECTED_AS_AUTUMN_DOES) == {s.operation_id for s in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.operation_id for s in SAMPLES])
async def test_sample_runs_unchanged(sample: CodeSample, autumn_env: Target) -> None:
    op = _op(sample)
    assert op.response_model is not None
    server = autumn_env.server
    if server is None:  # the stub: the spec's example must parse into the response model
        assert isinstance(await run_sample(sample, autumn_env), op.response_model)
        return
    arrange = ARRANGE.get(sample.operation_id)
    if arrange is not None:
        with Autumn(server.secret_key, server_url=server.url) as autumn:
            arrange(server, autumn)
    if sample.operation_id in REJECTED_AS_AUTUMN_DOES:
        error_class, message = REJECTED_AS_AUTUMN_DOES[sample.operation_id]
        with pytest.raises(error_class, match=message):
            await run_sample(sample, autumn_env)
        return
    result = await run_sample(sample, autumn_env)
    assert isinstance(result, op.response_model)
    EXPECT[sample.operation_id](result)
