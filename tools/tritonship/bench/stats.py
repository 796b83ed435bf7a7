"""Statistics of one load level: throughput, latency percentiles, bytes, errors.

Pure functions over :class:`Sample` timings, so they are tested on synthetic data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Latency percentiles every level reports.
PERCENTILES = (50, 90, 99)
#: How many distinct error messages a level keeps.
KEPT_ERRORS = 3


@dataclass(frozen=True)
class Sample:
    """One request: start and end (``time.perf_counter`` seconds), images, answer size, error."""

    start: float
    end: float
    images: int = 1
    response_bytes: int = 0
    error: str | None = None

    @property
    def seconds(self) -> float:
        """The round-trip time."""
        return self.end - self.start


@dataclass(frozen=True)
class Window:
    """The measured part of a level (after the warm-up), in ``perf_counter`` seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.end - self.start

    def holds(self, sample: Sample) -> bool:
        """Whether ``sample`` completed inside the window (start excluded, end included)."""
        return self.start < sample.end <= self.end


@dataclass
class LevelStats:
    """What one (format, concurrency) level measured."""

    format: str
    concurrency: int
    seconds: float
    requests: int
    images: int
    throughput: float
    latency_ms: dict[str, float]
    request_bytes: int
    response_bytes: float
    errors: int
    error_messages: list[str]
    client_cpu: float
    server_batch: dict[str, float] = field(default_factory=dict)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Percentiles (numpy's linear interpolation), mean and max of round trips, in ms.

    NaN for each when there is no sample (the report writes it as null).
    """
    if not seconds:
        return dict.fromkeys([*(f"p{q}" for q in PERCENTILES), "mean", "max"], math.nan)
    millis = np.asarray(seconds, dtype=float) * 1000.0
    summary = {f"p{q}": float(np.percentile(millis, q)) for q in PERCENTILES}
    summary["mean"] = float(millis.mean())
    summary["max"] = float(millis.max())
    return summary


def first_errors(samples: Sequence[Sample], keep: int = KEPT_ERRORS) -> list[str]:
    """The first ``keep`` distinct error messages, in the order they happened."""
    messages: list[str] = []
    for sample in sorted(samples, key=lambda s: s.end):
        if sample.error and sample.error not in messages:
            messages.append(sample.error)
    return messages[:keep]


def summarise(
    samples: Sequence[Sample],
    window: Window,
    fmt: str,
    concurrency: int,
    request_bytes: int,
    client_cpu: float,
) -> LevelStats:
    """Throughput and latency of the successful requests that completed inside ``window``.

    Errors count over the whole level, warm-up included: none may go unreported.
    """
    measured = [s for s in samples if s.error is None and window.holds(s)]
    failed = [s for s in samples if s.error is not None]
    images = sum(s.images for s in measured)
    return LevelStats(
        format=fmt,
        concurrency=concurrency,
        seconds=window.seconds,
        requests=len(measured),
        images=images,
        throughput=images / window.seconds if window.seconds > 0 else 0.0,
        latency_ms=latency_summary([s.seconds for s in measured]),
        request_bytes=request_bytes,
        response_bytes=(
            sum(s.response_bytes for s in measured) / len(measured) if measured else 0.0
        ),
        errors=len(failed),
        error_messages=first_errors(failed),
        client_cpu=client_cpu,
    )
