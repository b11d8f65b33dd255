"""A real HTTP webhook receiver on loopback for the delivery tests.

It records every request (headers and body), can fail the first N attempts of each delivery
with a chosen status, and dedupes on ``webhook-id`` the way the Standard Webhooks
specification asks receivers to.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def notice(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """State shared by the handler threads."""

    fail_first: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    retry_after_s: int | None = None
    requests: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def accepted_ids(self) -> set[str]:
        with self.lock:
            return set(self.accepted)


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            webhook_id = headers.get("webhook-id", "")
            if state.delay_s:
                time.sleep(state.delay_s)
            with state.lock:
                state.requests.append(Received(self.path, headers, body))
                state.attempts[webhook_id] += 1
                failing = state.attempts[webhook_id] <= state.fail_first
                if not failing:
                    state.accepted[webhook_id] += 1
            status = state.fail_status if failing else 204
            self.send_response(status)
            if failing and state.retry_after_s is not None:
                self.send_header("retry-after", str(state.retry_after_s))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


class ReceiverServer:
    """Runs a :class:`Receiver` in a thread; use as a context manager."""

    def __init__(self, state: Receiver | None = None) -> None:
        self.state = state or Receiver()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self.state.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
