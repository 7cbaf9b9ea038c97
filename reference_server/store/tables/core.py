"""The database schema (SQLAlchemy Core).

``metadata`` is shared with the billing helper's tables (``billing_tables.py``) so one Alembic
history covers both.  Internal primary keys are integers; the public ids users pass (customer
ids, feature ids, plan ids, ...) are unique per organization and env.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

PK = Integer().with_variant(BigInteger(), "postgresql")

organizations = Table(
    "organizations",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("slug", String(255), nullable=False, unique=True),
    Column("owner_email", String(255)),
    Column("parent_org_pk", PK, ForeignKey("organizations.pk")),
    Column("sandbox_clock_offset_ms", BigInteger, nullable=False, default=0),
    Column("live_clock_offset_ms", BigInteger, nullable=False, default=0),
    Column("catalog_version", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("name", String(255)),
    Column("created_at", BigInteger, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), primary_key=True),
    Column("user_pk", PK, ForeignKey("users.pk", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), nullable=False, default="owner"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("name", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

features = Table(
    "features",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("id", String(255), nullable=False),
    Column("name", String(255)),
    Column("type", String(32), nullable=False),
    Column("consumable", Boolean, nullable=False, default=True),
    Column("event_names", JSON, nullable=False),
    Column("credit_schema", JSON, nullable=False),
    Column("display", JSON),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("markups", JSON),  # AI credit systems: default/provider/model markups (0014_invoices)
    UniqueConstraint("org_pk", "env", "id", name="uq_features_org_env_id"),
)

plans = Table(
    "plans",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("id", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("group", String(255), nullable=False, default=""),
    Column("add_on", Boolean, nullable=False, default=False),
    Column("auto_enable", Boolean, nullable=False, default=False),
    Column("price", JSON),
    Column("items", JSON, nullable=False),
    Column("free_trial", JSON),
    Column("config", JSON, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("is_latest", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    Column("metadata", JSON),  # the user's key-values, the same on every version (0016_plan_metadata)
    Column("base_plan_id", String(255)),  # a variant's base plan id, null otherwise (0019_plan_variants)
    Column("billing_controls", JSON),  # defaults for the plan's customers, null: none (0020_usage_limits)
    UniqueConstraint("org_pk", "env", "id", "version", name="uq_plans_org_env_id_version"),
)

customers = Table(
    "customers",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("id", String(255)),
    Column("name", String(255)),
    Column("email", String(255)),
    Column("fingerprint", String(255)),
    Column("stripe_id", String(255)),
    Column("metadata", JSON, nullable=False),
    Column("send_email_receipts", Boolean, nullable=False, default=False),
    Column("billing_controls", JSON, nullable=False),
    Column("config", JSON, nullable=False),
    Column("clock_offset_ms", BigInteger, nullable=False, default=0),
    # Earliest time a plan transition or a lock expiry is due; lets hot paths skip the bookkeeping.
    Column("maintenance_due_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", "id", name="uq_customers_org_env_id"),
)

entities = Table(
    "entities",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("id", String(255)),
    Column("name", String(255)),
    Column("feature_id", String(255)),
    Column("billing_controls", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("customer_pk", "id", name="uq_entities_customer_id"),
)

auto_topup_counts = Table(
    "auto_topup_counts",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("feature_id", String(255), nullable=False),
    # ``purchase_limit.count`` as last set: that many top-ups count as bought at ``set_at``.
    Column("purchase_count", Integer, nullable=False),
    Column("set_at", BigInteger, nullable=False),
    UniqueConstraint("customer_pk", "feature_id", name="uq_auto_topup_counts_customer_feature"),
)

customer_plans = Table(
    "customer_plans",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("entity_pk", PK, ForeignKey("entities.pk", ondelete="CASCADE")),
    Column("plan_pk", PK, ForeignKey("plans.pk"), nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("subscription_id", String(255)),
    Column("status", String(16), nullable=False),  # active | scheduled | expired
    Column("quantity", Float, nullable=False, default=1),
    Column("started_at", BigInteger, nullable=False),
    Column("starts_at", BigInteger),
    Column("canceled_at", BigInteger),
    Column("expires_at", BigInteger),
    Column("trial_ends_at", BigInteger),
    Column("current_period_start", BigInteger),
    Column("current_period_end", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_customer_plans_customer_status", "customer_pk", "status"),
)

balance_sources = Table(
    "balance_sources",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("entity_pk", PK, ForeignKey("entities.pk", ondelete="CASCADE")),
    Column("customer_plan_pk", PK, ForeignKey("customer_plans.pk", ondelete="CASCADE")),
    Column("balance_id", String(255)),
    Column("feature_id", String(255), nullable=False),
    Column("plan_id", String(255)),
    Column("is_flag", Boolean, nullable=False, default=False),
    Column("allowance", Float, nullable=False, default=0),
    Column("adjustment", Float, nullable=False, default=0),
    Column("prepaid", Float, nullable=False, default=0),
    Column("balance", Float, nullable=False, default=0),
    Column("unlimited", Boolean, nullable=False, default=False),
    Column("usage_allowed", Boolean, nullable=False, default=False),
    Column("max_purchase", Float),
    Column("interval", String(16)),
    Column("interval_count", Integer, nullable=False, default=1),
    Column("anchor_at", BigInteger),
    Column("next_reset_at", BigInteger),
    Column("expires_at", BigInteger),
    Column("rollover_config", JSON),
    Column("rollovers", JSON, nullable=False),
    Column("price", JSON),
    Column("is_addon", Boolean, nullable=False, default=False),
    Column("continuous", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_balance_sources_customer_feature", "customer_pk", "feature_id"),
    UniqueConstraint("customer_pk", "balance_id", name="uq_balance_sources_customer_balance_id"),
)

events = Table(
    "events",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("entity_id", String(255)),
    Column("feature_id", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("deductions", JSON),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_events_customer_ts", "customer_pk", "timestamp"),
    Index("ix_events_org_ts", "org_pk", "env", "timestamp"),
    # events.aggregate: one feature's events in time order with their values (index-only bin reads)
    Index("ix_events_customer_feature_ts", "customer_pk", "feature_id", "timestamp", "value"),
    Index("ix_events_org_feature_ts", "org_pk", "env", "feature_id", "timestamp", "value"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("scope", String(16), nullable=False),  # "header" | "body"
    Column("key", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # header claims (store.idempotency): the request they were made for and the response stored
    Column("request_hash", String(64)),
    Column("response_status", Integer),
    Column("response_body", Text),
    # billing locks (store.billing_lock): the process holding it (store.lock_holders)
    Column("holder", String(128)),
    UniqueConstraint("org_pk", "env", "scope", "key", name="uq_idempotency_keys_org_env_scope_key"),
    Index("ix_idempotency_keys_created_at", "created_at"),  # the purge of expired claims
)

locks = Table(
    "locks",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("lock_id", String(256), nullable=False),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("entity_id", String(255)),
    Column("feature_id", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("receipt", JSON, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", "lock_id", name="uq_locks_org_env_lock_id"),
)

rewards = Table(
    "rewards",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("id", String(255), nullable=False),
    Column("name", String(255)),
    Column("type", String(32), nullable=False),
    Column("discount_value", Float, nullable=False, default=0),
    Column("grants", JSON, nullable=False),  # [{feature_id, included, expiry: {type, length} | null}]
    Column("free_plan_id", String(255)),
    Column("promo_codes", JSON, nullable=False),  # [{code, global_max_redemption, first_time_transaction}]
    Column("created_at", BigInteger, nullable=False),
    # Coupons (0013_rewards): one_off | months | forever, its month count, the plans (NULL: all plans).
    Column("duration_type", String(16)),
    Column("duration_length", Integer),
    Column("plan_ids", JSON),
    UniqueConstraint("org_pk", "env", "id", name="uq_rewards_org_env_id"),
)

reward_programs = Table(
    "reward_programs",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("id", String(255), nullable=False),
    Column("reward_id", String(255), nullable=False),
    Column("trigger", String(32), nullable=False),  # the API's redeem_on: customer_creation | checkout
    Column("received_by", String(16), nullable=False),  # referrer | all
    Column("max_redemptions", Integer),
    Column("plan_ids", JSON, nullable=False),  # a list, or JSON null when none was given
    Column("created_at", BigInteger, nullable=False),
    Column("exclude_trial", Boolean),  # 0013_rewards
    UniqueConstraint("org_pk", "env", "id", name="uq_reward_programs_org_env_id"),
)

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("program_pk", PK, ForeignKey("reward_programs.pk", ondelete="CASCADE"), nullable=False),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", "code", name="uq_referral_codes_org_env_code"),
    UniqueConstraint("program_pk", "customer_pk", name="uq_referral_codes_program_customer"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("org_pk", PK, nullable=False),
    Column("env", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # referral | promo
    # NULL once the reward is deleted (0013_rewards): a program's redemptions outlive a reward it gave.
    Column("reward_pk", PK, ForeignKey("rewards.pk", ondelete="SET NULL")),
    Column("program_pk", PK, ForeignKey("reward_programs.pk", ondelete="CASCADE")),
    Column("code", String(255), nullable=False),
    Column("referrer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE")),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("applied", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

INITIAL_TABLES: tuple[Table, ...] = (
    organizations,
    users,
    memberships,
    api_keys,
    features,
    plans,
    customers,
    entities,
    customer_plans,
    balance_sources,
    events,
    idempotency_keys,
    locks,
    rewards,
    reward_programs,
    referral_codes,
    redemptions,
)
"""Tables created by migration ``0001_initial``, in dependency order."""
