"""autumnHandler for Python web apps: the server side of the autumn-js React hooks (1.2.x, API 2.3.0).

The hooks POST camelCase JSON to ``/api/autumn/<route>`` (15 routes: ``getOrCreateCustomer``,
``attach``, ``listPlans``, ``listEvents``, ...). The handler decides *who* is asking with your
``identify(request)``, strips the fields only the server may set, injects ``customer_id``, calls
Autumn through :mod:`autumn_sdk` and answers in the camelCase the hooks read::

    from autumn_handlers import CORSConfig, Identity

    def identify(request):                       # sync or async; the framework's own request
        user = current_user(request)
        if user is None:
            return None                          # the hooks then get a 401 no_customer_id
        return Identity(user.id, {"name": user.name, "email": user.email})

    URL = "http://127.0.0.1:8080"                # your Autumn server; name it (see below)
    # Flask
    from autumn_handlers.flask import autumn_blueprint
    app.register_blueprint(autumn_blueprint(identify, autumn_url=URL))
    # Starlette / FastAPI
    from autumn_handlers.starlette import AutumnMount, autumn_app
    Starlette(routes=[AutumnMount(identify, autumn_url=URL)])
    fastapi_app.mount("/api/autumn", autumn_app(identify, autumn_url=URL))
    # Litestar
    from autumn_handlers.litestar import autumn_router
    Litestar(route_handlers=[autumn_router(identify, autumn_url=URL)])

Every adapter takes ``secret_key`` (default env ``AUTUMN_SECRET_KEY``), ``autumn_url`` (a self-hosted or
reference server; default env ``AUTUMN_URL``, else Autumn's cloud), ``client`` (an
``Autumn``/``AsyncAutumn`` to use instead), ``cors`` (a :class:`CORSConfig`, for a page on another
origin), ``fail_open`` (default env ``AUTUMN_FAIL_OPEN``, on), ``max_body_bytes`` (default 1 MiB) and,
except the Starlette ``autumn_app``, ``path_prefix`` (default ``/api/autumn``). Each adapter module
imports only its own framework. What the handler refuses and how it reports failures (never with an
exception's text) is described in :mod:`autumn_handlers.core` and :mod:`autumn_handlers.inputs`.
"""

from autumn_kit import refuse_mixed_install

refuse_mixed_install()  # before autumn_sdk, which the official SDK's files may have replaced

from .cors import CORSConfig  # noqa: E402
from .identity import IdentifyResult, Identity  # noqa: E402
from .responses import HandlerResponse  # noqa: E402

__all__ = ["CORSConfig", "HandlerResponse", "IdentifyResult", "Identity"]
