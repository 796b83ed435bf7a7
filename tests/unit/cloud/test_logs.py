"""An endpoint's CloudWatch logs read back from a moto server: the tail and ``tritonship logs``."""

from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace

import boto3
import pytest

from tritonship.cli import main
from tritonship.cloud.logs import follow_events, log_group, parse_since, read_events, tail_streams
from tritonship.errors import UsageError

ENDPOINT = "demo"


def put_stream(logs, stream: str, messages: list[str], start_ms: int) -> None:
    """Write ``messages`` to ``stream`` one millisecond apart from ``start_ms``."""
    group = log_group(ENDPOINT)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [{"timestamp": start_ms + i, "message": text} for i, text in enumerate(messages)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


@pytest.fixture()
def logs(aws_env: str):
    return boto3.client("logs", region_name="us-east-1")


def test_tail_streams_gives_the_last_lines_of_each_stream_newest_first(logs) -> None:
    now = int(time.time() * 1000)
    put_stream(logs, "AllTraffic/i-old", [f"old {i}" for i in range(30)], now - 60_000)
    put_stream(logs, "AllTraffic/i-new", [f"new {i}" for i in range(30)], now - 1_000)

    lines = tail_streams(logs, ENDPOINT, lines=3)

    group = "/aws/sagemaker/Endpoints/demo"
    assert lines == [
        f"--- {group}/AllTraffic/i-new ---",
        "new 27",
        "new 28",
        "new 29",
        f"--- {group}/AllTraffic/i-old ---",
        "old 27",
        "old 28",
        "old 29",
    ]


def test_tail_streams_reads_at_most_the_given_number_of_streams(logs) -> None:
    now = int(time.time() * 1000)
    for i in range(4):
        put_stream(logs, f"AllTraffic/i-{i}", [f"line {i}"], now - 10_000 + i * 1000)

    lines = tail_streams(logs, ENDPOINT, lines=5, streams=2)

    assert [line for line in lines if line.startswith("---")] == [
        f"--- {log_group(ENDPOINT)}/AllTraffic/i-3 ---",
        f"--- {log_group(ENDPOINT)}/AllTraffic/i-2 ---",
    ]


def test_tail_streams_of_an_endpoint_without_logs_is_empty(logs) -> None:
    assert tail_streams(logs, "never-started") == []


def test_read_events_merges_streams_from_a_start_time(logs) -> None:
    now = int(time.time() * 1000)
    put_stream(logs, "AllTraffic/i-a", ["a0", "a1"], now - 5_000)
    put_stream(logs, "AllTraffic/i-b", ["b0"], now - 20_000)

    recent = [(e.stream, e.message) for e in read_events(logs, ENDPOINT, now - 10_000)]

    assert recent == [("AllTraffic/i-a", "a0"), ("AllTraffic/i-a", "a1")]


def test_follow_shows_new_events_once_and_sleeps_between_polls(logs) -> None:
    now = int(time.time() * 1000)
    put_stream(logs, "AllTraffic/i-a", ["first"], now - 5_000)
    naps: list[float] = []

    def sleep_and_log(seconds: float) -> None:
        naps.append(seconds)
        logs.put_log_events(
            logGroupName=log_group(ENDPOINT),
            logStreamName="AllTraffic/i-a",
            logEvents=[{"timestamp": now - 1_000, "message": f"after nap {len(naps)}"}],
        )

    seen = follow_events(logs, ENDPOINT, now - 10_000, interval=0.01, sleep=sleep_and_log, polls=3)

    assert [e.message for e in seen] == ["first", "after nap 1", "after nap 2"]
    assert naps == [1.0, 1.0]  # the interval is clamped to at least one second


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("1h", 3600), ("30s", 30), ("5", 300)])
def test_parse_since(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "-1h", "soon", "0m"])
def test_parse_since_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        parse_since(text)


def test_cli_logs_prints_the_events_since(logs, capsys) -> None:
    now = int(time.time() * 1000)
    put_stream(logs, "AllTraffic/i-a", ["I1201 model loaded", "I1201 ready"], now - 60_000)
    put_stream(logs, "AllTraffic/i-b", ["an hour ago"], now - 3_600_000)

    assert main(["logs", "--endpoint", ENDPOINT, "--since", "10m"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "AllTraffic/i-a I1201 model loaded",
        "AllTraffic/i-a I1201 ready",
    ]
    assert lines[0].endswith("Z AllTraffic/i-a I1201 model loaded")


def test_cli_logs_of_a_missing_endpoint_is_one_line(aws_env: str, capsys) -> None:
    assert main(["logs", "--endpoint", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tritonship: error: no log group /aws/sagemaker/Endpoints/nope")
    assert "\n" not in err


def test_cli_logs_follow_stops_cleanly_on_ctrl_c(logs, monkeypatch, capsys) -> None:
    now = int(time.time() * 1000)
    put_stream(logs, "AllTraffic/i-a", ["first"], now - 5_000)
    naps: list[float] = []

    def interrupt(seconds: float) -> None:
        naps.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr("tritonship.cloud.logs.time", SimpleNamespace(sleep=interrupt))

    assert main(["logs", "--endpoint", ENDPOINT, "--follow", "--interval", "120"]) == 0

    assert capsys.readouterr().out.strip().endswith("AllTraffic/i-a first")
    assert naps == [60.0]  # the interval is clamped to at most a minute
