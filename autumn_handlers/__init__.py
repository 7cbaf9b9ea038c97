"""autumnHandler for Python web apps: the server side of the autumn-js React hooks.

The framework adapters live in :mod:`autumn_handlers.flask`, :mod:`autumn_handlers.starlette`
(also FastAPI) and :mod:`autumn_handlers.litestar`; each is imported on its own so an app only needs
its own framework installed.
"""

from .cors import CORSConfig
from .identity import IdentifyResult, Identity
from .responses import HandlerResponse
from .routes import ROUTES

__all__ = ["ROUTES", "CORSConfig", "HandlerResponse", "IdentifyResult", "Identity"]
