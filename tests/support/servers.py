"""Loopback HTTP servers the unit tests run in a thread (stubs, the local runtime)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from socketserver import BaseServer


@contextmanager
def serving(server: BaseServer, poll: float = 0.05) -> Iterator[str]:
    """Serve ``server`` in a thread; yield its base URL; always shut it down (within 10 s)."""
    thread = threading.Thread(target=server.serve_forever, args=(poll,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class QuietHandler(BaseHTTPRequestHandler):
    """A stub server's handler: no access log on stderr, and one call for a whole answer."""

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send ``status`` with ``body`` (its Content-Length, and Content-Type unless None)."""
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
