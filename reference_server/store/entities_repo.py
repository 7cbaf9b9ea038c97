"""Entities as stored (a customer's seats, workspaces, ...): the writes and lists behind
``service.entities`` and ``service.license_ops``; reading one entity is :mod:`.subjects`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from reference_server.store.subjects import EntityRow, entity_from_row
from reference_server.store.tables import entities


def insert_entity(
    conn: Connection,
    customer_pk: int,
    *,
    entity_id: str | None,
    name: str | None,
    feature_id: str,
    billing_controls: dict[str, Any],
    created_at: int,
) -> EntityRow:
    """Insert an entity of the customer and read it back."""
    pk = conn.execute(
        insert(entities)
        .values(
            customer_pk=customer_pk,
            id=entity_id,
            name=name,
            feature_id=feature_id,
            billing_controls=billing_controls,
            created_at=created_at,
        )
        .returning(entities.c.pk)
    ).scalar_one()
    return entity_from_row(conn.execute(select(entities).where(entities.c.pk == pk)).one())
