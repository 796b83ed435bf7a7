"""``serve --mirror URL``: a local shadow variant, tried before any cloud spend.

After the local runtime has answered an InvokeEndpoint call from the live server, it sends
a copy of the request (a share of them with ``--mirror-percent``) to a second server's
container API (``URL/invocations``), compares the two answers
(:mod:`tritonship.sagemaker.agreement`) and logs the comparison: one JSON line per
mirrored request in ``mirror.jsonl`` (in the run folder, or ``--mirror-log FILE``) and a
line in the runtime's log. As with SageMaker's shadow variants (AWS guide "Shadow tests":
"Only the responses of the production variant are returned to the calling
application"), the caller never waits for the mirror and never sees its answer: copies are
queued for one background thread, and dropped (and counted) when the queue is full.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tritonship.local.capture import Sampler
from tritonship.sagemaker.agreement import Agreement, Tolerance, compare_answers
from tritonship.sagemaker.capture import inference_time

LOG = logging.getLogger("tritonship.local.mirror")
#: Copies waiting for the mirror; beyond this the copy is dropped, never the live call.
QUEUE_SIZE = 64


@dataclass(frozen=True)
class MirrorSettings:
    """Where copies go, how many, where the comparison is logged."""

    url: str
    log: Path
    percent: float = 100.0
    tolerance: Tolerance = field(default_factory=Tolerance)
    timeout: float = 60.0


@dataclass(frozen=True)
class LiveCall:
    """A call the live server answered, as the mirror compares it."""

    event_id: str
    body: bytes
    content_type: str | None
    answer: bytes
    answer_type: str | None
    seconds: float
    when: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class MirrorCounts:
    """How the mirrored calls went."""

    sent: int = 0
    agreed: int = 0
    disagreed: int = 0
    failed: int = 0
    dropped: int = 0


class Mirror:
    """Queues copies of live calls and compares the second server's answers."""

    def __init__(self, settings: MirrorSettings) -> None:
        """Start the background thread (a daemon: it never keeps the runtime alive)."""
        import requests

        self.settings = settings
        self.counts = MirrorCounts()
        self.sampler = Sampler(settings.percent)
        self._queue: queue.Queue[LiveCall | None] = queue.Queue(QUEUE_SIZE)
        self._session = requests.Session()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="mirror", daemon=True)
        self._thread.start()

    def submit(self, call: LiveCall) -> bool:
        """Queue a copy of ``call`` unless the share skips it or the queue is full."""
        if not self.sampler.take():
            return False
        try:
            self._queue.put_nowait(call)
        except queue.Full:
            self.counts.dropped += 1
            LOG.warning("mirror: queue full, copy of %s dropped", call.event_id)
            return False
        return True

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                self._mirror(call)
            except Exception:  # noqa: BLE001 - the mirror must never stop the runtime
                LOG.exception("mirror: comparing %s failed", call.event_id)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _send(self, call: LiveCall) -> tuple[dict[str, Any], tuple[bytes, str | None] | None]:
        """POST the copy; what happened, and the answer when there is one."""
        import requests

        url = f"{self.settings.url.rstrip('/')}/invocations"
        started = time.perf_counter()
        headers = {"Content-Type": call.content_type or "application/json"}
        try:
            response = self._session.post(
                url, data=call.body, headers=headers, timeout=self.settings.timeout
            )
        except requests.RequestException as err:
            return {"url": url, "error": f"{type(err).__name__}: {err}"}, None
        seconds = time.perf_counter() - started
        result = {"url": url, "status": response.status_code, "seconds": round(seconds, 6)}
        if response.status_code != 200:
            result["error"] = response.text[:300]
            return result, None
        return result, (response.content, response.headers.get("Content-Type"))

    def _mirror(self, call: LiveCall) -> None:
        """Send one copy, compare, log."""
        mirror, answer = self._send(call)
        agreement = (
            compare_answers((call.answer, call.answer_type), answer, self.settings.tolerance)
            if answer is not None
            else None
        )
        self._count(agreement)
        entry = {
            "eventId": call.event_id,
            "inferenceTime": inference_time(call.when),
            "contentType": call.content_type,
            "live": {"seconds": round(call.seconds, 6), "contentType": call.answer_type},
            "mirror": mirror,
            "agree": agreement.agree if agreement else None,
            "agreement": agreement.as_json() if agreement else None,
        }
        self._append(entry)
        LOG.info("mirror: %s", summary_line(entry, agreement))

    def _count(self, agreement: Agreement | None) -> None:
        with self._lock:
            self.counts.sent += 1
            if agreement is None:
                self.counts.failed += 1
            elif agreement.agree:
                self.counts.agreed += 1
            else:
                self.counts.disagreed += 1

    def _append(self, entry: dict[str, Any]) -> None:
        self.settings.log.parent.mkdir(parents=True, exist_ok=True)
        with self.settings.log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        """Stop the thread after the copies already queued."""
        self._queue.put(None)
        self._thread.join(timeout=self.settings.timeout + 5)


def summary_line(entry: dict[str, Any], agreement: Agreement | None) -> str:
    """``<event>: agree (...) live 41 ms, mirror 55 ms`` or why there is no comparison."""
    mirror = entry["mirror"]
    live_ms = entry["live"]["seconds"] * 1000
    if agreement is None:
        return f"{entry['eventId']}: no comparison, the mirror failed: {mirror.get('error')}"
    verdict = "agree" if agreement.agree else "DISAGREE"
    return (
        f"{entry['eventId']}: {verdict} ({agreement.detail}); live {live_ms:.0f} ms, "
        f"mirror {mirror['seconds'] * 1000:.0f} ms"
    )
