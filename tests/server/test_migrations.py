"""The Alembic history builds exactly the schema the tables describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from reference_server.store.db import Database
from reference_server.store.tables import INITIAL_TABLES, metadata
from reference_server.testing import fresh_database_url

from .conftest import _require_postgres


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrated_schema_matches_tables(kind: str) -> None:
    if kind == "postgres":
        _require_postgres()
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        db.migrate()  # idempotent on an up-to-date database
        core = MetaData(naming_convention=metadata.naming_convention)
        for table in INITIAL_TABLES:
            table.to_metadata(core)
        names = {t.name for t in INITIAL_TABLES}

        def ours(name: str | None, type_: str, parents: dict[str, str | None]) -> bool:
            """Only this part's tables: the paid-billing revision adds its own."""
            if type_ == "schema":
                return True
            table = name if type_ == "table" else parents.get("table_name")
            return table in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": ours})
            diffs = compare_metadata(context, core)
            version = context.get_current_revision()
        db.dispose()
    assert diffs == []
    assert version is not None
