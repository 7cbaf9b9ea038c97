"""Public ids of the rows the server creates: a prefix and 24 random hex digits (``in_…``, ``pm_…``)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
