"""The Alembic history builds exactly the schema the tables describe, on SQLite and PostgreSQL.

Every table on the shared ``metadata`` (every module of :mod:`reference_server.store` is imported, so a
new table module is covered without being listed here) is compared with a database built by the
migrations from nothing: tables, columns with their types and nullability, primary keys, foreign keys
with their ``ON DELETE``, unique constraints and indexes.  Alembic's autogenerate comparison covers all
of that but primary keys and PostgreSQL's serial columns, which are checked apart.  The history also
goes down to an empty database and back up to the same schema, and 0008's data move round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from reference_server.store.db import MIGRATIONS_DIR, normalize_url
from reference_server.store.schema_version import full_metadata, head_revision
from reference_server.testing import fresh_database_url

from .helpers import require_postgres


def _full_metadata() -> sa.MetaData:
    return full_metadata()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh, empty database of each kind (no pool: Alembic runs on one plain connection)."""
    if request.param == "postgres":
        require_postgres()
    with fresh_database_url(request.param) as url:
        eng = sa.create_engine(normalize_url(url), poolclass=NullPool)
        try:
            yield eng
        finally:
            eng.dispose()


def _alembic(engine: Engine, verb: str, target: str) -> None:
    """``alembic upgrade|downgrade <target>`` on ``engine``, as :meth:`Database.migrate` runs it."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, target)


def _differences(conn: Connection, target: sa.MetaData) -> list[Any]:
    """What the database lacks or has beyond ``target``: Alembic's diffs, then primary keys and serials."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    diffs: list[Any] = list(compare_metadata(context, target))
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    for table in target.sorted_tables:
        if table.name not in existing:
            continue  # reported by compare_metadata
        reflected = inspector.get_pk_constraint(table.name)
        want = [c.name for c in table.primary_key.columns]
        if reflected["constrained_columns"] != want:
            diffs.append(("primary_key", table.name, reflected["constrained_columns"], want))
        if conn.dialect.name == "postgresql" and reflected.get("name") != table.primary_key.name:
            diffs.append(("primary_key_name", table.name, reflected.get("name"), table.primary_key.name))
        serial = table.autoincrement_column
        if conn.dialect.name == "postgresql" and serial is not None:
            column = next(c for c in inspector.get_columns(table.name) if c["name"] == serial.name)
            if not (column.get("autoincrement") or "nextval(" in str(column.get("default") or "")):
                diffs.append(("not_serial", table.name, serial.name))
    return diffs


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def test_fresh_database_has_exactly_the_tables_schema(engine: Engine) -> None:
    target = _full_metadata()
    _alembic(engine, "upgrade", "head")
    _alembic(engine, "upgrade", "head")  # idempotent on an up-to-date database
    with engine.connect() as conn:
        assert _current_revision(conn) == head_revision()
        assert _differences(conn, target) == []
        assert set(sa.inspect(conn).get_table_names()) == set(target.tables) | {"alembic_version"}


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    target = _full_metadata()
    _alembic(engine, "upgrade", "head")
    _alembic(engine, "downgrade", "base")
    with engine.connect() as conn:
        assert _current_revision(conn) is None
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        if conn.dialect.name == "postgresql":
            functions = conn.execute(sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'autumn_%'"))
            assert functions.scalars().all() == []
    _alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert _current_revision(conn) == head_revision()
        assert _differences(conn, target) == []


def test_0008_moves_refunds_due_and_back(engine: Engine) -> None:
    """Refunds kept as ``idempotency_keys`` rows of scope ``refund_due`` become ``stripe_followups`` rows."""
    _alembic(engine, "upgrade", "0007_stripe_subscriptions")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO organizations (id, name, slug, sandbox_clock_offset_ms, live_clock_offset_ms,"
                " catalog_version, created_at) VALUES ('org_1', 'Org', 'org', 0, 0, 0, 5)"
            )
        )
        org_pk = conn.execute(sa.text("SELECT pk FROM organizations")).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at) VALUES"
                " (:org, 'sandbox', 'refund_due', 'in_1 inv_1', 100), (:org, 'sandbox', 'attach', 'k', 200)"
            ),
            {"org": org_pk},
        )
    _alembic(engine, "upgrade", "0008_stripe_followups")
    with engine.connect() as conn:
        moved = conn.execute(
            sa.text(
                "SELECT org_pk, env, kind, key, customer_pk, version, attempts, next_attempt_at, created_at"
                " FROM stripe_followups"
            )
        ).all()
        kept = conn.execute(sa.text("SELECT scope, key FROM idempotency_keys")).all()
    assert [tuple(r) for r in moved] == [(org_pk, "sandbox", "refund", "in_1 inv_1", None, 1, 0, 100, 100)]
    assert [tuple(r) for r in kept] == [("attach", "k")]
    _alembic(engine, "downgrade", "0007_stripe_subscriptions")
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT scope, key, created_at FROM idempotency_keys ORDER BY scope"))
        rows = back.all()
        assert "stripe_followups" not in sa.inspect(conn).get_table_names()
    assert [tuple(r) for r in rows] == [("attach", "k", 200), ("refund_due", "in_1 inv_1", 100)]
