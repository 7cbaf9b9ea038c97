"""Derivation of the API's Balance and Flag objects from sources (billing-semantics §1.5)."""

from __future__ import annotations

from autumn_sdk._generated.json_types import (
    BalanceBreakdownJson,
    BalanceBreakdownPriceJson,
    BalanceJson,
    BalanceRolloverJson,
    CustomerFlagJson,
    FeatureJson,
)
from reference_server.engine.entitlements import Feature, Source, markups_set, num, r10


def feature_json(f: Feature) -> FeatureJson:
    out: FeatureJson = {
        "id": f.id,
        "name": f.name or f.id,
        "type": f.type,
        "consumable": f.consumable,
        "event_names": list(f.event_names),
        "credit_schema": [
            {"metered_feature_id": c["metered_feature_id"], "credit_cost": c["credit_cost"]}
            for c in f.credit_schema
        ],
        "archived": f.archived,
    }
    if f.display:
        out["display"] = f.display
    markups = markups_set(f.markups)  # AI credit systems: only those set, as Autumn answers them
    if "default_markup" in markups:
        out["default_markup"] = markups["default_markup"]
    if "provider_markups" in markups:
        out["provider_markups"] = markups["provider_markups"]
    if "model_markups" in markups:
        out["model_markups"] = markups["model_markups"]
    return out


def _price_json(s: Source) -> BalanceBreakdownPriceJson | None:
    p = s.price
    if not p:
        return None
    out: BalanceBreakdownPriceJson = {
        "billing_units": p.get("billing_units", 1),
        "billing_method": p["billing_method"],
        "max_purchase": p.get("max_purchase"),
    }
    if p.get("tiers"):
        out["tiers"] = p["tiers"]
        if p.get("tier_behavior"):
            out["tier_behavior"] = p["tier_behavior"]
    else:
        out["amount"] = p.get("amount", 0)
    return out


def breakdown_json(s: Source) -> BalanceBreakdownJson:
    """One source as a row of its Balance's ``breakdown``."""
    return {
        "id": s.id,
        "plan_id": s.plan_id,
        "included_grant": num(s.included_grant),
        "prepaid_grant": num(s.prepaid),
        "remaining": num(max(0.0, s.balance)),
        "usage": num(s.usage),
        "unlimited": s.unlimited,
        "reset": s.reset_json(),
        "price": _price_json(s),
        "expires_at": s.expires_at,
    }


def derive_balance(
    feature: Feature, sources: list[Source], now_ms: int, expand_feature: bool = False
) -> BalanceJson | None:
    """The Balance object of ``feature`` over the given (already scoped) sources; None if none."""
    live = [s for s in sources if s.is_live(now_ms) and not s.is_flag]
    if not live:
        return None
    unlimited = [s for s in live if s.unlimited]
    out: BalanceJson
    if unlimited:
        used = num(sum(s.usage for s in unlimited))
        row = breakdown_json(unlimited[0])
        row["included_grant"] = 0
        row["prepaid_grant"] = 0
        row["remaining"] = 0
        row["usage"] = used
        row["unlimited"] = True
        out = {
            "feature_id": feature.id,
            "granted": 0,
            "remaining": 0,
            "usage": used,
            "unlimited": True,
            "overage_allowed": False,
            "max_purchase": None,
            "next_reset_at": None,
            "breakdown": [row],
        }
    else:
        granted = remaining = usage = 0.0
        rollovers: list[BalanceRolloverJson] = []
        has_rollover_cfg = False
        for s in live:
            granted += s.included_grant + s.prepaid
            remaining += max(0.0, s.balance)
            usage += s.usage
            if s.rollover_config:
                has_rollover_cfg = True
            for r in s.live_rollovers(now_ms):
                granted += r.balance + r.usage
                remaining += r.balance
                usage += r.usage
                rollovers.append(
                    {
                        "granted": num(r.balance + r.usage),  # as rolled over, before any use
                        "balance": num(r.balance),
                        "expires_at": r.expires_at or 0,
                    }
                )
        out = {
            "feature_id": feature.id,
            "granted": num(granted),
            "remaining": num(max(0.0, remaining)),
            "usage": num(usage),
            "unlimited": False,
            "overage_allowed": any(s.pay_per_use for s in live),
            "max_purchase": _max_purchase(live),
            "next_reset_at": min(
                (s.next_reset_at for s in live if s.next_reset_at is not None), default=None
            ),
            "breakdown": [breakdown_json(s) for s in live],
        }
        if has_rollover_cfg or rollovers:
            out["rollovers"] = rollovers
    if expand_feature:
        out["feature"] = feature_json(feature)
    return out


def _max_purchase(sources: list[Source]) -> float | None:
    priced = [s for s in sources if s.price]
    if not priced:
        return None
    total = 0.0
    for s in priced:
        if s.max_purchase is None:
            return None
        total += s.max_purchase
    return num(total)


def derive_flag(
    feature: Feature, sources: list[Source], now_ms: int, expand_feature: bool = False
) -> CustomerFlagJson | None:
    live = [s for s in sources if s.is_flag and s.is_live(now_ms)]
    if not live:
        return None
    s = live[0]
    out: CustomerFlagJson = {
        "id": s.id,
        "plan_id": s.plan_id,
        "expires_at": s.expires_at,
        "feature_id": feature.id,
    }
    if expand_feature:
        out["feature"] = feature_json(feature)
    return out


def current_overage(sources: list[Source]) -> float:
    return r10(sum(max(0.0, -s.balance) for s in sources if not s.unlimited))
