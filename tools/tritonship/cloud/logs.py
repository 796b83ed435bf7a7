"""An endpoint's CloudWatch logs: the tail of its streams, and ``tritonship logs``.

SageMaker writes each instance's container output to the log group
``/aws/sagemaker/Endpoints/<endpoint>``, one stream per instance and variant, named
``<variant>/<instance-id>`` (AWS guide "Log Amazon SageMaker Events with Amazon
CloudWatch"). The toolkit reads them with boto3's paginators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tritonship.errors import TritonshipError, UsageError

LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
#: How many streams :func:`tail_streams` reads at most (one per instance: enough to see why).
MAX_TAIL_STREAMS = 5
#: Bounds on ``--follow``'s polling interval, in seconds.
MIN_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 60.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def log_group(endpoint: str) -> str:
    """The CloudWatch log group SageMaker writes an endpoint's containers to."""
    return f"{LOG_GROUP_PREFIX}{endpoint}"


def logs_client(region: str) -> Any:
    """A CloudWatch Logs client for ``region`` with botocore's standard retries."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
    return boto3.session.Session(region_name=region).client("logs", config=config)


def _is_missing(err: Exception) -> bool:
    response = getattr(err, "response", None) or {}
    return response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def _streams_newest_first(logs_client: Any, group: str, limit: int) -> list[str]:
    """Names of the ``limit`` streams with the most recent events."""
    paginator = logs_client.get_paginator("describe_log_streams")
    pages = paginator.paginate(
        logGroupName=group,
        orderBy="LastEventTime",
        descending=True,
        PaginationConfig={"MaxItems": limit},
    )
    return [stream["logStreamName"] for page in pages for stream in page.get("logStreams", [])]


def tail_streams(
    logs_client: Any, endpoint: str, lines: int = 20, *, streams: int = MAX_TAIL_STREAMS
) -> list[str]:
    """The last ``lines`` lines of each log stream of ``endpoint``, newest streams first.

    Each stream starts with a ``--- <group>/<stream> ---`` header line. A missing log group
    (the endpoint never started a container) gives ``[]``; any other AWS error propagates
    as botocore raised it (wrap the call in :func:`tritonship.cloud.aws.aws_errors`).
    """
    group = log_group(endpoint)
    try:
        names = _streams_newest_first(logs_client, group, streams)
    except Exception as err:
        if _is_missing(err):
            return []
        raise
    out: list[str] = []
    for name in names:
        answer = logs_client.get_log_events(
            logGroupName=group, logStreamName=name, limit=lines, startFromHead=False
        )
        out.append(f"--- {group}/{name} ---")
        out.extend(event["message"].rstrip("\n") for event in answer.get("events", []))
    return out


def parse_since(text: str) -> float:
    """``10m``, ``1h``, ``30s``, ``2d`` as seconds (a bare number is minutes)."""
    value, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "m")
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(f"bad duration {text!r}", hint="use e.g. 30s, 10m, 1h or 2d")
    return seconds


@dataclass(frozen=True)
class LogEvent:
    """One log line, with the stream it came from."""

    timestamp_ms: int
    stream: str
    message: str
    event_id: str = ""

    def render(self) -> str:
        """``2024-05-01T12:00:00Z AllTraffic/i-0abc message``."""
        when = datetime.fromtimestamp(self.timestamp_ms / 1000, tz=timezone.utc)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{stamp} {self.stream} {self.message.rstrip()}"


def read_events(logs_client: Any, endpoint: str, start_ms: int) -> Iterator[LogEvent]:
    """Every event of the endpoint's streams from ``start_ms`` on, oldest first per page.

    A missing log group is a one-line TritonshipError; other AWS errors propagate.
    """
    group = log_group(endpoint)
    paginator = logs_client.get_paginator("filter_log_events")
    try:
        for page in paginator.paginate(logGroupName=group, startTime=start_ms):
            for event in page.get("events", []):
                yield LogEvent(
                    timestamp_ms=int(event["timestamp"]),
                    stream=event.get("logStreamName", ""),
                    message=event.get("message", ""),
                    event_id=event.get("eventId", ""),
                )
    except Exception as err:
        if not _is_missing(err):
            raise
        raise TritonshipError(
            f"no log group {group}",
            hint="SageMaker creates it when the endpoint's first instance starts; "
            "check the endpoint name and AWS_REGION",
        ) from err


def follow_events(
    logs_client: Any,
    endpoint: str,
    start_ms: int,
    *,
    interval: float = 5.0,
    sleep: Callable[[float], None] | None = None,
    polls: int | None = None,
) -> Iterator[LogEvent]:
    """Poll :func:`read_events` every ``interval`` seconds (clamped to 1..60) until stopped.

    Events already shown (same id, or same time, stream and text) are not repeated; the next
    poll starts at the newest timestamp seen, since CloudWatch may still add events there.
    ``polls`` bounds the number of polls (tests); ``None`` polls until Ctrl-C.
    """
    interval = min(max(interval, MIN_POLL_SECONDS), MAX_POLL_SECONDS)
    seen: set[tuple[int, str, str, str]] = set()
    done = 0
    while polls is None or done < polls:
        if done:
            (sleep or time.sleep)(interval)
        done += 1
        for event in read_events(logs_client, endpoint, start_ms):
            key = (event.timestamp_ms, event.event_id, event.stream, event.message)
            if key not in seen:
                seen.add(key)
                yield event
            start_ms = max(start_ms, event.timestamp_ms)
        seen = {key for key in seen if key[0] >= start_ms}
