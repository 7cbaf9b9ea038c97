"""Fixtures of the handler tests: the seeded reference server (see ``live``)."""

from __future__ import annotations

from .live import reference

__all__ = ["reference"]
