"""Run a WSGI or ASGI app on a real loopback port in a background thread, for the browser to load.

Ports are chosen by the OS (port 0), so parallel runs and other helpers' servers never collide.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from werkzeug.serving import make_server


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app (Flask) with werkzeug's threaded server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="wsgi-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app (Starlette, Litestar) with uvicorn; yields its base URL once it accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    started = threading.Event()

    def run() -> None:
        server.run(sockets=[sock])
        started.set()  # also release the waiter if startup failed

    thread = threading.Thread(target=run, name="asgi-test-server", daemon=True)
    thread.start()
    # uvicorn flips ``started`` after binding; poll it without a fixed sleep budget per check.
    while not server.started and thread.is_alive():
        started.wait(0.02)
    if not server.started:
        raise RuntimeError("the ASGI test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve(framework: str, app: Any) -> Iterator[str]:
    """Serve ``app`` the way its framework runs in production (WSGI for Flask, ASGI otherwise)."""
    runner = serve_wsgi if framework == "flask" else serve_asgi
    with runner(app) as url:
        yield url
