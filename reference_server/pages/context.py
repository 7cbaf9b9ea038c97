"""What the pages are built with: the database, the clock, the processors and billing's page actions.

The actions (:mod:`~reference_server.billing.page_actions`) are what completing a page *does* to plans;
the pages themselves only deal with cards, charges and sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from reference_server.billing.page_actions import PageActions
from reference_server.clock import Clock
from reference_server.processors.registry import Processors
from reference_server.store.db import Database


@dataclass
class PagesContext:
    db: Database
    clock: Clock
    processors: Processors
    """The processors: each page acts through its customer's
    (:func:`~reference_server.processors.registry.processor_for`)."""
    hooks: PageActions = field(default_factory=PageActions)


StripeCheckoutCompleted = Callable[[Connection, int, str, Mapping[str, Any], int], str]
"""Applies a verified ``checkout.session.completed`` (org pk, env, the session object, now)."""
