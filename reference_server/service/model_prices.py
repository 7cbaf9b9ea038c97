"""Model token prices for ``balances.track_tokens`` and the conversion of token counts to dollars.

Autumn prices token usage with the public models.dev catalogue (``https://models.dev/api.json``,
keyed by provider, then by model): a ``model_id`` is ``<provider>/<model>``, split at the first
``/`` (``openrouter/openai/gpt-4o`` is provider ``openrouter``, model ``openai/gpt-4o``), and must
name an entry exactly.  This server runs offline, so it vendors the entries below as data, copied
from the models.dev source repository (github.com/anomalyco/models.dev,
``providers/<provider>/models/<model>.toml``, at the commit noted on each entry, where ``.../``
stands for ``providers/``).  Prices are dollars per million tokens.  A model missing here is
refused with a 400, as Autumn refuses a model models.dev does not list; ``custom/<name>`` models
are priced from the credit system's ``model_markups`` entry (its ``input_cost`` and
``output_cost``), as Autumn prices them.

The conversion follows Autumn's: a context tier applies when the request's input (text, cache reads
and cache writes) exceeds the tier's size, the largest such tier winning; pools without their own
price use the text input rate (cache reads and writes, audio input) or the text output rate (audio
output, reasoning); the cost is the base cost times ``1 + markup / 100``, the markup being the
model's, else the provider's, else the credit system's default, else none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reference_server.engine.entitlements import FeatureMarkups
from reference_server.errors import ApiError

MODELS_DEV: dict[str, dict[str, dict[str, Any]]] = {
    "anthropic": {
        # .../anthropic/models/claude-sonnet-4-20250514.toml @ 0f899d76d45b33f3d10b189f4b972e7df6c2b6b2
        "claude-sonnet-4-20250514": {"input": 3.00, "output": 15.00, "cache_read": 0.30, "cache_write": 3.75},
        # .../anthropic/models/claude-sonnet-4-5-20250929.toml @ 7fbe22429db68bfe4b3219fd7d8604105a7419d1
        "claude-sonnet-4-5-20250929": {
            "input": 3.00,
            "output": 15.00,
            "cache_read": 0.30,
            "cache_write": 3.75,
        },
        # .../anthropic/models/claude-haiku-4-5.toml @ 482fb019a4847290b37990da929dc707d9243dca
        "claude-haiku-4-5": {"input": 1, "output": 5, "cache_read": 0.1, "cache_write": 1.25},
    },
    "openai": {
        # .../openai/models/gpt-5-mini.toml @ 8734c00cd030e035b6aa2ebd3cf9ec98b54026bf
        "gpt-5-mini": {"input": 0.25, "output": 2.00, "cache_read": 0.025},
    },
    "google": {
        # .../google/models/gemini-2.5-pro.toml @ 0760ceffd3e02115e6480d9a0be7992c330c2f35
        "gemini-2.5-pro": {
            "input": 1.25,
            "output": 10.00,
            "cache_read": 0.125,
            "tiers": [{"size": 200_000, "input": 2.50, "output": 15.00, "cache_read": 0.25}],
        },
    },
    "openrouter": {
        # .../openrouter/models/openai/gpt-4o.toml @ 22416dda645c4d67efab78a9809753dfead207d7
        "openai/gpt-4o": {"input": 2.5, "output": 10},
    },
}

CUSTOM_PROVIDER = "custom"
LARGE_CONTEXT = 200_000
"""models.dev's older ``context_over_200k`` overlay applies above this many input tokens."""

POOLS = ("input", "output", "cache_read", "cache_write", "audio_input", "audio_output", "reasoning")


@dataclass(frozen=True)
class Pricing:
    """One request's charge: what ``track_tokens`` tracks and records on the event."""

    cost: float
    base_cost: float
    markup: float
    markup_source: str  # model | provider | default | none
    tier_applied: bool
    rates: dict[str, float]


def split_model_id(model_id: str) -> tuple[str, str]:
    provider, _, model = model_id.partition("/")
    return provider, model


def _model_not_found(model_id: str) -> ApiError:
    return ApiError(400, "invalid_request", f"Model {model_id} not found in models.dev pricing data")


def _effective(cost: dict[str, Any], total_input: int) -> tuple[dict[str, Any], bool]:
    """The base rates with the active context tier laid over them."""
    tiers = cost.get("tiers") or []
    if tiers:
        over = [t for t in tiers if total_input > t["size"]]
        if not over:
            return cost, False
        tier = max(over, key=lambda t: t["size"])
    elif cost.get("context_over_200k") and total_input > LARGE_CONTEXT:
        tier = cost["context_over_200k"]
    else:
        return cost, False
    out = dict(cost)
    out.update(input=tier["input"], output=tier["output"])
    for pool in ("cache_read", "cache_write"):
        if tier.get(pool) is not None:
            out[pool] = tier[pool]
    return out, True


def _rates(cost: dict[str, Any]) -> dict[str, float]:
    def rate(key: str, fallback: str) -> float:
        value = cost.get(key)
        return float(cost[fallback] if value is None else value)

    return {
        "input": float(cost["input"]),
        "output": float(cost["output"]),
        "cache_read": rate("cache_read", "input"),
        "cache_write": rate("cache_write", "input"),
        "audio_input": rate("input_audio", "input"),
        "audio_output": rate("output_audio", "output"),
        "reasoning": rate("reasoning", "output"),
    }


def _markup(model_id: str, markups: FeatureMarkups) -> tuple[float, str]:
    model_entry = (markups.get("model_markups") or {}).get(model_id)
    if model_entry is not None and (model_markup := model_entry.get("markup")) is not None:
        return float(model_markup), "model"
    provider, _ = split_model_id(model_id)
    provider_entry = (markups.get("provider_markups") or {}).get(provider)
    if provider_entry is not None and provider_entry.get("markup") is not None:
        return float(provider_entry["markup"]), "provider"
    if (default_markup := markups.get("default_markup")) is not None:
        return float(default_markup), "default"
    return 0.0, "none"


def price_tokens(model_id: str, markups: FeatureMarkups | None, tokens: dict[str, int]) -> Pricing:
    """Dollars for ``tokens`` (pool -> count, pools as in :data:`POOLS`) of ``model_id``."""
    markups = markups or {}
    provider, model = split_model_id(model_id)
    markup, source = _markup(model_id, markups)
    if provider == CUSTOM_PROVIDER and model:
        entry = (markups.get("model_markups") or {}).get(model_id) or {}
        input_cost, output_cost = entry.get("input_cost"), entry.get("output_cost")
        if input_cost is None or output_cost is None:
            raise ApiError(
                400,
                "invalid_request",
                f"Custom model {model_id} is missing input_cost or output_cost in model_markups",
            )
        cost: dict[str, Any] = {"input": input_cost, "output": output_cost}
        tokens = {"input": tokens.get("input", 0), "output": tokens.get("output", 0)}
    else:
        found = MODELS_DEV.get(provider, {}).get(model) if model else None
        if found is None:
            raise _model_not_found(model_id)
        cost = found
    total_input = tokens.get("input", 0) + tokens.get("cache_read", 0) + tokens.get("cache_write", 0)
    effective, tier_applied = _effective(cost, total_input)
    rates = _rates(effective)
    base = sum((Decimal(str(rates[p])) * tokens.get(p, 0) for p in POOLS), Decimal(0)) / Decimal(1_000_000)
    charged = base * (Decimal(1) + Decimal(str(markup)) / Decimal(100))
    return Pricing(float(charged), float(base), markup, source, tier_applied, rates)
