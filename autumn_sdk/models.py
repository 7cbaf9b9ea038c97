"""Every request, response and webhook model of the Autumn API (generated; see ``codegen/``)."""

from __future__ import annotations

from ._generated.models import *  # noqa: F403
from ._generated.models import __all__ as __all__
