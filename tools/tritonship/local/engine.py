"""What every serving engine shares: the interface, its errors and the readiness wait."""

from __future__ import annotations

import errno
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Protocol

from tritonship.errors import TritonshipError, TritonshipTimeout

PING_INTERVAL_SECONDS = 0.25


#: The title of the server's last log lines below an engine error.
LOG_TAIL_TITLE = "--- last server log lines ---"


class EngineError(TritonshipError):
    """A server could not be started, exited early or could not be stopped.

    ``log_tail``: the server's last log lines, shown below the message.
    """

    def __init__(self, message: str, hint: str | None = None, log_tail: str = "") -> None:
        details = f"{LOG_TAIL_TITLE}\n{log_tail}" if log_tail else ""
        super().__init__(message, hint, details=details)
        self.log_tail = log_tail


class PortInUseError(EngineError):
    """The port the server should listen on is already taken."""


class EngineTimeout(EngineError, TritonshipTimeout):
    """The server did not answer ``GET /ping`` with 200 before the deadline."""


class Engine(Protocol):
    """One Triton server process or container serving the SageMaker frontend."""

    url: str

    def start(self) -> None:
        """Start the server (returns at once; see :meth:`wait_ready`)."""

    def wait_ready(self, timeout: float) -> float:
        """Wait until ``GET /ping`` is 200; return the seconds waited."""

    def is_alive(self) -> bool:
        """Whether the server is still running."""

    def health_problem(self) -> str | None:
        """Why the server can no longer answer correctly (it exited, ...), or None."""

    @property
    def log_location(self) -> str:
        """Where the user reads the whole log: a file path, or the command that shows it."""

    def logs(self, n: int = 50) -> str:
        """The server's last ``n`` log lines."""

    def stop(self) -> None:
        """Stop the server: politely, then firmly."""


def ensure_port_free(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - Triton binds all
    """Raise :class:`PortInUseError` if something already listens on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"port {port} is already in use",
                hint="stop the other server (tritonship stop) or choose another --port",
            ) from None


def free_port() -> int:
    """Return a TCP port the OS considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ping(url: str, timeout: float = 2.0) -> int | None:
    """Return the HTTP status of ``GET <url>/ping``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def wait_for_ping(
    url: str, timeout: float, alive: Callable[[], bool], logs: Callable[[], str]
) -> float:
    """Poll ``/ping`` until 200 within ``timeout`` s of wall-clock time; return seconds waited.

    Fails fast with :class:`EngineError` the moment ``alive()`` is False, and with
    :class:`EngineTimeout` at the deadline; both carry the last log lines.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if not alive():
            raise EngineError(
                "the server exited before it was ready",
                hint="the log lines below say why",
                log_tail=logs(),
            )
        status = ping(url, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        if status == 200:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise EngineTimeout(
                f"{url}/ping did not answer 200 within {timeout:g} s (last status {status})",
                hint="a slow model load may need a longer timeout; the log lines below may say why",
                log_tail=logs(),
            )
        time.sleep(PING_INTERVAL_SECONDS)
