"""``serve --capture DIR``: the local runtime writes capture records as SageMaker does.

Each answered InvokeEndpoint call (a share of them with ``--capture-percent``) becomes one
record in :mod:`tritonship.sagemaker.capture`'s format, appended to
``DIR/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``: the layout SageMaker writes under a
``DestinationS3Uri`` (AWS guide "Capture data from real-time endpoint"). So ``tritonship
capture decode`` and ``tritonship replay`` read a local folder and an S3 prefix alike.

What is captured: the request and the answer as they crossed the runtime, with the
endpoint config tritonship's ``promote --capture`` sets (``application/json`` as JSON,
everything else base64). Calls the runtime refused, and container errors, are not
captured: SageMaker's documentation does not say whether it captures them, and replay
needs answered requests. The record is written before the answer is sent (an append of one
line, flushed): a caller that has its answer finds it captured. A file is opened per
runtime process and hour.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from tritonship.sagemaker.capture import (
    CAPTURE_MODES,
    JSON_CONTENT_TYPES,
    Exchange,
    capture_record,
    object_key,
)


class Sampler:
    """Takes ``percent`` % of the calls, evenly spread.

    Call i is taken when the running share ``floor(i * percent / 100)`` grows, so the share
    is exact over any run (SageMaker's sampling is its own; this one is repeatable).
    """

    def __init__(self, percent: float) -> None:
        """``percent`` of 100 takes every call."""
        self.percent = percent
        self._count = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether to take the next call."""
        with self._lock:
            before = int(self._count * self.percent // 100)
            self._count += 1
            return int(self._count * self.percent // 100) > before


@dataclass(frozen=True)
class CaptureSettings:
    """Where the local runtime captures and how much (``serve --capture``)."""

    folder: Path
    endpoint: str
    variant: str
    percent: float = 100.0
    modes: Sequence[str] = CAPTURE_MODES
    json_types: Sequence[str] = JSON_CONTENT_TYPES


class CaptureWriter:
    """Appends capture records for one endpoint variant; thread-safe."""

    def __init__(self, settings: CaptureSettings) -> None:
        """Nothing is written before the first :meth:`write`."""
        self.settings = settings
        self.sampler = Sampler(settings.percent)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._hour: str | None = None
        self._name = uuid.uuid4().hex[:12]
        self.written = 0

    def path_for(self, when: datetime) -> Path:
        """The file records of ``when``'s hour go to."""
        s = self.settings
        stamp = when.astimezone(timezone.utc).strftime("%M-%S")
        key = object_key("", s.endpoint, s.variant, when, f"{stamp}-{self._name}")
        return s.folder / key

    def capture(self, exchange: Exchange) -> bool:
        """Write one record unless the sampler skips it; True when written."""
        if not self.sampler.take():
            return False
        s = self.settings
        record = capture_record(exchange, s.modes, s.json_types)
        text = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            handle = self._handle(exchange.when)
            handle.write(text)
            handle.flush()
            self.written += 1
        return True

    def _handle(self, when: datetime) -> IO[str]:
        """The open file of ``when``'s hour (a new file each hour, as SageMaker's layout)."""
        hour = when.astimezone(timezone.utc).strftime("%Y%m%d%H")
        if self._file is None or hour != self._hour:
            self.close()
            self._path = self.path_for(when)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("a", encoding="utf-8")
            self._hour = hour
        return self._file

    @property
    def path(self) -> Path | None:
        """The file being written, if any."""
        return self._path

    def close(self) -> None:
        """Close the current file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def exchange(
    request: bytes,
    request_type: str | None,
    answer: bytes,
    answer_type: str | None,
    inference_id: str | None = None,
) -> Exchange:
    """An :class:`Exchange` of now, with a new event id (SageMaker's are UUIDs)."""
    return Exchange(
        request,
        request_type,
        answer,
        answer_type,
        str(uuid.uuid4()),
        datetime.now(timezone.utc),
        inference_id,
    )
