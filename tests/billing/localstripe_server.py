"""Start ``localstripe`` (from the venv) on a free loopback port for the Stripe processor tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]

# localstripe keeps its whole store in one fixed file (/tmp/localstripe.pickle) and reloads it at start:
# two instances at once (parallel test runs) corrupt each other's store and the second one dies.  Each
# instance here keeps its store in memory only.
_IN_MEMORY_LOCALSTRIPE = (
    "import sys\n"
    "from localstripe import resources\n"
    "resources.Store.try_load_from_disk = lambda self: None\n"
    "resources.Store.dump_to_disk = lambda self: None\n"
    f"sys.path.insert(0, {str(_REPO_ROOT)!r})\n"
    "from tests.billing.localstripe_ext import register_all\n"
    "register_all()\n"
    "from localstripe.server import start\n"
    "sys.exit(start())\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def localstripe() -> Iterator[str]:
    """Yield the API base URL of a fresh localstripe; the process is stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _IN_MEMORY_LOCALSTRIPE, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready = threading.Event()
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                ready.wait(0.05)
        else:
            raise RuntimeError("localstripe did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
