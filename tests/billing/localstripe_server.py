"""Start ``localstripe`` (from the venv) on a free loopback port for the Stripe processor tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import httpx

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


TEST_EXPIRY = {"expiry": "12 / 34", "cvc": "123"}


def stripe_checkout_url(page_url: str, client: httpx.Client | None = None) -> str:
    """Press "Continue to Stripe" on one of the server's pages (checkout summary, setup, portal): the
    localstripe Checkout URL it redirects to."""
    with httpx.Client(timeout=30) if client is None else _borrowed(client) as http:
        started = http.post(page_url.split("?")[0].rstrip("/") + "/stripe")
        assert started.status_code == 303, started.text
        return str(started.headers["location"])


def submit_stripe_card(stripe_url: str, number: str, authenticate: bool | None = True) -> httpx.Response:
    """Type a test card on localstripe's hosted Checkout page (and pass 3-D Secure when asked, unless
    ``authenticate`` is None): Stripe's answer, a 303 to ``success_url`` once the card is set up."""
    with httpx.Client(timeout=30) as http:
        typed = http.post(stripe_url, data={"card_number": number, **TEST_EXPIRY})
        location = typed.headers.get("location", "")
        if typed.status_code == 303 and location.endswith("/authenticate") and authenticate is not None:
            decision = "complete" if authenticate else "fail"
            return http.post(urljoin(stripe_url, location), data={"decision": decision})
        return typed


def pay_through_stripe_checkout(page_url: str, number: str = "4242424242424242") -> httpx.Response:
    """A payer's whole way through Stripe Checkout from one of the server's pages: Continue to Stripe,
    the card (3-D Secure completed), then Stripe's redirect to the server's return route; the server's
    response to that return (a 303 to the caller's ``success_url`` when all went well); a card Stripe
    declines while setting it up: Stripe's page with the error (402), the payer still on Stripe."""
    url = page_url if "/c/pay/" in page_url else stripe_checkout_url(page_url)
    done = submit_stripe_card(url, number)
    if done.status_code == 402:
        return done
    assert done.status_code == 303, done.text
    return httpx.get(str(done.headers["location"]), timeout=30)


@contextmanager
def _borrowed(client: httpx.Client) -> Iterator[httpx.Client]:
    yield client
