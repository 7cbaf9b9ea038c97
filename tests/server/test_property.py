"""Property: any sequence of track/check/reset keeps the balance invariants (§1.5, core rule 3).

``granted - usage == remaining`` at the top level (rollovers included) and per breakdown row,
and nothing goes below zero without overage.  Runs over real HTTP with a bounded example count.
"""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import Api

Step = tuple[str, float]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("track"), st.integers(min_value=-30, max_value=80).map(float)),
        st.tuples(
            st.just("track"),
            st.floats(min_value=0.01, max_value=20, allow_nan=False).map(lambda x: round(x, 2)),
        ),
        st.tuples(st.just("check"), st.integers(min_value=0, max_value=200).map(float)),
        st.tuples(st.just("send_event"), st.integers(min_value=1, max_value=40).map(float)),
        st.tuples(st.just("reset"), st.just(0.0)),
    ),
    min_size=1,
    max_size=10,
)


def _catalogue(api: Api) -> None:
    api.feature("messages")
    api.plan(
        "free",
        [
            {
                "feature_id": "messages",
                "included": 100,
                "reset": {"interval": "month"},
                "rollover": {"max": 150, "expiry_duration_type": "month", "expiry_duration_length": 2},
            },
            {"feature_id": "messages", "included": 40, "reset": {"interval": "week"}},
            {"feature_id": "messages", "included": 25},
        ],
        auto_enable=True,
    )


def _assert_invariants(balance: dict[str, object]) -> None:
    granted, remaining, usage = balance["granted"], balance["remaining"], balance["usage"]
    assert isinstance(granted, (int, float)) and isinstance(remaining, (int, float))
    assert isinstance(usage, (int, float))
    assert remaining >= 0
    assert abs((granted - usage) - remaining) < 1e-6, balance
    for row in balance["breakdown"]:  # type: ignore[attr-defined]
        assert row["remaining"] >= 0
        assert abs(row["included_grant"] + row["prepaid_grant"] - row["usage"] - row["remaining"]) < 1e-6, row
    for roll in balance.get("rollovers") or []:  # type: ignore[attr-defined]
        assert roll["balance"] >= 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_random_sequences_keep_invariants(api: Api, sequence: list[Step]) -> None:
    if not any(f["id"] == "messages" for f in api("features.list")["list"]):
        _catalogue(api)
    cid = "p_" + secrets.token_hex(4)
    api.customer(cid)
    for op, value in sequence:
        before = api.balance(cid, "messages")
        assert before is not None
        if op == "track":
            res = api.track(cid, "messages", value)
            _assert_invariants(res["balance"])
            applied = sum(d["value"] for d in res["deductions"])
            if value >= 0:
                assert applied <= value + 1e-9
                assert abs(res["balance"]["remaining"] - (before["remaining"] - applied)) < 1e-6
        elif op == "check":
            res = api.check(cid, "messages", required_balance=value)
            assert res["allowed"] == (before["remaining"] >= value)
            _assert_invariants(res["balance"])
        elif op == "send_event":
            res = api.check(cid, "messages", required_balance=value, send_event=True)
            expected = before["remaining"] - value if res["allowed"] else before["remaining"]
            assert res["allowed"] == (before["remaining"] >= value)
            assert abs(res["balance"]["remaining"] - expected) < 1e-6
        else:
            api("customers.advance_test_clock", customer_id=cid, advance_by_ms=8 * 86_400_000)
        after = api.balance(cid, "messages")
        assert after is not None
        _assert_invariants(after)
