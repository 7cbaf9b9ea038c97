"""Rewards (coupons and feature grants) and referral programs: Autumn's current CRUD (§8).

A reward is either a **coupon** (``percentage_discount`` / ``fixed_discount``, a duration, the plans
it applies to) or a **feature grant** (balances given on redemption, each with an optional expiry);
both carry promo codes.  A referral program says which reward a redeemed referral code gives, when
(``redeem_on``) and to whom (``received_by``).  Redemption itself is :mod:`.referrals`.

Autumn's rules kept here: a create body carries exactly one of ``coupon`` / ``feature_grant``
(400 ``invalid_reward``); a reward id or a promo code already used gives 400
``duplicate_reward_id`` / ``duplicate_promo_code``; boolean features are granted with
``included: null`` and the others with a number (400 ``invalid_reward``); an update must describe
the stored kind of reward; a reward linked to a referral program cannot be deleted (400
``invalid_request`` naming the programs); ``free_product`` rewards of the earlier API are not
served (400 ``invalid_request``) and are left out of ``rewards.list``; a ``checkout`` program needs
plans and a positive ``max_redemptions`` (400 ``invalid_request``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from autumn_sdk._generated.json_types import (
    CreateReferralProgramResponseJson,
    CreateRewardCouponResponseJson,
    CreateRewardFeatureGrantResponseJson,
    CreateRewardResponseJson,
    ListReferralProgramsResponseJson,
    RewardsListResponseJson,
    SuccessResponseJson,
)
from autumn_sdk._generated.models import (
    CreateReferralProgramParams,
    CreateRewardCouponDuration,
    CreateRewardCouponPromoCode,
    CreateRewardCouponRequest,
    CreateRewardFeatureGrantGrant,
    CreateRewardFeatureGrantPromoCode,
    CreateRewardFeatureGrantRequest,
    CreateRewardParams,
    DeleteReferralProgramParams,
    DeleteRewardParams,
    GetReferralProgramParams,
    GetRewardParams,
    UpdateReferralProgramParams,
    UpdateRewardCouponRequest,
    UpdateRewardFeatureGrantRequest,
    UpdateRewardParams,
)
from reference_server.errors import ApiError, feature_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.service.extra_params import NoParams
from reference_server.store import rewards as rewards_repo
from reference_server.store.catalog import Catalog

COUPON_TYPES = ("percentage_discount", "fixed_discount", "invoice_credits")
MAX_LISTED = 500
"""``rewards.list`` returns at most this many rewards, newest first (as Autumn caps it)."""


def _bad(message: str) -> ApiError:
    return invalid(message, "invalid_inputs")


def _number(value: Any) -> Any:
    """A stored float that is whole goes back out as an integer (``20``, not ``20.0``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unique(values: list[str], field: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise _bad(f"{field}: {what} must be unique")


def _positive_int(value: int | None, field: str) -> int:
    if value is None or value <= 0:
        raise _bad(f"{field}: must be a positive integer")
    return value


# --------------------------------------------------------------------------------- reward shapes


def _coupon_json(row: Any) -> CreateRewardCouponResponseJson:
    duration: Literal["one_off", "months", "forever"] = row.duration_type or "one_off"
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "value": _number(row.discount_value),
        "duration": {"type": duration, "length": row.duration_length if duration == "months" else None},
        "plan_ids": row.plan_ids,
        "promo_codes": [
            {
                "code": p["code"],
                "global_max_redemption": p.get("global_max_redemption"),
                "first_time_transaction": bool(p.get("first_time_transaction") or False),
            }
            for p in row.promo_codes or []
        ],
        "created_at": row.created_at,
    }


def _feature_grant_json(row: Any) -> CreateRewardFeatureGrantResponseJson:
    return {
        "id": row.id,
        "name": row.name,
        "grants": [
            {"feature_id": g["feature_id"], "included": g.get("included"), "expiry": g.get("expiry")}
            for g in row.grants or []
        ],
        "promo_codes": [
            {"code": p["code"], "max_uses": p.get("global_max_redemption")} for p in row.promo_codes or []
        ],
        "created_at": row.created_at,
    }


def _reward_json(row: Any) -> CreateRewardResponseJson:
    if row.type == "feature_grant":
        return {"feature_grant": _feature_grant_json(row)}
    return {"coupon": _coupon_json(row)}


# --------------------------------------------------------------------------------- validation


def _grants(cat: Catalog, grants: Sequence[CreateRewardFeatureGrantGrant]) -> list[dict[str, Any]]:
    """The grants of a feature grant as stored: each feature known, ``included`` fitting its type."""
    if not grants:
        raise _bad("feature_grant.grants: must have at least 1 item")
    _unique([g.feature_id for g in grants], "feature_grant.grants", "Feature IDs")
    out = []
    for g in grants:
        feature = cat.features.get(g.feature_id)
        if feature is None:
            raise feature_not_found(g.feature_id)
        included = g.included
        if (feature.type == "boolean") != (included is None):
            message = (
                f"Feature {feature.id} must have included set to null"
                if feature.type == "boolean"
                else f"Feature {feature.id} must have a positive included value"
            )
            raise ApiError(400, "invalid_reward", message)
        if included is not None and included < 0:
            raise _bad("feature_grant.grants.included: must be at least 0")
        expiry = None
        if g.expiry is not None:
            expiry = {
                "type": g.expiry.type,
                "length": _positive_int(g.expiry.length, "feature_grant.grants.expiry.length"),
            }
        out.append({"feature_id": feature.id, "included": included, "expiry": expiry})
    return out


def _feature_grant_promos(promos: Sequence[CreateRewardFeatureGrantPromoCode]) -> list[dict[str, Any]]:
    if not promos:
        raise _bad("feature_grant.promo_codes: must have at least 1 item")
    out = []
    for p in promos:
        if p.max_uses is not None:
            _positive_int(p.max_uses, "feature_grant.promo_codes.max_uses")
        out.append({"code": p.code, "global_max_redemption": p.max_uses, "first_time_transaction": None})
    return out


def _coupon_promos(promos: Sequence[CreateRewardCouponPromoCode]) -> list[dict[str, Any]]:
    out = []
    for p in promos:
        if p.global_max_redemption is not None:
            _positive_int(p.global_max_redemption, "coupon.promo_codes.global_max_redemption")
        out.append(
            {
                "code": p.code,
                "global_max_redemption": p.global_max_redemption,
                "first_time_transaction": p.first_time_transaction,
            }
        )
    return out


def _plan_ids(cat: Catalog, plan_ids: list[str] | None) -> list[str] | None:
    if plan_ids is None:
        return None
    if not plan_ids:
        raise _bad("coupon.plan_ids: must have at least 1 item")
    _unique(plan_ids, "coupon.plan_ids", "Plan IDs")
    missing = [p for p in plan_ids if p not in cat.plans]
    if missing:
        raise invalid(f"Plans not found: {', '.join(missing)}")
    return list(plan_ids)


def _duration(duration: CreateRewardCouponDuration) -> tuple[str, int | None]:
    if duration.type == "months":
        return duration.type, _positive_int(duration.length, "coupon.duration.length")
    if duration.length is not None:
        raise _bad(f"coupon.duration.length: must be null for {duration.type}")
    return duration.type, None


def _value(ctype: str, value: int | float) -> float:
    if value <= 0:
        raise _bad("coupon.value: must be greater than 0")
    if ctype == "percentage_discount" and value > 100:
        raise _bad("coupon.value: a percentage discount must be at most 100")
    return float(value)


def _assert_unique(
    conn: Connection, ctx: Ctx, reward_id: str, promos: list[dict[str, Any]], pk: int | None
) -> None:
    """Promo codes are unique within the reward and across the env's rewards, as is the reward id."""
    codes = [str(p["code"]) for p in promos]
    folded = [c.upper() for c in codes]
    if len(set(folded)) != len(folded):
        raise ApiError(400, "duplicate_promo_code", "Promo codes must be unique within a reward")
    # The organization's row is the lock: two rewards written at once cannot both take a code.
    rewards_repo.lock_org(conn, ctx.tenant)
    rows = rewards_repo.reward_codes(conn, ctx.tenant)
    for row in rows:
        if row.pk == pk:
            continue
        if row.id == reward_id:
            raise ApiError(400, "duplicate_reward_id", f"Reward with id {reward_id} already exists")
        for p in row.promo_codes or []:
            code = str(p.get("code", ""))
            if code.upper() in folded:
                raise ApiError(
                    400, "duplicate_promo_code", f"Promo code {code} is already in use by another reward"
                )


def _require_reward(conn: Connection, ctx: Ctx, reward_id: str, *, lock: bool = False) -> Any:
    row = rewards_repo.find_reward(conn, ctx.tenant, reward_id, lock=lock)
    if row is None:
        raise ApiError(404, "reward_not_found", f"Reward {reward_id} not found")
    if row.type == "free_product":
        raise invalid(f"Reward {reward_id} is a free product reward, which is not available on the API")
    return row


def _reward_row(conn: Connection, pk: int) -> Any:
    return rewards_repo.reward_row(conn, pk)


# --------------------------------------------------------------------------------- rewards.*


def create_reward(ctx: Ctx, params: CreateRewardParams) -> CreateRewardResponseJson:
    """Create a coupon or a feature grant (exactly one of ``coupon`` / ``feature_grant``)."""
    coupon, grant = params.coupon, params.feature_grant
    spec: CreateRewardCouponRequest | CreateRewardFeatureGrantRequest
    if coupon is not None and grant is None:
        spec = coupon
    elif grant is not None and coupon is None:
        spec = grant
    else:
        raise ApiError(400, "invalid_reward", "Provide exactly one of coupon or feature_grant")
    with ctx.db.write() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        values: dict[str, Any] = {
            "org_pk": ctx.tenant.org_pk,
            "env": ctx.tenant.env,
            "id": spec.id,
            "name": spec.name,
            "free_plan_id": None,
            "created_at": ctx.now(),
        }
        if isinstance(spec, CreateRewardCouponRequest):
            dtype, length = _duration(spec.duration)
            values |= {
                "type": spec.type,
                "discount_value": _value(spec.type, spec.value),
                "duration_type": dtype,
                "duration_length": length,
                "plan_ids": _plan_ids(cat, spec.plan_ids),
                "grants": [],
                "promo_codes": _coupon_promos(spec.promo_codes),
            }
        else:
            values |= {
                "type": "feature_grant",
                "discount_value": 0.0,
                "grants": _grants(cat, spec.grants),
                "promo_codes": _feature_grant_promos(spec.promo_codes),
            }
        _assert_unique(conn, ctx, spec.id, values["promo_codes"], None)
        try:
            with conn.begin_nested():
                pk = rewards_repo.insert_reward(conn, values)
        except IntegrityError as exc:
            raise ApiError(400, "duplicate_reward_id", f"Reward with id {spec.id} already exists") from exc
        return _reward_json(_reward_row(conn, pk))


def list_rewards(ctx: Ctx, params: NoParams) -> RewardsListResponseJson:
    """The env's coupons and feature grants, newest first (``free_product`` rewards left out)."""
    with ctx.db.read() as conn:
        rows = rewards_repo.list_rewards(conn, ctx.tenant, MAX_LISTED)
    return {
        "coupons": [_coupon_json(r) for r in rows if r.type in COUPON_TYPES],
        "feature_grants": [_feature_grant_json(r) for r in rows if r.type == "feature_grant"],
    }


def get_reward(ctx: Ctx, params: GetRewardParams) -> CreateRewardResponseJson:
    """One coupon or feature grant by id."""
    with ctx.db.read() as conn:
        return _reward_json(_require_reward(conn, ctx, params.reward_id))


def update_reward(ctx: Ctx, params: UpdateRewardParams) -> CreateRewardResponseJson:
    """Change a reward's name, promo codes, and its plans (coupon) or grants (feature grant)."""
    with ctx.db.write() as conn:
        row = _require_reward(conn, ctx, params.reward_id, lock=True)
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        is_grant = row.type == "feature_grant"
        kind = "feature_grant" if is_grant else "coupon"
        patch: UpdateRewardCouponRequest | UpdateRewardFeatureGrantRequest | None = (
            params.feature_grant if is_grant else params.coupon
        )
        if patch is None:
            label = "feature grant" if is_grant else "coupon"
            raise invalid(f"Reward {row.id} is a {label} — provide {kind}")
        given = patch.model_fields_set
        values: dict[str, Any] = {}
        if patch.name is not None:
            values["name"] = patch.name
        if isinstance(patch, UpdateRewardFeatureGrantRequest):
            if "grants" in given:
                values["grants"] = _grants(cat, patch.grants or [])
            if "promo_codes" in given:
                values["promo_codes"] = _feature_grant_promos(patch.promo_codes or [])
        else:
            if "plan_ids" in given:
                values["plan_ids"] = _plan_ids(cat, patch.plan_ids)
            if "promo_codes" in given:
                values["promo_codes"] = _coupon_promos(patch.promo_codes or [])
        _assert_unique(conn, ctx, row.id, values.get("promo_codes", row.promo_codes or []), row.pk)
        if values:
            rewards_repo.update_reward(conn, row.pk, values)
        return _reward_json(_reward_row(conn, row.pk))


def delete_reward(ctx: Ctx, params: DeleteRewardParams) -> SuccessResponseJson:
    """Delete a reward no referral program uses (its promo-code redemptions go with it)."""
    with ctx.db.write() as conn:
        row = _require_reward(conn, ctx, params.reward_id, lock=True)
        linked = rewards_repo.programs_using(conn, ctx.tenant, row.id)
        if linked:
            raise invalid(
                f"Reward {row.id} is linked to referral programs: {', '.join(linked)}. Delete them first."
            )
        rewards_repo.delete_reward(conn, row.pk)
    return {"success": True}


# --------------------------------------------------------------------------------- referral programs


def _program_json(row: Any) -> CreateReferralProgramResponseJson:
    return {
        "id": row.id,
        "reward_id": row.reward_id,
        "redeem_on": row.trigger,
        "received_by": row.received_by,
        "max_redemptions": row.max_redemptions,
        "plan_ids": row.plan_ids,
        "exclude_trial": bool(row.exclude_trial or False),
        "created_at": row.created_at,
    }


def _require_program(conn: Connection, ctx: Ctx, program_id: str, *, lock: bool = False) -> Any:
    row = rewards_repo.find_program(conn, ctx.tenant, program_id, lock=lock)
    if row is None:
        raise ApiError(404, "reward_program_not_found", f"Referral program {program_id} not found")
    return row


def _linkable_reward(conn: Connection, ctx: Ctx, reward_id: str) -> Any:
    row = rewards_repo.find_reward(conn, ctx.tenant, reward_id)
    if row is None:
        raise ApiError(404, "reward_not_found", f"Reward {reward_id} not found")
    if row.type == "free_product":
        raise invalid(
            "Free product rewards are deprecated for referral programs. "
            "Use a feature grant or discount reward instead."
        )
    return row


def _program_fields(values: dict[str, Any]) -> None:
    """Checkout programs grant when a redeemer checks out one of their plans, up to a positive cap."""
    plan_ids = values.get("plan_ids")
    if plan_ids is not None:
        _unique(list(plan_ids), "plan_ids", "Plan IDs")
    if values.get("max_redemptions") is not None:
        _positive_int(values["max_redemptions"], "max_redemptions")
    if values["trigger"] != "checkout":
        return
    if not plan_ids:
        raise invalid("When `Redeem On` is set to `Checkout`, must specify at least one product")
    if not values.get("max_redemptions"):
        raise invalid("When `Redeem On` is set to `Checkout`, max redemptions must be greater than 0")


def create_referral_program(
    ctx: Ctx, params: CreateReferralProgramParams
) -> CreateReferralProgramResponseJson:
    """Create a referral program giving an existing reward when its referral codes are redeemed."""
    with ctx.db.write() as conn:
        if rewards_repo.program_exists(conn, ctx.tenant, params.id):
            raise invalid(f"Referral program {params.id} already exists")
        reward = _linkable_reward(conn, ctx, params.reward_id)
        values: dict[str, Any] = {
            "org_pk": ctx.tenant.org_pk,
            "env": ctx.tenant.env,
            "id": params.id,
            "reward_id": reward.id,
            "trigger": params.redeem_on,
            "received_by": params.received_by,
            "max_redemptions": params.max_redemptions,
            "plan_ids": params.plan_ids,
            "exclude_trial": params.exclude_trial,
            "created_at": ctx.now(),
        }
        _program_fields(values)
        try:
            with conn.begin_nested():
                pk = rewards_repo.insert_program(conn, values)
        except IntegrityError as exc:
            raise invalid(f"Referral program {params.id} already exists") from exc
        return _program_json(rewards_repo.program_row(conn, pk))


def list_referral_programs(ctx: Ctx, params: NoParams) -> ListReferralProgramsResponseJson:
    """The env's referral programs, oldest first."""
    with ctx.db.read() as conn:
        rows = rewards_repo.list_programs(conn, ctx.tenant)
    return {"list": [_program_json(r) for r in rows]}


def get_referral_program(ctx: Ctx, params: GetReferralProgramParams) -> CreateReferralProgramResponseJson:
    """One referral program by id."""
    with ctx.db.read() as conn:
        return _program_json(_require_program(conn, ctx, params.referral_program_id))


def update_referral_program(
    ctx: Ctx, params: UpdateReferralProgramParams
) -> CreateReferralProgramResponseJson:
    """Change a program; omitted fields keep their value, an explicit null clears an optional one."""
    given = params.model_fields_set
    with ctx.db.write() as conn:
        row = _require_program(conn, ctx, params.referral_program_id, lock=True)
        reward_id = row.reward_id
        if params.reward_id:
            reward_id = _linkable_reward(conn, ctx, params.reward_id).id
        values: dict[str, Any] = {
            "reward_id": reward_id,
            "trigger": params.redeem_on or row.trigger,
            "received_by": params.received_by or row.received_by,
            "max_redemptions": params.max_redemptions if "max_redemptions" in given else row.max_redemptions,
            "plan_ids": params.plan_ids if "plan_ids" in given else row.plan_ids,
            "exclude_trial": params.exclude_trial if "exclude_trial" in given else row.exclude_trial,
        }
        _program_fields(values)
        rewards_repo.update_program(conn, row.pk, values)
        return _program_json(rewards_repo.program_row(conn, row.pk))


def delete_referral_program(ctx: Ctx, params: DeleteReferralProgramParams) -> SuccessResponseJson:
    """Delete a program, its referral codes and their redemptions."""
    with ctx.db.write() as conn:
        gone = rewards_repo.delete_program(conn, ctx.tenant, params.referral_program_id)
    if not gone:
        raise ApiError(400, "reward_not_found", "Reward program not found")
    return {"success": True}
