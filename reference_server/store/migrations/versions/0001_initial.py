"""Initial schema: tenancy, catalogue, customers, balances, events, idempotency, locks, rewards.

Revision ID: 0001_initial
Revises:

Frozen DDL (rendered once from ``reference_server.store.tables.core`` by Alembic's autogenerate), so
later edits of the table definitions need their own revision; ``tests/server`` checks that the
migrated schema still matches the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("org_pk", "env", "scope", "key", name="uq_idempotency_keys_org_env_scope_key"),
    )
    op.create_table(
        "organizations",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("owner_email", sa.String(length=255), nullable=True),
        sa.Column("parent_org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True),
        sa.Column("sandbox_clock_offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("live_clock_offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("catalog_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_org_pk"], ["organizations.pk"], name=op.f("fk_organizations_parent_org_pk_organizations")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_organizations")),
        sa.UniqueConstraint("id", name=op.f("uq_organizations_id")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "users",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("id", name=op.f("uq_users_id")),
    )
    op.create_table(
        "api_keys",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_api_keys_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("id", name=op.f("uq_api_keys_id")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "customers",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=255), nullable=True),
        sa.Column("stripe_id", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("send_email_receipts", sa.Boolean(), nullable=False),
        sa.Column("billing_controls", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("clock_offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("maintenance_due_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_customers_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_customers")),
        sa.UniqueConstraint("org_pk", "env", "id", name="uq_customers_org_env_id"),
    )
    op.create_table(
        "features",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("consumable", sa.Boolean(), nullable=False),
        sa.Column("event_names", sa.JSON(), nullable=False),
        sa.Column("credit_schema", sa.JSON(), nullable=False),
        sa.Column("display", sa.JSON(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_features_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_features")),
        sa.UniqueConstraint("org_pk", "env", "id", name="uq_features_org_env_id"),
    )
    op.create_table(
        "memberships",
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("user_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_memberships_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_pk"], ["users.pk"], name=op.f("fk_memberships_user_pk_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_pk", "user_pk", name=op.f("pk_memberships")),
    )
    op.create_table(
        "plans",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("add_on", sa.Boolean(), nullable=False),
        sa.Column("auto_enable", sa.Boolean(), nullable=False),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("free_trial", sa.JSON(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"], ["organizations.pk"], name=op.f("fk_plans_org_pk_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_plans")),
        sa.UniqueConstraint("org_pk", "env", "id", "version", name="uq_plans_org_env_id_version"),
    )
    op.create_table(
        "reward_programs",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("reward_id", sa.String(length=255), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("received_by", sa.String(length=16), nullable=False),
        sa.Column("max_redemptions", sa.Integer(), nullable=True),
        sa.Column("plan_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"],
            ["organizations.pk"],
            name=op.f("fk_reward_programs_org_pk_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_reward_programs")),
        sa.UniqueConstraint("org_pk", "env", "id", name="uq_reward_programs_org_env_id"),
    )
    op.create_table(
        "rewards",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("discount_value", sa.Float(), nullable=False),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("free_plan_id", sa.String(length=255), nullable=True),
        sa.Column("promo_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_pk"], ["organizations.pk"], name=op.f("fk_rewards_org_pk_organizations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_rewards")),
        sa.UniqueConstraint("org_pk", "env", "id", name="uq_rewards_org_env_id"),
    )
    op.create_table(
        "entities",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("feature_id", sa.String(length=255), nullable=True),
        sa.Column("billing_controls", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_entities_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_entities")),
        sa.UniqueConstraint("customer_pk", "id", name="uq_entities_customer_id"),
    )
    op.create_table(
        "events",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("feature_id", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("deductions", sa.JSON(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_events_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    op.create_index("ix_events_customer_ts", "events", ["customer_pk", "timestamp"], unique=False)
    op.create_index("ix_events_org_ts", "events", ["org_pk", "env", "timestamp"], unique=False)
    op.create_table(
        "locks",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("lock_id", sa.String(length=256), nullable=False),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("feature_id", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("receipt", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"], ["customers.pk"], name=op.f("fk_locks_customer_pk_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_locks")),
        sa.UniqueConstraint("org_pk", "env", "lock_id", name="uq_locks_org_env_lock_id"),
    )
    op.create_table(
        "redemptions",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reward_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("program_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("referrer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_redemptions_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_pk"],
            ["reward_programs.pk"],
            name=op.f("fk_redemptions_program_pk_reward_programs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referrer_pk"],
            ["customers.pk"],
            name=op.f("fk_redemptions_referrer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reward_pk"], ["rewards.pk"], name=op.f("fk_redemptions_reward_pk_rewards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("id", name=op.f("uq_redemptions_id")),
    )
    op.create_table(
        "referral_codes",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("org_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("env", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("program_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_referral_codes_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["program_pk"],
            ["reward_programs.pk"],
            name=op.f("fk_referral_codes_program_pk_reward_programs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("org_pk", "env", "code", name="uq_referral_codes_org_env_code"),
        sa.UniqueConstraint("program_pk", "customer_pk", name="uq_referral_codes_program_customer"),
    )
    op.create_table(
        "customer_plans",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("entity_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True),
        sa.Column("plan_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("plan_id", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=True),
        sa.Column("canceled_at", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("trial_ends_at", sa.BigInteger(), nullable=True),
        sa.Column("current_period_start", sa.BigInteger(), nullable=True),
        sa.Column("current_period_end", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_customer_plans_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_pk"],
            ["entities.pk"],
            name=op.f("fk_customer_plans_entity_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["plan_pk"], ["plans.pk"], name=op.f("fk_customer_plans_plan_pk_plans")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_customer_plans")),
    )
    op.create_index(
        "ix_customer_plans_customer_status", "customer_plans", ["customer_pk", "status"], unique=False
    )
    op.create_table(
        "balance_sources",
        sa.Column(
            "pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), autoincrement=True, nullable=False
        ),
        sa.Column("customer_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=False),
        sa.Column("entity_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True),
        sa.Column(
            "customer_plan_pk", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), nullable=True
        ),
        sa.Column("balance_id", sa.String(length=255), nullable=True),
        sa.Column("feature_id", sa.String(length=255), nullable=False),
        sa.Column("plan_id", sa.String(length=255), nullable=True),
        sa.Column("is_flag", sa.Boolean(), nullable=False),
        sa.Column("allowance", sa.Float(), nullable=False),
        sa.Column("adjustment", sa.Float(), nullable=False),
        sa.Column("prepaid", sa.Float(), nullable=False),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("usage_allowed", sa.Boolean(), nullable=False),
        sa.Column("max_purchase", sa.Float(), nullable=True),
        sa.Column("interval", sa.String(length=16), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("anchor_at", sa.BigInteger(), nullable=True),
        sa.Column("next_reset_at", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("rollover_config", sa.JSON(), nullable=True),
        sa.Column("rollovers", sa.JSON(), nullable=False),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("is_addon", sa.Boolean(), nullable=False),
        sa.Column("continuous", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.pk"],
            name=op.f("fk_balance_sources_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_plan_pk"],
            ["customer_plans.pk"],
            name=op.f("fk_balance_sources_customer_plan_pk_customer_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_pk"],
            ["entities.pk"],
            name=op.f("fk_balance_sources_entity_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_balance_sources")),
        sa.UniqueConstraint("customer_pk", "balance_id", name="uq_balance_sources_customer_balance_id"),
    )
    op.create_index(
        "ix_balance_sources_customer_feature", "balance_sources", ["customer_pk", "feature_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_balance_sources_customer_feature", table_name="balance_sources")
    op.drop_table("balance_sources")
    op.drop_index("ix_customer_plans_customer_status", table_name="customer_plans")
    op.drop_table("customer_plans")
    op.drop_table("referral_codes")
    op.drop_table("redemptions")
    op.drop_table("locks")
    op.drop_index("ix_events_org_ts", table_name="events")
    op.drop_index("ix_events_customer_ts", table_name="events")
    op.drop_table("events")
    op.drop_table("entities")
    op.drop_table("rewards")
    op.drop_table("reward_programs")
    op.drop_table("plans")
    op.drop_table("memberships")
    op.drop_table("features")
    op.drop_table("customers")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("organizations")
    op.drop_table("idempotency_keys")
