"""What Autumn's ``webhooks.*`` operations add to a webhook endpoint: the caller's id, a note, a change time.

An endpoint of :data:`billing_tables.webhook_endpoints` made through ``webhooks.create_endpoint`` (this
server's own path) has no row here: it answers to its ``ep_`` id, like an endpoint made in Autumn's
dashboard.  ``webhooks.create`` and ``webhooks.sync`` add a row with ``managed`` true and the id the
caller chose; ``webhooks.update`` of an ``ep_`` endpoint adds one with ``managed`` false to keep its note.
Created by migration ``0021_webhooks_sandboxes``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, String, Table, Text, UniqueConstraint

from reference_server.store.tables.core import PK, metadata

webhook_endpoint_details = Table(
    "webhook_endpoint_details",
    metadata,
    Column(
        "endpoint_pk",
        PK,
        ForeignKey("webhook_endpoints.pk", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("org_pk", PK, ForeignKey("organizations.pk", ondelete="CASCADE"), nullable=False),
    Column("env", String(16), nullable=False),
    Column("webhook_id", String(256), nullable=False),  # the id the caller chose, or the ep_ id
    Column("managed", Boolean, nullable=False),  # true: made by webhooks.create / webhooks.sync
    Column("description", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("org_pk", "env", "webhook_id"),
)
