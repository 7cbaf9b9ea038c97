"""Alembic environment: uses the connection handed over by :func:`reference_server.store.db.migrate`."""

from __future__ import annotations

import contextlib

from alembic import context

import reference_server.store.leases  # the leases table joins the metadata
from reference_server.store.tables import metadata

with contextlib.suppress(ImportError):  # the paid-billing tables share the metadata when present
    import reference_server.store.billing_tables  # noqa: F401

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
