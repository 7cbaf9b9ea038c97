"""The local processor's registration: no settings, one instance, no per-organization credentials and
no events (:class:`~reference_server.processors.registration.Registration`)."""

from __future__ import annotations

from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registration import Registration, SingleAccount

LOCAL: Registration[SingleAccount] = Registration(
    name=LocalProcessor.name, accounts=lambda values: SingleAccount(LocalProcessor())
)

__all__ = ["LOCAL"]
