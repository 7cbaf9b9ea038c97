"""Every ``x-codeSamples`` Python snippet of Autumn's current spec runs unchanged against this SDK.

The current spec is spec/autumn-2026-08-22.yml (the May spec's snippets: test_code_samples.py, whose
machinery this reuses). Each snippet runs as written on ``Autumn`` and, with its call awaited, on
``AsyncAutumn``, against:

- the reference server (fresh SQLite, its key in place of the placeholder), with the world the
  snippets assume built by ``reference_seed_current.py``; each result is checked for the values that
  snippet's call must produce. The placeholder key stands for the credential the operation takes:
  for keys.refresh, whose bearer is a refresh token, that is a token minted for cus_123;
- the local stub (``stub_server.py``) serving the spec's own examples, which checks that every
  documented example parses into the operation's response model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from autumn_sdk import Autumn
from autumn_sdk._generated.operations import OPERATIONS
from autumn_sdk.errors import AutumnError, BadRequestError, InternalServerError
from reference_server.testing import run_server

from .code_samples import EXPECT as MAY_EXPECT
from .code_samples import REJECTED_AS_AUTUMN_DOES, SAMPLE_KEY, TARGETS, Target, run_sample
from .reference_seed_current import ARRANGE, PLACEHOLDER_ID, refresh_token_for, seed_current_world
from .spec_samples import SPEC_PATH, CodeSample, python_code_samples, spec
from .stub_server import serve


def _run_order(samples: list[CodeSample]) -> list[CodeSample]:
    """Spec order, moved where one stateful server needs it.

    Previews run before what they preview (afterwards the plan would already be attached, or
    cancelled), the schedule after attach/multi_attach (its past phases activate pro_plan, which
    billing.update then changes), keys.revoke after keys.refresh (which needs a live token), and
    customers.delete last so later snippets still find cus_123.
    """
    position = {s.operation_id: float(i) for i, s in enumerate(samples)}
    position["previewAttach"] = position["attach"] - 0.2
    position["previewMultiAttach"] = position["attach"] - 0.1
    position["createSchedule"] = position["multiAttach"] + 0.5
    position["previewMultiUpdate"] = position["multiUpdate"] - 0.1
    position["deleteCustomer"] = float("inf")
    return sorted(samples, key=lambda s: position[s.operation_id])


SAMPLES = _run_order(python_code_samples(SPEC_PATH))
OPS_BY_PATH = {op.path: op for op in OPERATIONS}
OPS_WITHOUT_SAMPLE = frozenset({"/v1/licenses.list", "/v1/licenses.list_assignments"})
"""Operations of the current spec that carry no Python code sample."""


@pytest.fixture(scope="module", params=TARGETS, ids=["-".join(t) for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A server per target and client flavour, so a stateful server sees each snippet sequence once."""
    kind, client = request.param
    if kind == "reference":
        with run_server() as server, Autumn(server.secret_key, server_url=server.url) as autumn:
            seed_current_world(server, autumn)
            yield Target(server.url, server.secret_key, client, server)
    else:
        with serve() as url:
            yield Target(url, SAMPLE_KEY, client)


@pytest.fixture
def autumn_env(target: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("AUTUMN_URL", target.url)
    monkeypatch.setenv("AUTUMN_FAIL_OPEN", "false")  # a broken sample must fail, not fail open
    return target


def _equal(expected: object) -> Callable[[object], None]:
    def check(actual: object) -> None:
        assert actual == expected

    return check


def _expect_success(res: Any) -> None:
    assert res.success is True


def _expect_plans(res: Any) -> None:
    assert {p.id for p in res.list} == {
        "pro_plan",
        "trial_plan",
        "addon_seats",
        "unused_plan",
        "free_plan",
        "seat_plan",
        "pro",
    }


def _expect_features(res: Any) -> None:
    assert {f.id for f in res.list} == {
        "messages",
        "api_calls",
        "seats",
        "old-feature",
        "api-calls",
        "ai_credits",
    }


def _expect_multi_update(res: Any) -> None:
    assert res.customer_id == "cus_123"


def _expect_import(res: Any) -> None:
    assert res.customer_id == "cus_123"


def _expect_track_tokens(res: Any) -> None:
    assert res.customer_id == "cus_123"
    assert res.balance is not None and res.balance.feature_id == "ai_credits"
    assert res.balance.usage > 0  # 1000 input and 500 output tokens, priced at cost


def _expect_inserted(res: Any) -> None:
    assert [(i.stripe_id, i.status, i.total) for i in res.invoices] == [("in_legacy_123", "paid", 29.99)]


def _expect_invoices(res: Any) -> None:
    # The newest 10 of cus_123's open or paid invoices (the 2016 legacy one is older than the rest).
    assert 0 < len(res.list) <= 10
    assert {i.status for i in res.list} <= {"open", "paid"}


def _expect_events(res: Any) -> None:
    # Newest first: batchTrack's two message events, trackTokens' AI credits, track, the finalized lock.
    assert len(res.list) == 5
    assert res.list[2].feature_id == "ai_credits"
    assert [(e.feature_id, e.value) for e in res.list[3:]] == [("messages", 1), ("messages", 3)]


def _reward_id(res: Any) -> str:
    reward = res.coupon or res.feature_grant
    return str(reward.id)


def _expect_rewards(res: Any) -> None:
    ids = {r.id for r in res.coupons} | {r.id for r in res.feature_grants}
    assert {"summer_sale", PLACEHOLDER_ID, "beta_credits_grant", "reward_10"} <= ids


def _expect_entity(res: Any) -> None:
    assert (res.id, res.customer_id, res.feature_id) == ("seat_42", "cus_123", "seats")
    assert res.balances["seats"].usage == 2  # user_123 (attachLicense's entity) and seat_42 take a seat each


def _expect_program(program_id: str) -> Callable[[Any], None]:
    return lambda res: _equal(program_id)(res.id)


REPLACED = {
    "listPlans",
    "listFeatures",
    "updateEntity",
    "listEvents",
    "createEntity",
    "getEntity",
    "listEntities",
}
"""May expectations the current world changes (the import, more plans and features, the license
entity, new events)."""

EXPECT: dict[str, Callable[[Any], None]] = {
    **{
        k: v
        for k, v in MAY_EXPECT.items()
        if k not in {"listPlans", "listFeatures", "updateEntity", "listEvents"}
    },
    # createBalance: the snippet is the May one, which the server rejects as Autumn does
    # (code_samples.REJECTED_AS_AUTUMN_DOES).
    "listPlans": _expect_plans,
    "listFeatures": _expect_features,
    "multiUpdate": _expect_multi_update,
    "previewMultiUpdate": lambda res: _equal("cus_123")(res.customer_id),
    "import": _expect_import,
    "trackTokens": _expect_track_tokens,
    "batchTrack": lambda res: None,
    "insertInvoices": _expect_inserted,
    # The import imaged cus_123 onto pro with 10 messages used; the finalized lock took 3 more.
    "check": lambda res: _equal((True, 1000, 987))((res.allowed, res.balance.granted, res.balance.remaining)),
    "track": lambda res: _equal((1, 986))((res.value, res.balance.remaining)),
    "listEvents": _expect_events,
    "updateEntity": lambda res: _equal([("messages", 120)])(
        [(s.feature_id, s.overage_limit) for s in res.billing_controls.spend_limits]
    ),
    "listInvoices": _expect_invoices,
    "attachLicense": _expect_success,
    "createEntity": _expect_entity,
    "getEntity": _expect_entity,
    "listEntities": lambda res: _equal(["user_123", "seat_42"])([e.id for e in res.list]),
    "releaseLicense": lambda res: None,
    "createReferralProgram": _expect_program("refer_a_friend"),
    "listReferralPrograms": lambda res: _equal(True)(
        {"prog_123", PLACEHOLDER_ID, "refer_a_friend"} <= {p.id for p in res.list}
    ),
    "getReferralProgram": _expect_program(PLACEHOLDER_ID),
    "updateReferralProgram": _expect_program(PLACEHOLDER_ID),
    "deleteReferralProgram": lambda res: None,
    "createReward": lambda res: _equal("summer_sale")(_reward_id(res)),
    "listRewards": _expect_rewards,
    "getReward": lambda res: _equal(PLACEHOLDER_ID)(_reward_id(res)),
    "deleteReward": lambda res: None,
    "getRevenueCatKeys": lambda res: None,
    "mintKey": lambda res: _equal(True)(bool(res.access_token and res.refresh_token)),
    "refreshKey": lambda res: _equal(True)(bool(res.access_token and res.refresh_token)),
    "revokeKey": lambda res: None,
}
"""What each snippet's call must return on the reference server, given the seed and the snippets before it.

``lambda res: None`` marks a call whose response model (checked for every call) is the whole claim."""

REFUSED: dict[str, tuple[type[AutumnError], str]] = {
    **REJECTED_AS_AUTUMN_DOES,
    # The snippet updates nothing; a reward's update takes its own kind (coupon here) to change.
    "updateReward": (BadRequestError, "provide coupon"),
    # Linking goes through RevenueCat's OAuth, which this server cannot reach: a 501 that says so.
    "linkRevenueCat": (InternalServerError, "no RevenueCat OAuth URL can be issued here"),
    # Hence acme is never linked, and syncing refuses as Autumn does for an unlinked organization.
    "syncRevenueCat": (BadRequestError, "Connect RevenueCat via OAuth"),
}
"""Snippets the reference server answers with an error, and why."""


def _credential(sample: CodeSample, target: Target) -> Target:
    """The target with the credential the sample's placeholder key stands for."""
    if sample.operation_id != "refreshKey" or target.server is None:
        return target
    server = target.server
    with Autumn(server.secret_key, server_url=server.url) as autumn:
        return dataclasses.replace(target, secret_key=refresh_token_for(autumn))


def test_every_current_spec_path_has_a_python_sample() -> None:
    sampled = {s.path for s in SAMPLES}
    current_paths = set(spec(SPEC_PATH)["paths"])
    assert current_paths - sampled == OPS_WITHOUT_SAMPLE
    assert sampled <= {op.path for op in OPERATIONS if op.api == "v1"}
    assert set(EXPECT) | set(REFUSED) == {s.operation_id for s in SAMPLES}
    assert not set(EXPECT) & set(REFUSED)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.operation_id for s in SAMPLES])
async def test_current_sample_runs_unchanged(sample: CodeSample, autumn_env: Target) -> None:
    op = OPS_BY_PATH[sample.path]
    assert op.response_model is not None
    server = autumn_env.server
    if server is None:  # the stub: the spec's example must parse into the response model
        assert isinstance(await run_sample(sample, autumn_env), op.response_model)
        return
    arrange = ARRANGE.get(sample.operation_id)
    if arrange is not None:
        with Autumn(server.secret_key, server_url=server.url) as autumn:
            arrange(server, autumn)
    if sample.operation_id in REFUSED:
        error_class, message = REFUSED[sample.operation_id]
        with pytest.raises(error_class, match=message):
            await run_sample(sample, autumn_env)
        return
    result = await run_sample(sample, _credential(sample, autumn_env))
    assert isinstance(result, op.response_model)
    EXPECT[sample.operation_id](result)
