"""Alembic environment: uses the connection handed over by :func:`reference_server.store.db.migrate`."""

from __future__ import annotations

from alembic import context

from reference_server.store.schema_version import full_metadata

metadata = full_metadata()  # every table of the store, so autogenerate proposes no spurious drops

connection = context.config.attributes.get("connection")
if connection is None:
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite:///autumn.db")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
