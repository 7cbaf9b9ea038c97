"""Stripe resources localstripe lacks, registered into its routing table before it starts.

localstripe (PyPI) models most of Stripe's v1 API but not everything the Stripe processor uses.
Each module here adds one missing resource, modelled on Stripe's documented object, on top of
localstripe's own store and objects; importing this package registers all of them.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all() -> None:
    """Import every module of this package (each appends its routes to ``localstripe.resources.extra_apis``),
    then import ``localstripe.server`` (which routes ``extra_apis``) and call each module's optional
    ``install(app)`` for what needs the aiohttp app itself (HTML pages, middleware)."""
    modules = [
        importlib.import_module(f"{__name__}.{module.name}")
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    ]
    from localstripe.server import app

    for module in modules:
        install = getattr(module, "install", None)
        if install is not None:
            install(app)
