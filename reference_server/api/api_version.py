"""The ``x-api-version`` header: the forms Autumn accepts, resolved to one of its versions.

Autumn (``parseVersion`` in its shared API package) takes a CalVer date of a release, optionally with a
``.clover`` suffix (``2025-04-17``, ``2025-04-17.clover``), a SemVer of a known version written whole or
in part (``2``, ``2.3``, ``2.3.0``), ``beta``, or a legacy float (``1.1``, ``0.2``); anything else is 400
``invalid_api_version``.  This server serves the 2.3.0 shapes whatever the version; the header is
checked so a client that sends garbage hears it, as it would from Autumn.  ``2.4.0`` and ``2.5.0`` are
known too: Autumn's newer releases, the latter what the official Python SDK 1.2.0 sends.
"""

from __future__ import annotations

import re

KNOWN_SEMVER = frozenset(
    {"0.1.0", "0.2.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0", "2.5.0"}
)
BETA = "beta"
CALVER_RELEASES = {
    "2025-02-01": "0.1.0",
    "2025-04-01": "0.2.0",
    "2025-04-17": "1.1.0",
    "2025-05-05": "1.2.0",
    "2025-06-01": BETA,
    "2026-03-31": "2.0.0",
    "2026-04-01": "2.1.0",
}
"""Release dates Autumn's version registry names (the CalVer form of each version)."""
LEGACY_FLOATS = {0.1: "0.1.0", 0.2: "0.2.0", 1.1: "1.1.0", 1.2: "1.2.0", 1.4: BETA}
"""Autumn's version system 1 and 2 numbers, sent as plain floats by older clients."""

_CALVER = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.clover)?$")
_SEMVER = re.compile(r"^\d+(\.\d+)*$")
_FLOAT = re.compile(r"^\s*\d+(\.\d+)?")


def parse_api_version(value: str) -> str | None:
    """The version ``value`` names (``"2.3.0"``, ``"beta"``...), or None when Autumn would refuse it."""
    calver = _CALVER.match(value)
    if calver is not None:
        return CALVER_RELEASES.get(calver.group(1))
    if _SEMVER.match(value):
        parts = [*value.split("."), "0", "0"]
        normalized = ".".join(parts[:3])  # "2" and "2.0" are 2.0.0; "2.03" is no version
        if normalized in KNOWN_SEMVER:
            return normalized
    if value == BETA:
        return BETA
    number = _FLOAT.match(value)
    if number is not None:
        return LEGACY_FLOATS.get(float(number.group(0)))
    return None
