"""Licenses (seat pools) and per-customer tokens.

See :mod:`reference_server.store.tables.licenses`.

Revision ID: 0012_licenses_keys
Revises: 0011_dashboard
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_licenses_keys"
down_revision = "0011_dashboard"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plan_licenses",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("plan_pk", _PK, nullable=False),
        sa.Column("license_plan_id", sa.String(255), nullable=False),
        sa.Column("included", sa.Integer(), nullable=False),
        sa.Column("prepaid_only", sa.Boolean(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_pk"], ["plans.pk"], name=op.f("fk_plan_licenses_plan_pk_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_plan_licenses")),
        sa.UniqueConstraint("plan_pk", "license_plan_id", name="uq_plan_licenses_plan_license"),
    )
    op.create_table(
        "license_assignments",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("entity_pk", _PK, nullable=False),
        sa.Column("parent_customer_plan_pk", _PK, nullable=False),
        sa.Column("license_plan_id", sa.String(255), nullable=False),
        sa.Column("customer_plan_pk", _PK, nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_license_assignments_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_pk"],
            ["entities.pk"],
            name=op.f("fk_license_assignments_entity_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_license_assignments_parent_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_license_assignments_customer_plan_pk_customer_plans"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_license_assignments")),
        sa.UniqueConstraint("id", name=op.f("uq_license_assignments_id")),
    )
    op.create_index(
        "ix_license_assignments_customer_ended", "license_assignments", ["customer_pk", "ended_at"]
    )
    op.create_table(
        "customer_token_families",
        sa.Column("customer_pk", _PK, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("refresh_kid", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_customer_token_families_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_pk", name=op.f("pk_customer_token_families")),
    )
    op.create_table(
        "customer_token_secrets",
        sa.Column("pk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_customer_token_secrets")),
    )


def downgrade() -> None:
    op.drop_table("customer_token_secrets")
    op.drop_table("customer_token_families")
    op.drop_index("ix_license_assignments_customer_ended", table_name="license_assignments")
    op.drop_table("license_assignments")
    op.drop_table("plan_licenses")
