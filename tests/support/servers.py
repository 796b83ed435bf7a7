"""Loopback HTTP servers the unit tests run in a thread (stubs, the local runtime)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
