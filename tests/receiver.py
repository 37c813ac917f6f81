"""A real local HTTP receiver (not a mock of httpx) for what Torreya sends out: webhooks,
and text messages through the `webhook` SMS gateway."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    # the delivery worker connects 16 at a time (the standard library's backlog is 5)
    request_queue_size = 64


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 for a test's far end; stops with the block."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        self.server = Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Receiver(LocalServer):
    """An HTTP endpoint on 127.0.0.1 that answers with the planned statuses in turn."""

    plan: list = field(default_factory=list)  # ints, "hang", or (status, body, content type)
    hang_seconds: float = 3.0
    received: list = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    peak: int = 0  # the most requests it was answering at once
    _answering: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()},
                                          body))
                receiver.arrived.set()
                with receiver._lock:
                    receiver._answering += 1
                    receiver.peak = max(receiver.peak, receiver._answering)
                try:
                    step = receiver.plan.pop(0) if receiver.plan else 200
                    if step == "hang":
                        time.sleep(receiver.hang_seconds)
                        step = 200
                finally:
                    # Counted out before the answer goes: once it has, the sender may send
                    # its next request on a new connection (a new thread here) before this
                    # thread would get back to count itself out, and one lane would count
                    # twice (peak 17 of 16 lanes, seen once).
                    with receiver._lock:
                        receiver._answering -= 1
                self._answer(step)

            def _answer(self, step) -> None:
                answer, kind = b"ok", "text/plain"
                if isinstance(step, tuple):  # (status, body, content type)
                    step, answer, kind = step
                self.send_response(step)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.url = self._serve(Handler) + "/hooks/torreya"
        return self

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        from tests.envelopes import problems

        found = [p for headers, body in self.received if "webhook-id" in headers
                 for p in problems(body)]
        assert not found, found  # every envelope received fits the document
