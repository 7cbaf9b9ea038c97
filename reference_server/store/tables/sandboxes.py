"""Autumn's sandboxes: child organizations of an organization, each with its own catalog, customers and key.

A sandbox is an :data:`organizations` row whose ``parent_org_pk`` is the organization that made it (as
the platform API's sub-organizations are); this table marks it a sandbox and keeps the name, colour and
icon Autumn's dashboard labels it with.  Created by migration ``0021_webhooks_sandboxes``.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table

from reference_server.store.tables.core import PK, metadata

sandboxes = Table(
    "sandboxes",
    metadata,
    Column(
        "org_pk",
        PK,
        ForeignKey("organizations.pk", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("parent_org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("slug", String(255), nullable=False),
    Column("color", String(16), nullable=False),
    Column("icon", String(64), nullable=False),
    Index("ix_sandboxes_parent_org_pk", "parent_org_pk"),
)
