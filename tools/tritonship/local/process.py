"""Helpers for the background processes the toolkit starts (tritonserver, the runtime proxy)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tritonship.local.engine import EngineError

#: prctl(2)'s option that asks the kernel for a signal when the parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child before exec: get ``sig`` (SIGTERM by default) when the parent dies.

    The kernel sends it when the *thread* that forked exits, so start attached processes
    from a thread that lives as long as they should.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def runs(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is alive and its command line holds ``marker`` (guards pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in cmdline


def tail(path: Path, n: int) -> str:
    """Return the last ``n`` lines of a text file ("" when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * max(n, 1)))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def terminate(pid: int, timeout: float, wait: Callable[[float], object], name: str) -> None:
    """Send SIGINT, wait up to ``timeout`` s, then SIGKILL and wait again."""
    for sig, deadline in ((signal.SIGINT, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        try:
            wait(deadline)
            return
        except subprocess.TimeoutExpired:
            continue
    raise EngineError(f"{name} (pid {pid}) did not exit after SIGKILL")


def wait_gone(pid: int, timeout: float, alive: Callable[[], bool]) -> None:
    """Wait until ``alive()`` is False for a process that is not our child."""
    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(f"pid {pid}", timeout)
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
