"""The bench's statistics, targets and report on synthetic timings (no server)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tritonship.bench import hardware, metrics, noise, runner
from tritonship.bench.ceiling import Ceiling, Trial, best, trials
from tritonship.bench.ceiling import throughput as ceiling_throughput
from tritonship.bench.load import Reply, SendError, closed_loop
from tritonship.bench.report import markdown, write_report
from tritonship.bench.runner import BenchConfig, BenchResult, parse_levels
from tritonship.bench.stats import Sample, Window, latency_summary, summarise
from tritonship.bench.targets import (
    best_level,
    ceiling_statement,
    error_check,
    format_checks,
    server_batch,
    throughput_check,
)
from tritonship.errors import UsageError


def test_a_level_without_samples_has_nan_latencies():
    assert all(math.isnan(value) for value in latency_summary([]).values())


def test_latency_summary_is_in_milliseconds():
    summary = latency_summary([i / 1000 for i in range(1, 101)])  # 1 ms .. 100 ms
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p90"] == pytest.approx(90.1)
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["mean"] == pytest.approx(50.5)
    assert summary["max"] == pytest.approx(100.0)


def steady(start: float, end: float, period: float, images: int = 1) -> list[Sample]:
    """One request every ``period`` s, each taking ``period`` s (one closed-loop client)."""
    count = round((end - start) / period)
    return [Sample(start + i * period, start + (i + 1) * period, images, 100) for i in range(count)]


def test_throughput_counts_only_the_window_after_the_warm_up():
    samples = steady(0.0, 12.0, 0.1, images=2)  # 20 images/s for 12 s
    stats = summarise(samples, Window(2.0, 12.0), "binary", 1, 5000, 0.05)
    assert stats.requests == 100  # completions in (2, 12]: the warm-up's 20 are left out
    assert stats.images == 200
    assert stats.throughput == pytest.approx(20.0)
    assert stats.latency_ms["p50"] == pytest.approx(100.0)
    assert (stats.request_bytes, stats.response_bytes, stats.client_cpu) == (5000, 100.0, 0.05)


def test_errors_count_everywhere_and_keep_the_first_distinct_messages():
    samples = [
        *steady(0.0, 4.0, 0.5),
        Sample(0.1, 0.2, error="HTTP 503: busy"),  # in the warm-up: still counted
        Sample(2.5, 2.6, error="HTTP 400: bad image"),
        Sample(3.0, 3.1, error="HTTP 503: busy"),
        Sample(3.2, 3.3, error="timeout"),
        Sample(3.4, 3.5, error="reset"),
    ]
    stats = summarise(samples, Window(1.0, 4.0), "json", 2, 1, 0.0)
    assert stats.errors == 5
    assert stats.error_messages == ["HTTP 503: busy", "HTTP 400: bad image", "timeout"]
    assert stats.requests == 6  # the failures are not latencies


def test_a_level_without_answers_has_no_latencies():
    stats = summarise([Sample(0.0, 1.0, error="refused")], Window(0.5, 2.0), "binary", 1, 1, 0)
    assert stats.throughput == 0 and stats.requests == 0 and math.isnan(stats.latency_ms["p50"])


def level(
    fmt: str,
    clients: int,
    throughput: float,
    p50: float = 50.0,
    size: int = 1000,
    errors: int = 0,
    batch: float | None = None,
):
    stats = summarise(steady(0.0, 2.0, 0.1), Window(0.0, 2.0), fmt, clients, size, 0.01)
    stats.throughput, stats.errors = throughput, errors
    stats.latency_ms = {**stats.latency_ms, "p50": p50}
    stats.server_batch = {"inception_graphdef": batch} if batch else {}
    return stats


def test_best_level_prefers_binary_and_the_highest_throughput():
    levels = [level("json", 4, 40.0), level("binary", 2, 25.0), level("binary", 4, 30.0)]
    assert (best_level(levels).format, best_level(levels).concurrency) == ("binary", 4)
    assert best_level([]) is None


def test_server_batch_comes_from_metrics_then_concurrency_then_request_size():
    assert server_batch(level("binary", 8, 1.0, batch=3.6), True)[0] == 4
    batch, source = server_batch(level("binary", 8, 1.0), True)
    assert batch == 8 and "upper bound" in source
    assert server_batch(level("binary", 8, 1.0), False)[0] == 1


def test_throughput_target_uses_the_best_trial_of_the_ceiling():
    ceilings = [Ceiling(1, 20.0, 50.0, 10), Ceiling(4, 25.0, 160.0, 10, workers=2, threads=1)]
    top = best(ceilings)
    assert top is ceilings[1] and best([]) is None
    check = throughput_check(level("binary", 8, 23.0), top)
    assert check.met is True and check.measured.startswith("0.920")
    assert "batch 4, 2 workers x 1 thread (tf)" in check.measured
    assert throughput_check(level("binary", 8, 22.0), top).met is False
    assert throughput_check(level("binary", 8, 22.0), None).met is None


def test_the_ceiling_tries_each_batch_with_one_wide_worker_and_one_worker_per_core():
    assert trials([4, 1, 4], 2) == [
        Trial(1, 1, 2),
        Trial(1, 2, 1),
        Trial(4, 1, 2),
        Trial(4, 2, 1),
    ]
    assert trials([1], 1) == [Trial(1, 1, 1)], "one core: one worker with it"
    assert ceiling_throughput(4, 30, 10.0) == 12.0 and ceiling_throughput(4, 30, 0.0) == 0.0


def test_served_over_ceiling_is_stated_at_most_one_or_explained():
    top = Ceiling(4, 20.0, 200.0, 10, workers=2, threads=1, classifier="onnx")
    under = ceiling_statement(17.2, top)
    assert under.startswith("Served / ceiling: 0.86 <= 1: the server stays under")
    assert "(batch 4, 2 workers x 1 thread (onnx))" in under
    busier = ceiling_statement(22.0, top, noise_ceiling=0.8, noise_levels=0.1)
    assert busier.startswith("Served / ceiling: 1.10 > 1: other processes kept 0.80 cores")
    assert "busier machine" in busier
    lower_bound = ceiling_statement(22.0, top, noise_ceiling=0.1, noise_levels=0.1)
    assert "no in-process trial did" in lower_bound and "lower bound" in lower_bound
    assert ceiling_statement(None, top) == "Served / ceiling: not measured."


def test_the_hardware_arithmetic():
    assert pytest.approx(11.42) == hardware.INCEPTION_GFLOP
    assert hardware.matmul_flop(2048) == 2 * 2048**3
    assert hardware.convolution_flop(8, 35, 35, 288, 3, 3, 384) == 2 * 8 * 35 * 35 * 9 * 288 * 384
    assert hardware.gflops(2e9, 100, 1.0) == pytest.approx(200.0)
    assert hardware.gflops(2e9, 100, 0.0) == 0.0
    rate = hardware.ComputeRate.of({"matmul": 213.0, "conv": 224.0})
    assert (rate.gflops, rate.kernel) == (224.0, "conv")
    assert hardware.served_gflops(10.0) == pytest.approx(114.2)
    assert hardware.hardware_share(10.0, rate) == pytest.approx(114.2 / 224.0)
    assert hardware.images_at_full_rate(rate) == pytest.approx(224.0 / 11.42)


def test_a_kernel_is_timed_after_one_untimed_run_and_the_best_timing_wins(
    monkeypatch: pytest.MonkeyPatch,
):
    # Each timing reads the clock at its start, after every run, and once more at its end.
    clock = iter([0.0, 0.4, 1.0, 1.0, 10.0, 10.25, 10.5, 10.5, 20.0, 21.0, 21.0])
    monkeypatch.setattr(hardware, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    calls = []
    # repeat 1: 2 runs in 1 s; repeat 2: 2 runs in 0.5 s (the best); repeat 3: 1 run in 1 s
    best_rate = hardware.time_kernel(lambda: calls.append(1), 1e9, 0.5, 3)
    assert best_rate == pytest.approx(4.0) and len(calls) == 1 + 2 + 2 + 1


def test_format_targets_compare_binary_with_json_at_one_client():
    good = format_checks(
        [
            level("binary", 1, 20.0, p50=35.0, size=52_000),
            level("json", 1, 12.0, p50=70.0, size=200_000),
        ]
    )
    assert [check.met for check in good] == [True, True]
    slow = format_checks(
        [
            level("binary", 1, 20.0, p50=60.0, size=52_000),
            level("json", 1, 12.0, p50=70.0, size=200_000),
        ]
    )
    assert [check.met for check in slow] == [True, False]
    assert [check.met for check in format_checks([level("binary", 1, 20.0)])] == [None, None]


def test_error_target():
    assert error_check([level("binary", 16, 1.0)]).met is True
    assert error_check([level("binary", 16, 1.0, errors=2)]).met is False
    assert error_check([]).met is None, "no levels: nothing was measured"


def test_targets_are_met_at_their_exact_ratio():
    ceiling = Ceiling(1, 25.0, 40.0, 10)
    assert throughput_check(level("binary", 1, 22.5), ceiling).met is True  # 0.9
    json_level = level("json", 1, 10.0, p50=100.0, size=200_000)
    at_limit = format_checks([level("binary", 1, 20.0, p50=70.0, size=60_000), json_level])
    assert [check.met for check in at_limit] == [True, True]  # 0.3 and 0.7
    too_big = format_checks([level("binary", 1, 20.0, p50=10.0, size=60_001), json_level])
    assert [check.met for check in too_big] == [False, True]


PAGE = """# HELP nv_inference_count Number of inferences performed
nv_inference_count{{model="inception_graphdef",version="1"}} {images}
nv_inference_exec_count{{model="inception_graphdef",version="1"}} {executions}
nv_inference_count{{model="dali",version="1"}} 10
nv_inference_exec_count{{model="dali",version="1"}} 10
nv_inference_count{{model="ensemble_dali_inception",version="1"}} 10
"""


def test_average_batch_from_triton_counters():
    before = metrics.parse_counters(PAGE.format(images=10, executions=10))
    after = metrics.parse_counters(PAGE.format(images=110, executions=35))
    assert metrics.average_batches(before, after) == {"inception_graphdef": 4.0}
    assert metrics.average_batches(None, after) == {}
    assert metrics.scrape(None) is None


@pytest.mark.parametrize(("text", "levels"), [("1,2,4", [1, 2, 4]), ("8", [8]), ("1,1,2,", [1, 2])])
def test_parse_levels(text: str, levels: list[int]):
    assert parse_levels(text) == levels


@pytest.mark.parametrize("text", ["", "0,1", "a,b", "-2"])
def test_parse_levels_refuses_nonsense(text: str):
    with pytest.raises(UsageError):
        parse_levels(text)


class FakeSender:
    """Answers after ``delay`` s; every third request fails."""

    target = "fake"

    def __init__(self, delay: float) -> None:
        self.delay, self.calls = delay, 0

    async def send(self) -> Reply:
        self.calls += 1
        number = self.calls
        await asyncio.sleep(self.delay)
        if number % 3 == 0:
            raise SendError("HTTP 503: busy")
        return Reply(b"x" * 10, "application/json")

    async def close(self) -> None:
        pass


def test_closed_loop_keeps_each_client_busy_and_records_every_request():
    sender, ticks = FakeSender(0.01), []
    run = asyncio.run(
        closed_loop(
            sender, 3, 0.05, 0.2, images=2, tick=lambda elapsed, samples: ticks.append(elapsed)
        )
    )
    assert len(run.samples) == sender.calls >= 3
    assert {s.images for s in run.samples} == {2}
    assert sum(1 for s in run.samples if s.error) == sender.calls // 3
    assert {s.response_bytes for s in run.samples if not s.error} == {10}
    assert run.window.seconds == pytest.approx(0.2) and ticks
    assert run.client_cpu >= 0


def fake_result() -> BenchResult:
    levels = [
        level("binary", 1, 20.0, p50=35.0, size=52_000, batch=1.0),
        level("json", 1, 12.0, p50=70.0, size=200_000),
        level("binary", 2, 25.0),
    ]
    levels[1].latency_ms["p99"] = math.nan  # a level without answers must still serialise
    ceilings = [Ceiling(1, 22.0, 45.0, 20)]
    meta = {
        "target": "http://127.0.0.1:1",
        "machine": "2 cores (test), no GPU",
        "image": "x",
        "duration": 2.0,
        "warmup": 0.5,
        "date": "today",
        "compute": {"gflops": 228.4, "kernel": "tf.function matmul 2048x2048", "kernels": {}},
        "gflop_per_image": 11.42,
        "foreign_cores_ceiling": 0.5,
        "foreign_cores_levels": 0.1,
    }
    checks = [throughput_check(levels[2], ceilings[0]), *format_checks(levels), error_check(levels)]
    return BenchResult(meta, levels, ceilings, checks)


def test_report_files_exist_and_parse(tmp_path: Path):
    paths = write_report(fake_result(), tmp_path / "out")
    assert [p.name for p in paths] == ["bench.json", "bench.csv", "bench.png", "bench.md"]
    data = json.loads(paths[0].read_text())
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 1, 2]
    assert data["levels"][1]["latency_ms"]["p99"] is None
    rows = list(csv.DictReader(io.StringIO(paths[1].read_text())))
    assert [(r["format"], r["concurrency"]) for r in rows] == [
        ("binary", "1"),
        ("json", "1"),
        ("binary", "2"),
    ]
    assert rows[0]["server_batch"] == "inception_graphdef=1.0"
    assert paths[2].read_bytes().startswith(b"\x89PNG")
    text = paths[3].read_text()
    assert "| binary | 1 | 20.0 | 35 |" in text and "MET" in text
    assert "In-process ceiling (same DALI pipeline and classifier, no server): **22.0" in text
    assert "Served / ceiling: 1.14 > 1: other processes kept 0.50 cores busy during" in text
    assert (
        "Hardware: this machine's CPUs reach 228 GFLOP/s with the best compiled kernel "
        "(tf.function matmul 2048x2048); Inception V3 costs 11.42 GFLOP an image, so the "
        "classifier alone could reach 20.0 images/s. The in-process ceiling computes 251 "
        "GFLOP/s (110% of it), the best served level computes 286 GFLOP/s (125% of it)"
    ) in text


def fake_counters(monkeypatch, busy, ours, clock) -> list[int]:
    """Feed foreign_load successive readings; return the pids it asked about."""
    asked: list[int] = []
    readings = {"busy": iter(busy), "ours": iter(ours), "clock": iter(clock)}
    monkeypatch.setattr(noise, "_busy_seconds", lambda: next(readings["busy"]))
    monkeypatch.setattr(
        noise, "_tree_seconds", lambda pid: asked.append(pid) or next(readings["ours"])
    )
    monkeypatch.setattr(noise, "time", SimpleNamespace(monotonic=lambda: next(readings["clock"])))
    return asked


@pytest.mark.parametrize(
    ("busy", "ours", "clock", "cores"),
    [
        ((10.0, 13.0), (5.0, 7.0), (100.0, 102.0), 0.5),  # 3 s busy, 2 of them ours, in 2 s
        ((10.0, 12.0), (5.0, 7.0), (100.0, 102.0), 0.0),  # all ours: no noise
        ((10.0, 12.0), (5.0, 7.5), (100.0, 102.0), 0.0),  # tick rounding: never negative
        ((10.0, 10.6), (5.0, 5.0), (100.0, 100.5), 0.6),  # under a second: per second, not more
        ((0.0, 7.0), (0.0, 1.0), (0.0, 4.0), 1.5),
    ],
)
def test_foreign_load_subtracts_our_own_cpu(monkeypatch, busy, ours, clock, cores):
    asked = fake_counters(monkeypatch, busy, ours, clock)
    with noise.foreign_load() as found:
        assert found == {}
    assert found == {"cores": cores}
    assert asked == [os.getpid(), os.getpid()]


#: Burns CPU, says so, then waits for its stdin to close (the test's signal to exit).
BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.5: pass\n"
    "print('burnt', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_tree_seconds_counts_children_and_grandchildren():
    # this process -> an idle child -> a grandchild that burns 0.5 s of CPU
    waiter = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"
    child = subprocess.Popen(
        [sys.executable, "-c", waiter], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "burnt\n"  # the grandchild has burnt, still runs
        mine = sum(os.times()[:2])  # this process alone (all threads)
        tree = noise._tree_seconds(os.getpid())
        assert tree - mine >= 0.45, "the grandchild's CPU time must count"
        assert noise._tree_seconds(child.pid) >= 0.45
    finally:
        child.stdin.close()
        child.wait(timeout=30)


class SlowFirstSender:
    """One softmax row per request; the first answer takes ``first`` s (a cold start)."""

    target = "fake"
    calls = 0

    def __init__(self, first: float) -> None:
        self.first = first

    async def send(self) -> Reply:
        SlowFirstSender.calls += 1
        await asyncio.sleep(self.first if SlowFirstSender.calls == 1 else 0)
        output = {"name": "OUTPUT", "datatype": "FP32", "shape": [1, 1001], "data": [0.0] * 1001}
        return Reply(json.dumps({"outputs": [output]}).encode(), "application/json")

    async def close(self) -> None:
        pass


def test_the_first_request_is_timed_and_reported_apart_from_the_levels(monkeypatch):
    monkeypatch.setattr(runner, "make_sender", lambda *a: SlowFirstSender(0.2))
    request = runner.encode_as([b"jpeg"], "binary")
    seconds = asyncio.run(runner._first_request(BenchConfig(), request))
    assert 0.2 <= seconds < 5
    result = fake_result()
    result.meta["first_request_ms"] = 1234.4
    text = markdown(result)
    assert "First request of the run: 1234 ms, not counted in the levels" in text
    assert "First request" not in markdown(fake_result()), "older results have none"


def test_bench_tune_benches_each_variant_named_and_prints_its_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tritonship import cli
    from tritonship.bench import tuning

    seen = []

    def bench(name, base, source, work, tries, max_noise, say):
        seen.append((name, base.concurrency, base.duration, base.formats, source, work, tries))
        return name

    monkeypatch.setattr(tuning, "quiet_bench", bench)
    monkeypatch.setattr(tuning, "table_row", lambda name, result: f"| {name} | {result} |")
    argv = ["--variants", "before,current", "--concurrency", "1,2", "--duration", "3"]
    argv += ["--repo", str(tmp_path), "--out", str(tmp_path / "work"), "--tries", "1"]
    assert cli.main(["bench", "tune", *argv]) == 0
    assert capsys.readouterr().out.splitlines() == ["| before | before |", "| current | current |"]
    expected = ([1, 2], 3.0, ("binary",), tmp_path.resolve(), tmp_path / "work", 1)
    assert seen == [("before", *expected), ("current", *expected)]


def test_bench_tune_refuses_an_unknown_variant_and_lists_them(capsys) -> None:
    from tritonship import cli

    assert cli.main(["bench", "tune", "--variants", "before,fastest"]) == 2
    error = capsys.readouterr().err
    assert "unknown variant(s) fastest" in error and "choose from before, batching" in error
