"""Usage-limit window counters (revision ``0020_usage_limits``).

``usage_limit_windows``: the usage one limit identity (``limit_key``: feature and filter) has counted in
its current window, for a customer (``scope_pk`` 0, the usage of the customer and all its entities) or
one entity (``scope_pk`` its pk).  A row whose ``window_start`` is not the current window's start
counts nothing: the next counted usage starts it again.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, String, Table, UniqueConstraint

from reference_server.store.tables.core import PK, metadata

usage_limit_windows = Table(
    "usage_limit_windows",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("customer_pk", PK, ForeignKey("customers.pk", ondelete="CASCADE"), nullable=False),
    Column("scope_pk", BigInteger, nullable=False),
    Column("limit_key", String(1024), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("usage", Float, nullable=False),
    UniqueConstraint("customer_pk", "scope_pk", "limit_key", name="uq_usage_limit_windows_scope_key"),
)
