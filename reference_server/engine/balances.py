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
    return _breakdown(s, s.included_grant, s.usage)


def _breakdown(s: Source, included_grant: float, usage: float) -> BalanceBreakdownJson:
    """:func:`breakdown_json` given the source's ``included_grant`` and ``usage`` (computed once)."""
    return {
        "id": s.id,
        "plan_id": s.plan_id,
        "included_grant": num(included_grant),
        "prepaid_grant": num(s.prepaid),
        "remaining": num(max(0.0, s.balance)),
        "usage": num(usage),
        "unlimited": s.unlimited,
        "reset": s.reset_json(),
        "price": _price_json(s) if s.price else None,
        "expires_at": s.expires_at,
    }


def derive_balance(
    feature: Feature, sources: list[Source], now_ms: int, expand_feature: bool = False
) -> BalanceJson | None:
    """The Balance object of ``feature`` over the given (already scoped) sources; None if none."""
    live: list[Source] = []
    any_unlimited = False
    for s in sources:  # one loop, not two comprehensions: most balances have a single source
        if (s.expires_at is None or s.expires_at > now_ms) and not s.is_flag:
            live.append(s)
            if s.unlimited:
                any_unlimited = True
    if not live:
        return None
    out: BalanceJson
    if any_unlimited:
        unlimited = [s for s in live if s.unlimited]
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
        # One pass over the live sources: the totals, the breakdown rows (each source's
        # included_grant and usage computed once), pay-per-use, max_purchase and the next reset.
        granted = remaining = usage = 0.0
        rollovers: list[BalanceRolloverJson] = []
        has_rollover_cfg = overage_allowed = False
        next_reset_at: int | None = None
        priced = unbounded = False
        purchasable = 0.0
        breakdown: list[BalanceBreakdownJson] = []
        for s in live:
            included = s.allowance + s.adjustment  # Source.included_grant
            used_here = r10(included + s.prepaid - s.balance)  # Source.usage
            granted += included + s.prepaid
            remaining += max(0.0, s.balance)
            usage += used_here
            if s.usage_allowed:
                overage_allowed = True
            if s.next_reset_at is not None and (next_reset_at is None or s.next_reset_at < next_reset_at):
                next_reset_at = s.next_reset_at
            if s.price:
                priced = True
                if s.max_purchase is None:
                    unbounded = True
                elif not unbounded:
                    purchasable += s.max_purchase
            if s.rollover_config:
                has_rollover_cfg = True
            if s.rollovers:
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
            breakdown.append(_breakdown(s, included, used_here))
        out = {
            "feature_id": feature.id,
            "granted": num(granted),
            "remaining": num(max(0.0, remaining)),
            "usage": num(usage),
            "unlimited": False,
            "overage_allowed": overage_allowed,
            "max_purchase": num(purchasable) if priced and not unbounded else None,
            "next_reset_at": next_reset_at,
            "breakdown": breakdown,
        }
        if has_rollover_cfg or rollovers:
            out["rollovers"] = rollovers
    if expand_feature:
        out["feature"] = feature_json(feature)
    return out


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
