"""Revision 0011_dashboard builds exactly the tables of :mod:`reference_server.store.tables.dashboard`."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from reference_server.store.db import Database
from reference_server.store.tables import dashboard as dashboard_tables
from reference_server.store.tables.core import metadata
from reference_server.testing import fresh_database_url
from tests.server.helpers import require_postgres

TABLES = [
    dashboard_tables.org_branding,
    dashboard_tables.dashboard_admins,
    dashboard_tables.dashboard_sessions,
    dashboard_tables.api_request_log,
]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrated_dashboard_tables_match(kind: str) -> None:
    if kind == "postgres":
        require_postgres()
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        ours = MetaData(naming_convention=metadata.naming_convention)
        for table in metadata.sorted_tables:  # the referenced tables too, so foreign keys resolve
            table.to_metadata(ours)
        names = {t.name for t in TABLES}

        def include(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
            table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
            return table in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include})
            diffs = compare_metadata(context, ours)
            version = context.get_current_revision()
        db.dispose()
    assert diffs == []
    assert version is not None
