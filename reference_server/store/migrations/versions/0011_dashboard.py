"""Dashboard: admin accounts, their sessions, the hosted pages' branding, a bounded API request log.

See :mod:`reference_server.store.tables.dashboard`.

Revision ID: 0011_dashboard
Revises: 0010_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dashboard"
down_revision = "0010_leases"
branch_labels = None
depends_on = None

_PK = sa.Integer().with_variant(sa.BigInteger(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "org_branding",
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("logo_url", sa.Text(), nullable=True),
        sa.Column("website_url", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_org_branding_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_pk", name=op.f("pk_org_branding")),
    )
    op.create_table(
        "dashboard_admins",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_dashboard_admins_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_dashboard_admins")),
        sa.UniqueConstraint("email", name=op.f("uq_dashboard_admins_email")),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("admin_pk", _PK, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_pk"],
            ["dashboard_admins.pk"],
            name=op.f("fk_dashboard_sessions_admin_pk_dashboard_admins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_dashboard_sessions")),
    )
    op.create_table(
        "api_request_log",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("org_pk", _PK, nullable=False),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_api_request_log")),
    )
    op.create_index("ix_api_request_log_org_env", "api_request_log", ["org_pk", "env", "pk"])


def downgrade() -> None:
    op.drop_index("ix_api_request_log_org_env", table_name="api_request_log")
    op.drop_table("api_request_log")
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_admins")
    op.drop_table("org_branding")
