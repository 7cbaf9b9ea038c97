"""Whether a database's schema is the one this code expects (readiness, ``--no-migrate-on-start``)."""

from __future__ import annotations

import functools
import importlib
import pkgutil

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

import reference_server.store
from reference_server.store.db import MIGRATIONS_DIR, Database
from reference_server.store.tables.core import metadata


def full_metadata() -> MetaData:
    """The shared ``MetaData`` with every table module of the store loaded (the migrations excepted):
    what a migrated database must equal, and what autogenerate compares against."""
    prefix = reference_server.store.__name__ + "."
    for module in pkgutil.walk_packages(reference_server.store.__path__, prefix):
        if not module.name.startswith(prefix + "migrations"):
            importlib.import_module(module.name)
    return metadata


class MigrationsPending(RuntimeError):
    """The database is not at this code's newest revision (and this process does not migrate)."""


@functools.cache
def head_revision() -> str:
    """The newest revision of the migrations this code ships."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None, "the migrations have one head"
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(db: Database) -> None:
    """Raise :class:`MigrationsPending` unless the database is at :func:`head_revision`."""
    current = current_revision(db)
    if current != head_revision():
        raise MigrationsPending(
            f"the database is at revision {current or 'none (empty)'}, this server needs "
            f"{head_revision()}: run `autumn-server migrate` first"
        )


__all__ = ["MigrationsPending", "current_revision", "full_metadata", "head_revision", "require_current"]
