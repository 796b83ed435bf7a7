"""Shared pieces of the load and fault tests: a thread-safe tally, waits, a request in flight."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

from tritonship.sagemaker.client import HttpTransport
from tritonship.sagemaker.wire import EncodedRequest, decode_response, encode_request


@dataclass
class Tally:
    """What every client saw: counts per kind (failures as "<kind> FAILED"), first failures."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def add(self, kind: str, failure: str | None = None) -> None:
        with self.lock:
            self.counts[kind if failure is None else f"{kind} FAILED"] += 1
            if failure and len(self.failures) < 20:
                self.failures.append(failure)


def until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for a condition against a deadline (the condition, not the clock, decides)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def cpu_ticks(pid: int) -> int:
    """CPU time a process has used so far, in clock ticks (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def send_in_background(url: str, request: EncodedRequest) -> tuple[threading.Thread, list]:
    """Send ``request`` from a thread; the answer or the error lands in the returned list."""
    outcome: list[BaseException | object] = []

    def send() -> None:
        try:
            outcome.append(HttpTransport(url, retries=3).send(request))
        except BaseException as err:  # handed to the test thread
            outcome.append(err)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, outcome


def invoke(url: str, images: list[bytes], binary: bool = True) -> np.ndarray:
    """POST ``images`` to ``url``/invocations as one request; assert 200; the OUTPUT rows."""
    request = encode_request(images, binary=binary)
    response = requests.post(
        f"{url}/invocations",
        data=request.body,
        headers={"Content-Type": request.content_type},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return decode_response(response.content, response.headers.get("Content-Type"))


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (tritonserver plus its stubs)."""
    from tritonship.local.process import children

    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        pending += children(current)
    return total
