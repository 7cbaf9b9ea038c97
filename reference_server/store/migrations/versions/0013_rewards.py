"""Rewards and referral programs as Autumn's current API shapes them.

Coupons gain a duration and the plans they apply to; referral programs gain ``exclude_trial``; a
redemption's reward becomes NULL when the reward is deleted (it cascaded, taking a referral program's
redemption history with a reward the program no longer gives).
Feature grants and promo codes stored in the earlier shapes (``quantity``/``expires_after_days``,
``max_redemptions``) are rewritten to the current ones (``included``/``expiry``,
``global_max_redemption``).

Revision ID: 0013_rewards
Revises: 0012_licenses_keys
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013_rewards"
down_revision = "0012_licenses_keys"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")

_rewards = sa.table(
    "rewards",
    sa.column("pk", _PK),
    sa.column("grants", sa.JSON()),
    sa.column("promo_codes", sa.JSON()),
)


def _grant_now(grant: dict[str, Any]) -> dict[str, Any]:
    if "included" in grant:
        return grant
    days = grant.get("expires_after_days")
    return {
        "feature_id": grant.get("feature_id"),
        "included": grant.get("quantity"),
        "expiry": {"type": "day", "length": int(days)} if days else None,
    }


def _grant_then(grant: dict[str, Any]) -> dict[str, Any]:
    expiry = grant.get("expiry") or {}
    out: dict[str, Any] = {"feature_id": grant.get("feature_id"), "quantity": grant.get("included") or 0}
    if expiry.get("type") == "day":
        out["expires_after_days"] = expiry.get("length")
    return out


def _promo_now(promo: dict[str, Any]) -> dict[str, Any]:
    if "global_max_redemption" in promo:
        return promo
    return {
        "code": promo.get("code"),
        "global_max_redemption": promo.get("max_redemptions"),
        "first_time_transaction": None,
    }


def _promo_then(promo: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"code": promo.get("code")}
    if promo.get("global_max_redemption") is not None:
        out["max_redemptions"] = promo["global_max_redemption"]
    return out


def _rewrite(grant: Any, promo: Any) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_rewards.c.pk, _rewards.c.grants, _rewards.c.promo_codes)).all():
        conn.execute(
            sa.update(_rewards)
            .where(_rewards.c.pk == row.pk)
            .values(
                grants=[grant(g) for g in row.grants or []],
                promo_codes=[promo(p) for p in row.promo_codes or []],
            )
        )


def _reward_link(ondelete: str, *, nullable: bool) -> None:
    """A redemption's reward: SET NULL keeps a program's redemptions when a reward is deleted."""
    with op.batch_alter_table("redemptions") as batch:
        batch.drop_constraint("fk_redemptions_reward_pk_rewards", type_="foreignkey")
        batch.alter_column("reward_pk", existing_type=_PK, nullable=nullable)
        batch.create_foreign_key(
            "fk_redemptions_reward_pk_rewards", "rewards", ["reward_pk"], ["pk"], ondelete=ondelete
        )


def upgrade() -> None:
    op.add_column("rewards", sa.Column("duration_type", sa.String(16), nullable=True))
    op.add_column("rewards", sa.Column("duration_length", sa.Integer(), nullable=True))
    op.add_column("rewards", sa.Column("plan_ids", sa.JSON(), nullable=True))
    op.add_column("reward_programs", sa.Column("exclude_trial", sa.Boolean(), nullable=True))
    _rewrite(_grant_now, _promo_now)
    _reward_link("SET NULL", nullable=True)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM redemptions WHERE reward_pk IS NULL"))
    _reward_link("CASCADE", nullable=False)
    _rewrite(_grant_then, _promo_then)
    with op.batch_alter_table("reward_programs") as batch:
        batch.drop_column("exclude_trial")
    with op.batch_alter_table("rewards") as batch:
        batch.drop_column("plan_ids")
        batch.drop_column("duration_length")
        batch.drop_column("duration_type")
