"""The in-memory shapes the engine works on, loaded from and written back to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, overload

from autumn_sdk._generated.json_types import (
    BalanceBreakdownResetJson,
    CreateFeatureModelMarkupJson,
    CreateFeatureProviderMarkupJson,
    CreditSchemaEntryJson,
    FeatureDisplayJson,
)

FeatureType = Literal["boolean", "metered", "credit_system", "ai_credit_system"]
ResetInterval = Literal["one_off", "minute", "hour", "day", "week", "month", "quarter", "semi_annual", "year"]


class FeatureMarkups(TypedDict, total=False):
    """An AI credit system's markups as stored (``features.markups``) and answered: those set."""

    default_markup: int | float
    provider_markups: dict[str, CreateFeatureProviderMarkupJson]
    model_markups: dict[str, CreateFeatureModelMarkupJson]


def markups_set(markups: FeatureMarkups | None) -> FeatureMarkups:
    """An AI credit system's markups that are set (not null): what is stored and answered."""
    out: FeatureMarkups = {}
    if markups is None:
        return out
    if (default_markup := markups.get("default_markup")) is not None:
        out["default_markup"] = default_markup
    if (provider_markups := markups.get("provider_markups")) is not None:
        out["provider_markups"] = provider_markups
    if (model_markups := markups.get("model_markups")) is not None:
        out["model_markups"] = model_markups
    return out


def r10(x: float) -> float:
    """Round to 10 decimal places, as Autumn does, so 100 - 23.47 reads 76.53."""
    if x.__class__ is float and x.is_integer():
        return x or 0.0  # already round (and -0.0 reads 0.0); round() formats digits, 0.5 us a call
    v = round(x, 10)
    return 0.0 if v == 0 else v


@overload
def num(x: float) -> float | int: ...


@overload
def num(x: None) -> None: ...


def num(x: float | int | None) -> float | int | None:
    """A number as Autumn writes it in JSON: integral values without a decimal point."""
    if x is None or isinstance(x, int):
        return x
    if x.__class__ is float and x.is_integer():
        return int(x)  # as int(r10(x)): an integral float is already round
    v = r10(x)
    return int(v) if v.is_integer() else v


@dataclass
class Feature:
    id: str
    name: str | None
    type: FeatureType
    consumable: bool
    event_names: list[str] = field(default_factory=list)
    credit_schema: list[CreditSchemaEntryJson] = field(default_factory=list)
    display: FeatureDisplayJson | None = None
    archived: bool = False
    created_at: int = 0
    markups: FeatureMarkups | None = None
    """AI credit systems: ``default_markup``, ``provider_markups`` and ``model_markups`` as given."""

    def credit_cost(self, metered_feature_id: str) -> float | None:
        for entry in self.credit_schema:
            if entry["metered_feature_id"] == metered_feature_id:
                return float(entry["credit_cost"])
        return None


@dataclass
class Rollover:
    id: str
    balance: float
    usage: float
    expires_at: int | None  # None: never expires
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "balance": self.balance,
            "usage": self.usage,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rollover:
        return cls(d["id"], float(d["balance"]), float(d["usage"]), d.get("expires_at"), int(d["created_at"]))


@dataclass
class Source:
    """One balance source: a plan item instance or a loose balance (one breakdown row)."""

    pk: int
    id: str  # public id: balance_id given at creation, else internal id
    feature_id: str
    plan_id: str | None
    customer_plan_pk: int | None
    entity_pk: int | None
    entity_id: str | None
    is_flag: bool
    allowance: float
    adjustment: float
    prepaid: float
    balance: float
    unlimited: bool
    usage_allowed: bool
    max_purchase: float | None
    interval: ResetInterval | None  # None for continuous features; "one_off" for lifetime
    interval_count: int
    anchor_at: int | None
    next_reset_at: int | None
    expires_at: int | None
    rollover_config: dict[str, Any] | None
    price: dict[str, Any] | None
    is_addon: bool
    continuous: bool
    created_at: int
    rollovers: list[Rollover] = field(default_factory=list)
    dirty: bool = False
    customer_pk: int = 0

    @property
    def start_balance(self) -> float:
        """What a reset restores and the ceiling a refund can lift the balance to."""
        return self.allowance + self.adjustment + self.prepaid

    @property
    def included_grant(self) -> float:
        return self.allowance + self.adjustment

    @property
    def usage(self) -> float:
        return r10(self.included_grant + self.prepaid - self.balance)

    @property
    def pay_per_use(self) -> bool:
        return self.usage_allowed

    def live_rollovers(self, now_ms: int) -> list[Rollover]:
        return [r for r in self.rollovers if r.expires_at is None or r.expires_at > now_ms]

    def is_live(self, now_ms: int) -> bool:
        return self.expires_at is None or self.expires_at > now_ms

    def reset_json(self) -> BalanceBreakdownResetJson | None:
        if self.continuous:
            return None
        if self.interval is None or self.interval == "one_off":
            return {"interval": "one_off", "resets_at": None}
        out: BalanceBreakdownResetJson = {"interval": self.interval, "resets_at": self.next_reset_at}
        if self.interval_count != 1:
            out["interval_count"] = self.interval_count
        return out


@dataclass
class Controls:
    """The billing controls that change check/track behaviour for one feature."""

    overage_allowed: bool | None = None  # None: no control set
    spend_limit: float | None = None  # overage_limit of an enabled spend limit
    spend_limit_percent: bool = False  # limit_type "usage_percentage": spend_limit is a percent

    def spend_cap(self, sources: list[Source]) -> float | None:
        """The overage cap in units: a percent limit is of the main plans' allowance of the feature.

        As in Autumn, a percent limit of a subject with no main-plan allowance caps nothing.
        """
        if self.spend_limit is None or not self.spend_limit_percent:
            return self.spend_limit
        allowance = sum(s.allowance for s in sources if s.customer_plan_pk is not None and not s.is_addon)
        return r10(self.spend_limit / 100 * allowance) if allowance > 0 else None
