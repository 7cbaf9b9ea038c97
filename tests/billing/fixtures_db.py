"""A migrated throwaway database with one organization and customers, for the store-backed tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert

from reference_server.store.db import Database
from reference_server.store.tables.core import customers, organizations


def migrated_database(directory: Path) -> Database:
    db = Database(f"sqlite:///{directory / 'billing.db'}")
    db.migrate()
    return db


def add_org(db: Database, org_id: str = "org_test") -> int:
    with db.write() as conn:
        return int(
            conn.execute(
                insert(organizations)
                .values(id=org_id, name="Test org", slug=org_id, catalog_version=0, created_at=0)
                .returning(organizations.c.pk)
            ).scalar_one()
        )


def add_customer(db: Database, org_pk: int, customer_id: str, email: str | None = None) -> int:
    with db.write() as conn:
        return int(
            conn.execute(
                insert(customers)
                .values(
                    org_pk=org_pk,
                    env="sandbox",
                    id=customer_id,
                    email=email,
                    name=customer_id.title(),
                    metadata={},
                    billing_controls={},
                    config={},
                    created_at=0,
                )
                .returning(customers.c.pk)
            ).scalar_one()
        )
