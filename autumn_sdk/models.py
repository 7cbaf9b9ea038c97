"""Every request, response and webhook model of the Autumn API (generated; see ``codegen/``).

Each API group's models are imported the first time one of them is used, as in ``_generated.models``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._generated.models import __all__ as __all__
from ._generated.models import __dir__ as __dir__
from ._generated.models import __getattr__ as __getattr__

if TYPE_CHECKING:
    from ._generated.models import *  # noqa: F403
