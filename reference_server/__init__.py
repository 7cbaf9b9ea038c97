"""The Autumn reference server: the Autumn API (SQLite by default, PostgreSQL in production).

``create_app(...)`` returns the ASGI app; ``autumn-server`` runs it (see :mod:`reference_server.cli`).
"""

from __future__ import annotations

from typing import Any

from autumn_kit import refuse_mixed_install

refuse_mixed_install()  # before autumn_sdk, which the official SDK's files may have replaced

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`reference_server.app.create_app` (imported lazily to keep ``import`` cheap)."""
    from reference_server.app import create_app as _create_app

    return _create_app(*args, **kwargs)
