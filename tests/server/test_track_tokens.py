"""AI credit systems: markups on features and ``balances.track_tokens`` (token counts priced in dollars).

Prices are the vendored models.dev entries (reference_server/service/model_prices.py):
anthropic/claude-sonnet-4-20250514 costs $3 per million input tokens and $15 per million output
tokens ($0.30 cache reads, $3.75 cache writes); google/gemini-2.5-pro $1.25/$10, and $2.50/$15 once the
input exceeds 200,000 tokens.
"""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Api, ApiError

MONTH = {"interval": "month"}
SONNET = "anthropic/claude-sonnet-4-20250514"


def _ai_plan(api: Api, included: float = 10, **markups: object) -> None:
    api.feature("ai_credits", "ai_credit_system", **markups)
    api.plan("pro", [{"feature_id": "ai_credits", "included": included, "reset": MONTH}], auto_enable=True)


def _tokens(api: Api, cid: str, model: str = SONNET, **kw: Any) -> dict[str, Any]:
    kw.setdefault("input_tokens", 1000)
    kw.setdefault("output_tokens", 500)
    return api("track_tokens", customer_id=cid, model_id=model, **kw)


def test_ai_credit_feature_stores_markups(api: Api) -> None:
    created = api.feature(
        "ai_credits",
        "ai_credit_system",
        default_markup=20,
        provider_markups={"openai": {"markup": 10}},
        model_markups={SONNET: {"markup": 50}},
    )
    assert created["type"] == "ai_credit_system" and created["consumable"] is True
    assert created["default_markup"] == 20
    assert created["provider_markups"] == {"openai": {"markup": 10}}
    assert created["model_markups"] == {SONNET: {"markup": 50}}
    assert api("features.get", feature_id="ai_credits") == created
    updated = api("features.update", feature_id="ai_credits", default_markup=-100, provider_markups=None)
    assert updated["default_markup"] == -100 and "provider_markups" not in updated
    assert updated["model_markups"] == {SONNET: {"markup": 50}}  # untouched fields keep their values
    with pytest.raises(ApiError) as bad:
        api.feature("calls", default_markup=10)
    assert bad.value.status == 400 and bad.value.code == "invalid_feature"
    with pytest.raises(ApiError) as low:
        api.feature("ai2", "ai_credit_system", default_markup=-101)
    assert low.value.status == 400
    api.customer("u1")  # holds no AI credit balance, so there is no feature to detect
    none_held = api.error("track_tokens", customer_id="u1", model_id=SONNET, input_tokens=1, output_tokens=1)
    assert (none_held.status, none_held.code) == (404, "feature_not_found")


def test_track_tokens_prices_with_default_markup(api: Api) -> None:
    _ai_plan(api, default_markup=20)
    api.customer("u1")
    res = _tokens(api, "u1", feature_id="ai_credits", properties={"request": "r1"})
    # (1000 * 3 + 500 * 15) / 1e6 = 0.0105 dollars, +20% = 0.0126
    assert res["value"] == pytest.approx(0.0126)
    balance = res["balance"]
    assert isinstance(balance, dict)
    assert balance["feature_id"] == "ai_credits" and balance["remaining"] == pytest.approx(9.9874)
    assert res["deductions"] == [
        {
            "balance_id": balance["breakdown"][0]["id"],
            "feature_id": "ai_credits",
            "plan_id": "pro",
            "reset": balance["breakdown"][0]["reset"],
            "value": pytest.approx(0.0126),
        }
    ]
    events = api("events.list", customer_id="u1")["list"]
    assert len(events) == 1 and events[0]["feature_id"] == "ai_credits"
    props = events[0]["properties"]
    assert props["request"] == "r1" and props["model"] == SONNET
    assert props["input_tokens"] == 1000 and props["output_tokens"] == 500
    assert props["base_cost"] == pytest.approx(0.0105) and props["markup"] == 20
    assert props["markup_source"] == "default" and props["tier_applied"] is False
    assert api.balance("u1", "ai_credits")["usage"] == pytest.approx(0.0126)  # type: ignore[index]


def test_markup_precedence_and_feature_detection(api: Api) -> None:
    _ai_plan(
        api,
        default_markup=100,
        provider_markups={"anthropic": {"markup": 50}},
        model_markups={"anthropic/claude-haiku-4-5": {"markup": 0}},
    )
    api.customer("u1")
    # no feature_id: the customer's one AI credit system; the provider markup beats the default
    assert _tokens(api, "u1")["value"] == pytest.approx(0.0105 * 1.5)
    # the model's own markup beats the provider's: haiku is $1/$5 per million
    haiku = _tokens(api, "u1", "anthropic/claude-haiku-4-5")
    assert haiku["value"] == pytest.approx((1000 * 1 + 500 * 5) / 1e6)
    # cache and reasoning pools: cache at their own rates, reasoning at the output rate
    pools = _tokens(
        api,
        "u1",
        input_tokens=0,
        output_tokens=0,
        cache_read_tokens=1000,
        cache_write_tokens=1000,
        reasoning_tokens=1000,
    )
    assert pools["value"] == pytest.approx((0.30 + 3.75 + 15) / 1000 * 1.5)


def test_context_tier_and_custom_models(api: Api) -> None:
    _ai_plan(api, 100, model_markups={"custom/my-model": {"input_cost": 2, "output_cost": 4, "markup": 10}})
    api.customer("u1")
    small = _tokens(api, "u1", "google/gemini-2.5-pro", input_tokens=100_000, output_tokens=0)
    assert small["value"] == pytest.approx(0.125)
    large = _tokens(api, "u1", "google/gemini-2.5-pro", input_tokens=250_000, output_tokens=1000)
    assert large["value"] == pytest.approx((250_000 * 2.5 + 1000 * 15) / 1e6)
    custom = _tokens(api, "u1", "custom/my-model", input_tokens=1_000_000, output_tokens=500_000)
    assert custom["value"] == pytest.approx((2 + 2) * 1.1)
    events = api("events.list", customer_id="u1")["list"]
    assert events[0]["properties"]["model"] == "custom/my-model"
    assert any(e["properties"]["tier_applied"] is True for e in events)


def test_track_tokens_refusals(api: Api) -> None:
    _ai_plan(api)
    api.feature("calls")
    api.customer("u1")
    unknown = api.error(
        "track_tokens", customer_id="u1", model_id="anthropic/no-such-model", input_tokens=1, output_tokens=1
    )
    assert (unknown.status, unknown.code) == (400, "invalid_request") and "no-such-model" in str(
        unknown.body["message"]
    )
    no_provider = api.error(
        "track_tokens", customer_id="u1", model_id="gpt-4o", input_tokens=1, output_tokens=1
    )
    assert no_provider.status == 400
    not_ai = api.error(
        "track_tokens", customer_id="u1", feature_id="calls", model_id=SONNET, input_tokens=1, output_tokens=1
    )
    assert (not_ai.status, not_ai.code) == (400, "invalid_request")
    missing = api.error(
        "track_tokens", customer_id="u1", feature_id="nope", model_id=SONNET, input_tokens=1, output_tokens=1
    )
    assert (missing.status, missing.code) == (404, "feature_not_found")
    custom = api.error("track_tokens", customer_id="u1", model_id="custom/x", input_tokens=1, output_tokens=1)
    assert custom.status == 400 and "input_cost" in str(custom.body["message"])
    negative = api.error("track_tokens", customer_id="u1", model_id=SONNET, input_tokens=-1, output_tokens=1)
    assert negative.status == 400
    assert api.balance("u1", "ai_credits")["usage"] == 0  # type: ignore[index]


def test_check_shows_markups_when_feature_expanded(api: Api) -> None:
    _ai_plan(api, default_markup=5)
    api.customer("u1")
    res = api.check("u1", "ai_credits", expand=["balance.feature"])
    assert res["allowed"] is True
    feature = res["balance"]["feature"]
    assert feature["type"] == "ai_credit_system" and feature["default_markup"] == 5
