"""Referral codes, and redeeming referral and promo codes (§8); the rewards themselves: :mod:`.rewards`."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import (
    CreateReferralCodeResponseJson,
    RedeemReferralCodeReferrerJson,
    RedeemReferralCodeResponseJson,
    RedeemRewardCodeEntitlementsGrantedJson,
    RedeemRewardCodeResponseJson,
)
from autumn_sdk._generated.models import (
    CreateReferralCodeParams,
    RedeemReferralCodeParams,
    RedeemRewardCodeParams,
)
from reference_server.engine.billing.money import DEFAULT_CURRENCY, major_to_minor, to_decimal
from reference_server.engine.intervals import boundary
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.maintenance import require_customer
from reference_server.service.subscriptions import activate_plan, load_instances
from reference_server.store import rewards as rewards_repo
from reference_server.store.catalog import Catalog
from reference_server.store.customers import customer_at
from reference_server.store.subjects import CustomerRow, insert_source
from reference_server.store.subscription_discounts import add_discount, discounts_of

CODE_ALPHABET = string.ascii_uppercase + string.digits


def _program(conn: Connection, ctx: Ctx, program_id: str) -> Any:
    row = rewards_repo.find_program(conn, ctx.tenant, program_id)
    if row is None:
        raise ApiError(404, "reward_program_not_found", f"Reward program {program_id} not found")
    return row


def create_code(ctx: Ctx, params: CreateReferralCodeParams) -> CreateReferralCodeResponseJson:
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        program = _program(conn, ctx, params.program_id)
        existing = rewards_repo.referral_code_of(conn, program.pk, customer.pk)
        customer_id = customer.id or params.customer_id  # found by that id
        if existing is not None:
            return {"code": existing.code, "customer_id": customer_id, "created_at": existing.created_at}
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
            try:
                with conn.begin_nested():
                    rewards_repo.insert_referral_code(
                        conn,
                        ctx.tenant,
                        code=code,
                        program_pk=program.pk,
                        customer_pk=customer.pk,
                        created_at=now,
                    )
                return {"code": code, "customer_id": customer_id, "created_at": now}
            except IntegrityError:
                continue
    raise ApiError(500, "internal_error", "Could not allocate a unique referral code")


def _grant(
    conn: Connection, cat: Catalog, customer_pk: int, reward: Any, now: int
) -> list[RedeemRewardCodeEntitlementsGrantedJson]:
    """A feature grant's balances, each expiring ``expiry.length`` periods from now when it has one."""
    granted: list[RedeemRewardCodeEntitlementsGrantedJson] = []
    for g in reward.grants or []:
        feature = cat.features.get(g["feature_id"])
        if feature is None:
            continue
        qty = float(g.get("included") or 0)
        expiry = g.get("expiry")
        if feature.type == "boolean":
            insert_source(
                conn,
                {"customer_pk": customer_pk, "feature_id": feature.id, "is_flag": True, "created_at": now},
            )
        else:
            insert_source(
                conn,
                {
                    "customer_pk": customer_pk,
                    "feature_id": feature.id,
                    "allowance": qty,
                    "balance": qty,
                    "interval": None if not feature.consumable else "one_off",
                    "continuous": not feature.consumable,
                    "anchor_at": now,
                    "created_at": now,
                    "expires_at": boundary(now, expiry["type"], int(expiry["length"]), 1) if expiry else None,
                },
            )
        granted.append({"feature_id": feature.id, "balance": qty})
    return granted


def _apply_reward(
    conn: Connection, ctx: Ctx, cat: Catalog, reward: Any, customer: CustomerRow, now: int
) -> None:
    if reward.type == "feature_grant":
        _grant(conn, cat, customer.pk, reward, now)
    elif reward.type == "free_product" and reward.free_plan_id in cat.plans:
        activate_plan(conn, cat, customer=customer, entity=None, plan=cat.plans[reward.free_plan_id], now=now)


def _person(c: CustomerRow) -> RedeemReferralCodeReferrerJson:
    return {"id": c.id, "name": c.name, "email": c.email, "created_at": c.created_at}


def redeem_code(ctx: Ctx, params: RedeemReferralCodeParams) -> RedeemReferralCodeResponseJson:
    code = params.code.upper()
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        redeemer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        rc = rewards_repo.find_referral_code(conn, ctx.tenant, code)
        if rc is None:
            raise ApiError(404, "referral_code_not_found", "Referral code not found")
        program = rewards_repo.program_row(conn, rc.program_pk)
        referrer = customer_at(conn, rc.customer_pk)
        if referrer.pk == redeemer.pk or (
            referrer.fingerprint is not None and referrer.fingerprint == redeemer.fingerprint
        ):
            raise ApiError(400, "customer_cannot_redeem_own_code", "Customer cannot redeem their own code")
        count = rewards_repo.referral_redemptions(conn, code, program.pk)
        if program.max_redemptions is not None and count >= program.max_redemptions:
            raise ApiError(
                400,
                "referral_code_max_redemptions_reached",
                "Referral code has reached its maximum number of redemptions",
            )
        if rewards_repo.redeemed_referral(conn, program.pk, redeemer.pk):
            raise ApiError(
                400,
                "customer_already_redeemed_referral_code",
                "Customer has already redeemed a referral code in this program",
            )
        reward = rewards_repo.reward_by_id(conn, ctx.tenant, program.reward_id)
        applied = program.trigger == "customer_creation"
        if applied:
            _apply_reward(conn, ctx, cat, reward, referrer, now)
            if program.received_by == "all":
                _apply_reward(conn, ctx, cat, reward, redeemer, now)
        rid = "rr_" + secrets.token_hex(10)
        rewards_repo.insert_redemption(
            conn,
            ctx.tenant,
            {
                "id": rid,
                "kind": "referral",
                "reward_pk": reward.pk,
                "program_pk": program.pk,
                "code": code,
                "referrer_pk": referrer.pk,
                "customer_pk": redeemer.pk,
                "applied": applied,
                "created_at": now,
            },
        )
        return {
            "id": rid,
            "customer_id": params.customer_id,  # the redeemer's id, as it was looked up
            "reward_id": reward.id,
            "referrer": _person(referrer),
            "redeemer": _person(redeemer),
        }


COUPON_TYPES = ("percentage_discount", "fixed_discount", "invoice_credits")


def _apply_coupon(conn: Connection, cat: Catalog, customer_pk: int, reward: Any, now: int) -> None:
    """A coupon's promo code redeemed: the coupon goes on the customer's active subscriptions with a
    recurring price that it applies to (an amount or invoice credit on the first only, so it is taken
    once), from their next invoice on, as a ``discounts`` of a billing change keeps it
    (billing/discounts.py); 400 ``invalid_reward`` when there is none."""
    plan_ids = reward.plan_ids
    targets = [
        inst
        for inst in load_instances(conn, customer_pk)
        if inst.status == "active"
        and (plan := cat.plans_by_pk.get(inst.plan_pk)) is not None
        and not plan.is_free
        and not plan.is_one_off
        and (plan_ids is None or inst.plan_id in plan_ids)
        and all(d.reward_id != reward.id for d in discounts_of(conn, inst.pk))
    ]
    if not targets:
        raise ApiError(
            400,
            "invalid_reward",
            f"Reward {reward.id} is a coupon and the customer has no paid subscription it applies to",
        )
    if reward.type != "percentage_discount":
        targets = targets[:1]
    duration = reward.duration_type or "one_off"
    length = reward.duration_length if duration == "months" else None
    value = to_decimal(reward.discount_value)
    for inst in targets:
        add_discount(
            conn,
            customer_pk,
            inst.pk,
            {
                "reward_id": reward.id,
                "name": reward.name or reward.id,
                "type": reward.type,
                "value": str(value),
                "plan_ids": plan_ids,
                "currency": DEFAULT_CURRENCY,
                "duration_type": duration,
                "duration_length": length,
                "periods_left": None if duration == "forever" else max(1, length or 1),
                "credit_left": major_to_minor(value) if reward.type == "invoice_credits" else None,
                "total_discount": 0,
                "started_at": now,
                "ended_at": None,
            },
        )


def redeem_reward(ctx: Ctx, params: RedeemRewardCodeParams) -> RedeemRewardCodeResponseJson:
    code = params.code
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        customer, now = require_customer(ctx, conn, cat, params.customer_id, lock=True)
        found = rewards_repo.reward_by_promo_code(conn, ctx.tenant, code)
        if found is None:
            raise ApiError(404, "reward_not_found", f"Reward with code {code} not found")
        match, promo = found
        coupon = match.type in COUPON_TYPES
        if not coupon and (match.type != "feature_grant" or not match.grants):
            raise ApiError(400, "invalid_reward", f"Reward {match.id} does not grant features")
        used = rewards_repo.promo_redemptions(conn, match.pk, code)
        limit = promo.get("global_max_redemption")
        if limit is not None and used >= int(limit):
            raise ApiError(
                400,
                "referral_code_max_redemptions_reached",
                f"Code {code} has reached its maximum number of redemptions",
            )
        if rewards_repo.redeemed_promo(conn, match.pk, customer.pk):
            raise ApiError(
                400, "customer_already_redeemed_referral_code", f"Customer has already redeemed code {code}"
            )
        granted = [] if coupon else _grant(conn, cat, customer.pk, match, now)
        if coupon:
            _apply_coupon(conn, cat, customer.pk, match, now)
        rewards_repo.insert_redemption(
            conn,
            ctx.tenant,
            {
                "id": "rd_" + secrets.token_hex(10),
                "kind": "promo",
                "reward_pk": match.pk,
                "code": code.upper(),
                "customer_pk": customer.pk,
                "applied": True,
                "created_at": now,
            },
        )
        return {"reward_id": match.id, "entitlements_granted": granted}
