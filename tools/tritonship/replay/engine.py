"""``tritonship replay``: captured requests sent again, the answers compared.

Each captured request goes, one at a time and in the order it was captured, to target A
(``--url`` or ``--endpoint``) and, with ``--against``, to target B, with the body and
Content-Type it was captured with. The answers are compared
(:mod:`tritonship.sagemaker.agreement`): A against B, or without B, A against the answer
captured with the request (what production answered). Latency is the client's round trip
of each request, per target.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError, UsageError
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.agreement import (
    DEFAULT_TOLERANCE,
    Agreement,
    Tolerance,
    compare_answers,
)
from tritonship.sagemaker.capture import CaptureRecord, CaptureSet, iter_requests, sorted_records
from tritonship.sagemaker.request_body import decode_request, images_in
from tritonship.sagemaker.wire import JSON_CONTENT_TYPE, EncodedRequest

CAPTURED = "captured"


@dataclass(frozen=True)
class Target:
    """Where requests are replayed: a label and a transport (``send(EncodedRequest)``)."""

    label: str
    where: str
    transport: Any


def make_target(spec: str, endpoint: bool, label: str | None = None) -> Target:
    """A container URL (``HttpTransport``) or an endpoint name (``SageMakerTransport``)."""
    from tritonship.sagemaker.client import HttpTransport, SageMakerTransport

    if endpoint:
        return Target(label or spec, f"endpoint {spec}", SageMakerTransport(spec))
    if not spec.startswith(("http://", "https://")):
        raise UsageError(f"{spec!r} is not a URL", hint="e.g. http://127.0.0.1:8080")
    return Target(label or spec, spec, HttpTransport(spec))


def against_target(spec: str, label: str | None = None) -> Target:
    """``--against URL|NAME``: a URL when it looks like one, else an endpoint name."""
    return make_target(spec, not spec.startswith(("http://", "https://")), label)


@dataclass(frozen=True)
class Sent:
    """One target's answer to one request (``body`` is not reported)."""

    ok: bool
    seconds: float | None = None
    content_type: str | None = None
    error: str | None = None
    body: bytes = field(default=b"", repr=False)


@dataclass
class Replayed:
    """One captured request, replayed: the answers and how they compare."""

    record: CaptureRecord
    request_bytes: int = 0
    content_type: str = ""
    images: int = 0
    answers: list[Sent] = field(default_factory=list)
    agreement: Agreement | None = None
    skipped: str | None = None

    @property
    def failed(self) -> bool:
        """Whether a target failed to answer it (so there is nothing to compare)."""
        return self.skipped is None and any(not sent.ok for sent in self.answers)


@dataclass
class ReplayResult:
    """A whole replay: where from, against what, every request."""

    source: str
    targets: list[Target]
    reference: str
    tolerance: Tolerance
    items: list[Replayed]
    unreadable: list[str]
    started: str

    @property
    def compared(self) -> list[Replayed]:
        """The requests whose answers were compared."""
        return [item for item in self.items if item.agreement is not None]

    @property
    def disagreeing(self) -> list[Replayed]:
        """The requests whose answers disagree."""
        return [item for item in self.compared if not item.agreement.agree]  # type: ignore[union-attr]

    @property
    def failed(self) -> list[Replayed]:
        """The requests a target did not answer."""
        return [item for item in self.items if item.failed]

    @property
    def ok(self) -> bool:
        """Every request was answered, and every comparison agrees."""
        return bool(self.compared) and not self.disagreeing and not self.failed


def _send(target: Target, request: EncodedRequest) -> Sent:
    """Send once; a refusal or failure is recorded, not raised."""
    try:
        answer = target.transport.send(request)
    except TritonshipError as err:
        return Sent(False, error=str(err))
    return Sent(True, answer.seconds, answer.content_type, body=answer.body)


def _image_count(body: bytes, content_type: str) -> int:
    """How many encoded images the request carries (0 when it is not an image request)."""
    try:
        decoded = decode_request(body, content_type)
    except TritonshipError:
        return 0
    return sum(len(images_in(tensor) or []) for tensor in decoded.inputs)


def _reference(item: Replayed, record: CaptureRecord) -> tuple[bytes, str | None] | str:
    """The answer A is compared with: B's, else the captured one; or why there is none."""
    if len(item.answers) > 1:
        other = item.answers[1]
        return (other.body, other.content_type) if other.ok else "B failed"
    if record.answer is None:
        return "no answer was captured (capture Output too, or replay --against a second target)"
    try:
        return record.answer.body(), record.answer.content_type
    except TritonshipError as err:
        return f"the captured answer cannot be decoded: {err}"


def replay_one(record: CaptureRecord, targets: Sequence[Target], tolerance: Tolerance) -> Replayed:
    """Send one captured request to every target and compare the answers."""
    item = Replayed(record)
    if record.request is None:
        item.skipped = "no request was captured (Output mode only)"
        return item
    try:
        body = record.request.body()
    except TritonshipError as err:
        item.skipped = str(err)
        return item
    item.content_type = record.request.content_type or JSON_CONTENT_TYPE
    item.request_bytes = len(body)
    item.images = _image_count(body, item.content_type)
    request = EncodedRequest(body, item.content_type)
    item.answers = [_send(target, request) for target in targets]
    first = item.answers[0]
    reference = _reference(item, record)
    if first.ok and not isinstance(reference, str):
        item.agreement = compare_answers((first.body, first.content_type), reference, tolerance)
    elif first.ok and not item.failed and isinstance(reference, str):
        item.skipped = reference
    return item


def replay(
    captures: CaptureSet,
    targets: Sequence[Target],
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    limit: int | None = None,
    say: Reporter = quiet,
) -> ReplayResult:
    """Replay every captured request (the first ``limit``) against ``targets`` (1 or 2)."""
    if not 1 <= len(targets) <= 2:
        raise UsageError("replay compares one or two targets")
    records = sorted_records(iter_requests(captures.records))[:limit]
    if not records:
        raise UsageError(
            f"{captures.location} holds no captured request ({captures.files} file(s), "
            f"{len(captures.records)} record(s))",
            hint="capture the Input mode: promote --capture, or serve --capture DIR",
        )
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    items = []
    for number, record in enumerate(records, 1):
        item = replay_one(record, targets, tolerance)
        items.append(item)
        say(f"{number}/{len(records)} {record.event_id}: {_verdict(item)}")
    reference = targets[1].label if len(targets) > 1 else CAPTURED
    return ReplayResult(
        captures.location, list(targets), reference, tolerance, items, captures.problems, started
    )


def _verdict(item: Replayed) -> str:
    """One word and the detail, for progress lines."""
    if item.skipped:
        return f"skipped ({item.skipped})"
    if item.failed or item.agreement is None:
        return "failed: " + "; ".join(s.error or "" for s in item.answers if not s.ok)
    word = "agree" if item.agreement.agree else "DISAGREE"
    return f"{word} ({item.agreement.detail})"


def latency_ms(item_seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99, mean and max of round trips, in milliseconds (None without any)."""
    if not item_seconds:
        return dict.fromkeys(("p50", "p90", "p99", "mean", "max"))
    values = np.array(item_seconds) * 1000
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "max": float(values.max()),
    }
