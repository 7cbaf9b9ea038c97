"""A real local webhook receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """A real HTTP server that verifies signatures and answers 500 for its first ``failures`` requests."""

    def __init__(self, secret: str, failures: int) -> None:
        self.secret = secret
        self.failures = failures
        self.requests = 0
        self.accepted: dict[str, dict[str, object]] = {}
        self.seen_ids: list[str] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload = Webhook(receiver.secret).verify(body, headers)
                assert headers["svix-id"] == headers["webhook-id"]
                with receiver.changed:
                    receiver.requests += 1
                    receiver.seen_ids.append(headers["webhook-id"])
                    receiver.changed.notify_all()
                if receiver.requests <= receiver.failures:
                    self.send_response(500)
                else:
                    with receiver.changed:
                        receiver.accepted.setdefault(headers["webhook-id"], payload)
                        receiver.changed.notify_all()
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, object]]:
        """Block until ``count`` distinct messages were accepted (or the timeout passes); returns them."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.accepted) >= count, timeout)
            return list(self.accepted.values())

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> int:
        """Block until ``count`` requests arrived (accepted or not); returns how many did."""
        with self.changed:
            self.changed.wait_for(lambda: self.requests >= count, timeout)
            return self.requests
