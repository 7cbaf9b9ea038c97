"""Customers as stored: create, change, list and delete a customer row and what hangs off it (top-up
counts and purchases, trials used, referrals made); the SQL behind ``service.customers`` and the
billing use cases. Reading a customer by id and its balances is :mod:`.subjects`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, insert, or_, select, update

from reference_server.store.subjects import CustomerRow, customer_from_row
from reference_server.store.tables.billing import auto_topup_purchases, trials_used
from reference_server.store.tables.core import (
    auto_topup_counts,
    customer_plans,
    customers,
    redemptions,
    reward_programs,
)
from reference_server.store.tenancy import Tenant


def replace_topup_count(conn: Connection, customer_pk: int, feature_id: str, count: int, now: int) -> None:
    """From ``now`` on, ``count`` top-ups of the feature count as bought in the current window."""
    conn.execute(
        delete(auto_topup_counts).where(
            auto_topup_counts.c.customer_pk == customer_pk, auto_topup_counts.c.feature_id == feature_id
        )
    )
    conn.execute(
        insert(auto_topup_counts).values(
            customer_pk=customer_pk, feature_id=feature_id, purchase_count=count, set_at=now
        )
    )


def topup_count(conn: Connection, customer_pk: int, feature_id: str) -> Row[Any, Any] | None:
    """The top-up count set for the feature (``purchase_count``, ``set_at``), if one is."""
    return conn.execute(
        select(auto_topup_counts.c.purchase_count, auto_topup_counts.c.set_at).where(
            auto_topup_counts.c.customer_pk == customer_pk, auto_topup_counts.c.feature_id == feature_id
        )
    ).first()


def topup_purchase_times(conn: Connection, customer_pk: int, feature_id: str) -> list[int]:
    """When the customer's automatic top-ups of the feature were bought."""
    return [
        int(t)
        for t in conn.execute(
            select(auto_topup_purchases.c.purchased_at).where(
                auto_topup_purchases.c.customer_pk == customer_pk,
                auto_topup_purchases.c.feature_id == feature_id,
            )
        ).scalars()
    ]


def record_topup(
    conn: Connection,
    customer_pk: int,
    feature_id: str,
    quantity: str,
    invoice_pk: int | None,
    purchased_at: int,
) -> None:
    conn.execute(
        insert(auto_topup_purchases).values(
            customer_pk=customer_pk,
            feature_id=feature_id,
            quantity=quantity,
            invoice_pk=invoice_pk,
            purchased_at=purchased_at,
        )
    )


def overage_settings(conn: Connection, customer_pk: int) -> Row[Any, Any]:
    """The customer's ``config`` and ``billing_controls`` columns."""
    return conn.execute(
        select(customers.c.config, customers.c.billing_controls).where(customers.c.pk == customer_pk)
    ).one()


def has_trial_record(conn: Connection, customer_pk: int, plan_id: str) -> bool:
    """The customer's trial of the plan is recorded as used."""
    recorded = conn.execute(
        select(trials_used.c.pk).where(
            trials_used.c.customer_pk == customer_pk, trials_used.c.plan_id == plan_id
        )
    ).first()
    return recorded is not None


def trial_used_by_fingerprint(
    conn: Connection, plan_id: str, fingerprint: str, org_pk: int, env: str
) -> bool:
    """A customer of the environment with this fingerprint has used the plan's trial."""
    same_fingerprint = conn.execute(
        select(trials_used.c.pk)
        .join(customers, customers.c.pk == trials_used.c.customer_pk)
        .where(
            trials_used.c.plan_id == plan_id,
            trials_used.c.fingerprint == fingerprint,
            customers.c.org_pk == org_pk,
            customers.c.env == env,
        )
    ).first()
    return same_fingerprint is not None


def insert_trial_record(
    conn: Connection, customer_pk: int, plan_id: str, fingerprint: str | None, now: int
) -> None:
    conn.execute(
        insert(trials_used).values(
            customer_pk=customer_pk, plan_id=plan_id, fingerprint=fingerprint, used_at=now
        )
    )


def trial_plan_ids(conn: Connection, customer_pk: int) -> list[str]:
    """The plans the customer has had a trial of (each once)."""
    rows = conn.execute(
        select(customer_plans.c.plan_id)
        .where(customer_plans.c.customer_pk == customer_pk, customer_plans.c.trial_ends_at.is_not(None))
        .distinct()
    )
    return [r.plan_id for r in rows]


def referrals_by(conn: Connection, referrer_pk: int) -> list[Row[Any]]:
    """The referral redemptions of the customer's codes (with the redeemer's cid, cname, cemail and
    the program_id), oldest first."""
    return list(
        conn.execute(
            select(
                redemptions,
                customers.c.id.label("cid"),
                customers.c.name.label("cname"),
                customers.c.email.label("cemail"),
                reward_programs.c.id.label("program_id"),
            )
            .join(customers, customers.c.pk == redemptions.c.customer_pk)
            .join(reward_programs, reward_programs.c.pk == redemptions.c.program_pk)
            .where(redemptions.c.referrer_pk == referrer_pk, redemptions.c.kind == "referral")
            .order_by(redemptions.c.pk)
        )
    )


def insert_customer(conn: Connection, values: dict[str, Any]) -> int:
    """Insert a customer (``values``: its columns); its pk."""
    pk: int = conn.execute(insert(customers).values(**values).returning(customers.c.pk)).scalar_one()
    return pk


def customer_at(conn: Connection, customer_pk: int) -> CustomerRow:
    """The customer row ``customer_pk`` (which must exist)."""
    return customer_from_row(conn.execute(select(customers).where(customers.c.pk == customer_pk)).one())


def customers_at(conn: Connection, customer_pks: list[int]) -> dict[int, CustomerRow]:
    """The customer rows ``customer_pks`` (which must exist) by pk, in one query (list pages)."""
    if not customer_pks:
        return {}
    rows = conn.execute(select(customers).where(customers.c.pk.in_(customer_pks)))
    return {row.pk: customer_from_row(row) for row in rows}


def update_customer(conn: Connection, customer_pk: int, changes: dict[str, Any]) -> None:
    conn.execute(update(customers).where(customers.c.pk == customer_pk).values(**changes))


def delete_customer(conn: Connection, customer_pk: int) -> None:
    conn.execute(delete(customers).where(customers.c.pk == customer_pk))


@dataclass(frozen=True)
class CustomerQuery:
    """Which of an env's customers ``customers.list`` reads, and in which order."""

    descending: bool = True
    after: tuple[int, int] | None = None
    """The (created_at, pk) of the previous page's last customer."""
    start_at: int | None = None
    end_at: int | None = None
    search: str | None = None
    subscription_status: str | None = None
    plan_pks: list[list[int]] | None = None
    """Holding a non-expired instance of one of these plan-version sets (None: no plan filter)."""
    stripe_only: bool = False


def customer_page(conn: Connection, tenant: Tenant, query: CustomerQuery, limit: int) -> list[CustomerRow]:
    """Up to ``limit + 1`` customers of the env matching ``query``, keyset-paged on (created_at, pk)."""
    q = select(customers).where(customers.c.org_pk == tenant.org_pk, customers.c.env == tenant.env)
    if query.after is not None:
        after_at, after_pk = query.after
        if query.descending:
            q = q.where(
                or_(
                    customers.c.created_at < after_at,
                    and_(customers.c.created_at == after_at, customers.c.pk < after_pk),
                )
            )
        else:
            q = q.where(
                or_(
                    customers.c.created_at > after_at,
                    and_(customers.c.created_at == after_at, customers.c.pk > after_pk),
                )
            )
    if query.start_at is not None:
        q = q.where(customers.c.created_at >= query.start_at)
    if query.end_at is not None:
        q = q.where(customers.c.created_at <= query.end_at)
    if query.search:
        pattern = f"%{query.search}%"
        q = q.where(
            or_(
                customers.c.id.ilike(pattern),
                customers.c.name.ilike(pattern),
                customers.c.email.ilike(pattern),
            )
        )
    if query.plan_pks or query.subscription_status:
        sub = select(customer_plans.c.customer_pk).where(customer_plans.c.status != "expired")
        if query.subscription_status:
            sub = sub.where(customer_plans.c.status == query.subscription_status)
        if query.plan_pks:
            conds: list[ColumnElement[bool]] = [customer_plans.c.plan_pk.in_(pks) for pks in query.plan_pks]
            sub = sub.where(or_(*conds))
        q = q.where(customers.c.pk.in_(sub))
    if query.stripe_only:
        q = q.where(customers.c.stripe_id.is_not(None))
    if query.descending:
        q = q.order_by(customers.c.created_at.desc(), customers.c.pk.desc())
    else:
        q = q.order_by(customers.c.created_at, customers.c.pk)
    q = q.limit(limit + 1)
    return [customer_from_row(r) for r in conn.execute(q)]


def live_instance_rows(conn: Connection, customer_pks: list[int]) -> list[Row[Any]]:
    """The non-expired plan instances of several customers, oldest first."""
    return list(
        conn.execute(
            select(customer_plans)
            .where(customer_plans.c.customer_pk.in_(customer_pks), customer_plans.c.status != "expired")
            .order_by(customer_plans.c.pk)
        )
    )


def advance_clock(conn: Connection, customer_pk: int, delta_ms: int) -> None:
    """Move the customer's own test clock ``delta_ms`` forward."""
    conn.execute(
        update(customers)
        .where(customers.c.pk == customer_pk)
        .values(clock_offset_ms=customers.c.clock_offset_ms + delta_ms)
    )
