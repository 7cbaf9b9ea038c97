"""Rewards, referral programs, referral codes and redemptions as stored: the SQL behind
``service.rewards`` and ``service.referrals`` (rows are the tables' own)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from reference_server.store.tables.core import (
    organizations,
    redemptions,
    referral_codes,
    reward_programs,
    rewards,
)
from reference_server.store.tenancy import Tenant


def lock_org(conn: Connection, tenant: Tenant) -> None:
    """Lock the organization's row (FOR UPDATE): the lock two reward writes serialize on."""
    conn.execute(select(organizations.c.pk).where(organizations.c.pk == tenant.org_pk).with_for_update())


def reward_codes(conn: Connection, tenant: Tenant) -> list[Row[Any, Any, Any]]:
    """Every reward's pk, id and promo codes in the env."""
    return list(
        conn.execute(
            select(rewards.c.pk, rewards.c.id, rewards.c.promo_codes).where(
                rewards.c.org_pk == tenant.org_pk, rewards.c.env == tenant.env
            )
        ).all()
    )


def find_reward(conn: Connection, tenant: Tenant, reward_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(rewards).where(
        rewards.c.org_pk == tenant.org_pk, rewards.c.env == tenant.env, rewards.c.id == reward_id
    )
    return conn.execute(query.with_for_update() if lock else query).first()


def reward_row(conn: Connection, pk: int) -> Row[Any]:
    return conn.execute(select(rewards).where(rewards.c.pk == pk)).one()


def insert_reward(conn: Connection, values: dict[str, Any]) -> int:
    pk: int = conn.execute(insert(rewards).values(**values).returning(rewards.c.pk)).scalar_one()
    return pk


def list_rewards(conn: Connection, tenant: Tenant, limit: int) -> list[Row[Any]]:
    """The env's rewards, newest first, at most ``limit``."""
    return list(
        conn.execute(
            select(rewards)
            .where(rewards.c.org_pk == tenant.org_pk, rewards.c.env == tenant.env)
            .order_by(rewards.c.pk.desc())
            .limit(limit)
        ).all()
    )


def update_reward(conn: Connection, pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(rewards).where(rewards.c.pk == pk).values(**values))


def delete_reward(conn: Connection, pk: int) -> None:
    conn.execute(delete(rewards).where(rewards.c.pk == pk))


def programs_using(conn: Connection, tenant: Tenant, reward_id: str) -> list[str]:
    """The ids of the env's referral programs giving ``reward_id``, oldest first."""
    return list(
        conn.execute(
            select(reward_programs.c.id)
            .where(
                reward_programs.c.org_pk == tenant.org_pk,
                reward_programs.c.env == tenant.env,
                reward_programs.c.reward_id == reward_id,
            )
            .order_by(reward_programs.c.pk)
        )
        .scalars()
        .all()
    )


def find_program(conn: Connection, tenant: Tenant, program_id: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(reward_programs).where(
        reward_programs.c.org_pk == tenant.org_pk,
        reward_programs.c.env == tenant.env,
        reward_programs.c.id == program_id,
    )
    return conn.execute(query.with_for_update() if lock else query).first()


def program_exists(conn: Connection, tenant: Tenant, program_id: str) -> bool:
    return (
        conn.execute(
            select(reward_programs.c.pk).where(
                reward_programs.c.org_pk == tenant.org_pk,
                reward_programs.c.env == tenant.env,
                reward_programs.c.id == program_id,
            )
        ).first()
        is not None
    )


def insert_program(conn: Connection, values: dict[str, Any]) -> int:
    pk: int = conn.execute(
        insert(reward_programs).values(**values).returning(reward_programs.c.pk)
    ).scalar_one()
    return pk


def program_row(conn: Connection, pk: int) -> Row[Any]:
    return conn.execute(select(reward_programs).where(reward_programs.c.pk == pk)).one()


def list_programs(conn: Connection, tenant: Tenant) -> list[Row[Any]]:
    """The env's referral programs, oldest first."""
    return list(
        conn.execute(
            select(reward_programs)
            .where(reward_programs.c.org_pk == tenant.org_pk, reward_programs.c.env == tenant.env)
            .order_by(reward_programs.c.pk)
        ).all()
    )


def update_program(conn: Connection, pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(reward_programs).where(reward_programs.c.pk == pk).values(**values))


def delete_program(conn: Connection, tenant: Tenant, program_id: str) -> int:
    """Delete the env's program ``program_id``; the number of rows deleted."""
    gone: int = conn.execute(
        delete(reward_programs).where(
            reward_programs.c.org_pk == tenant.org_pk,
            reward_programs.c.env == tenant.env,
            reward_programs.c.id == program_id,
        )
    ).rowcount
    return gone


# ----------------------------------------------------------------- referral codes and redemptions


def referral_code_of(conn: Connection, program_pk: int, customer_pk: int) -> Row[Any] | None:
    """The customer's referral code in the program, if it has one."""
    return conn.execute(
        select(referral_codes).where(
            referral_codes.c.program_pk == program_pk, referral_codes.c.customer_pk == customer_pk
        )
    ).first()


def insert_referral_code(
    conn: Connection, tenant: Tenant, *, code: str, program_pk: int, customer_pk: int, created_at: int
) -> None:
    conn.execute(
        insert(referral_codes).values(
            org_pk=tenant.org_pk,
            env=tenant.env,
            code=code,
            program_pk=program_pk,
            customer_pk=customer_pk,
            created_at=created_at,
        )
    )


def find_referral_code(conn: Connection, tenant: Tenant, code: str) -> Row[Any] | None:
    return conn.execute(
        select(referral_codes).where(
            referral_codes.c.org_pk == tenant.org_pk,
            referral_codes.c.env == tenant.env,
            referral_codes.c.code == code,
        )
    ).first()


def referral_redemptions(conn: Connection, code: str, program_pk: int) -> int:
    """How many times the referral code was redeemed in the program."""
    count: int = conn.execute(
        select(func.count())
        .select_from(redemptions)
        .where(
            redemptions.c.kind == "referral",
            redemptions.c.code == code,
            redemptions.c.program_pk == program_pk,
        )
    ).scalar_one()
    return count


def redeemed_referral(conn: Connection, program_pk: int, customer_pk: int) -> bool:
    """Whether the customer already redeemed a referral code in the program."""
    return (
        conn.execute(
            select(redemptions.c.pk).where(
                redemptions.c.kind == "referral",
                redemptions.c.program_pk == program_pk,
                redemptions.c.customer_pk == customer_pk,
            )
        ).first()
        is not None
    )


def reward_by_id(conn: Connection, tenant: Tenant, reward_id: str) -> Row[Any]:
    """The env's reward ``reward_id`` (which must exist)."""
    return conn.execute(
        select(rewards).where(
            rewards.c.org_pk == tenant.org_pk,
            rewards.c.env == tenant.env,
            rewards.c.id == reward_id,
        )
    ).one()


def insert_redemption(conn: Connection, tenant: Tenant, values: dict[str, Any]) -> None:
    """Record a redemption (``values``: the columns other than the tenant's)."""
    conn.execute(insert(redemptions).values(org_pk=tenant.org_pk, env=tenant.env, **values))


def reward_by_promo_code(
    conn: Connection, tenant: Tenant, code: str
) -> tuple[Row[Any], dict[str, Any]] | None:
    """The env's reward with the promo code ``code`` (any case) and that promo code's entry, or None.
    A code is unique across the env's rewards whatever its case (``service.rewards`` refuses a second)."""
    folded = code.upper()
    rows = conn.execute(
        select(rewards).where(rewards.c.org_pk == tenant.org_pk, rewards.c.env == tenant.env)
    ).all()
    for row in rows:
        for promo in row.promo_codes or []:
            if str(promo.get("code", "")).upper() == folded:
                return row, dict(promo)
    return None


def promo_redemptions(conn: Connection, reward_pk: int, code: str) -> int:
    """How many times the promo code (any case) of the reward was redeemed."""
    used: int = conn.execute(
        select(func.count())
        .select_from(redemptions)
        .where(
            redemptions.c.kind == "promo",
            redemptions.c.reward_pk == reward_pk,
            func.upper(redemptions.c.code) == code.upper(),
        )
    ).scalar_one()
    return used


def redeemed_promo(conn: Connection, reward_pk: int, customer_pk: int) -> bool:
    """Whether the customer already redeemed one of the reward's promo codes."""
    return (
        conn.execute(
            select(redemptions.c.pk).where(
                redemptions.c.kind == "promo",
                redemptions.c.reward_pk == reward_pk,
                redemptions.c.customer_pk == customer_pk,
            )
        ).first()
        is not None
    )
