"""An endpoint's CloudWatch metrics read back from a moto server, and ``tritonship metrics``."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from tritonship.cli import main
from tritonship.cloud.metrics import (
    INSTANCE_NAMESPACE,
    INVOCATION_NAMESPACE,
    METRICS,
    MetricSpec,
    Series,
    build_queries,
    period_for,
    read_metrics,
)
from tritonship.errors import TritonshipError

ENDPOINT = "demo"


def put(cloudwatch, namespace: str, name: str, variant: str, values: list[float]) -> None:
    """One value a minute, the last one two minutes ago."""
    now = datetime.now(timezone.utc)
    dims = [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": variant},
    ]
    data = [
        {
            "MetricName": name,
            "Dimensions": dims,
            "Value": value,
            "Timestamp": now - timedelta(minutes=2 + len(values) - i),
        }
        for i, value in enumerate(values)
    ]
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


@pytest.fixture()
def cloudwatch(aws_env: str):
    """moto's CloudWatch with two variants' data: Blue busy, Green with errors."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    put(client, INVOCATION_NAMESPACE, "Invocations", "Blue", [10, 20, 30])
    put(client, INVOCATION_NAMESPACE, "ModelLatency", "Blue", [2000, 4000, 6000])  # µs
    put(client, INVOCATION_NAMESPACE, "OverheadLatency", "Blue", [500, 500, 500])
    put(client, INSTANCE_NAMESPACE, "CPUUtilization", "Blue", [50, 70])
    put(client, INVOCATION_NAMESPACE, "Invocations", "Green", [5])
    put(client, INVOCATION_NAMESPACE, "Invocation5XXErrors", "Green", [2])
    put(client, INSTANCE_NAMESPACE, "GPUUtilization", "Green", [90])
    return client


def count_calls(client, operation: str) -> list[str]:
    calls: list[str] = []
    client.meta.events.register(
        f"before-call.cloudwatch.{operation}", lambda **_: calls.append(operation)
    )
    return calls


def by_name(report) -> dict[tuple[str, str], object]:
    return {(s.variant, s.spec.name): s for s in report.series}


def test_every_metric_of_every_variant_comes_from_one_get_metric_data_call(cloudwatch) -> None:
    calls = count_calls(cloudwatch, "GetMetricData")

    report = read_metrics(cloudwatch, ENDPOINT, 3600)

    assert calls == ["GetMetricData"]
    assert report.variants == ["Blue", "Green"]
    assert len(report.series) == 2 * len(METRICS)
    series = by_name(report)
    assert series["Blue", "Invocations"].summary() == 60  # a Sum: the window's total
    assert series["Blue", "ModelLatency"].values == (2.0, 4.0, 6.0)  # µs shown as ms
    assert series["Blue", "ModelLatency"].summary() == 4.0  # an Average: the mean
    assert series["Blue", "OverheadLatency"].last == 0.5
    assert series["Blue", "CPUUtilization"].peak == 70
    assert series["Green", "Invocation5XXErrors"].summary() == 2
    assert series["Green", "GPUUtilization"].summary() == 90
    assert series["Green", "ModelLatency"].summary() is None  # no data: not zero


def test_the_mean_of_an_average_is_weighted_by_its_sample_count(aws_env: str) -> None:
    """Three invocations at 2 ms in one minute, one at 8 ms in the next: 3.5 ms, not 5."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    minute = datetime.now(timezone.utc).replace(second=30, microsecond=0) - timedelta(minutes=5)
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "Blue"}]
    data = [(minute, 2000.0)] * 3 + [(minute + timedelta(minutes=1), 8000.0)]
    client.put_metric_data(
        Namespace=INVOCATION_NAMESPACE,
        MetricData=[
            {"MetricName": "ModelLatency", "Dimensions": dims, "Value": v, "Timestamp": t}
            for t, v in data
        ],
    )
    series = by_name(read_metrics(client, ENDPOINT, 3600, variants=["Blue"]))
    latency = series["Blue", "ModelLatency"]
    assert latency.values == (2.0, 8.0) and latency.counts == (3.0, 1.0)
    assert latency.summary() == pytest.approx(3.5)


def test_a_series_without_sample_counts_falls_back_to_the_plain_mean() -> None:
    spec = MetricSpec(INSTANCE_NAMESPACE, "MemoryUtilization", "Average", "%")
    now = datetime.now(timezone.utc)
    plain = Series("A", spec, (now, now), (10.0, 30.0))
    assert plain.summary() == 20.0
    assert Series("A", spec, (now, now), (10.0, 30.0), (1.0, 3.0)).summary() == 25.0


def test_memory_gpu_memory_and_disk_are_read(cloudwatch) -> None:
    put(cloudwatch, INSTANCE_NAMESPACE, "MemoryUtilization", "Blue", [40, 60])
    put(cloudwatch, INSTANCE_NAMESPACE, "GPUMemoryUtilization", "Blue", [75])
    put(cloudwatch, INSTANCE_NAMESPACE, "DiskUtilization", "Blue", [12])
    series = by_name(read_metrics(cloudwatch, ENDPOINT, 3600, variants=["Blue"]))
    assert series["Blue", "MemoryUtilization"].summary() == 50
    assert series["Blue", "GPUMemoryUtilization"].last == 75
    assert series["Blue", "DiskUtilization"].peak == 12


def test_named_variants_skip_discovery(cloudwatch) -> None:
    calls = count_calls(cloudwatch, "ListMetrics")
    report = read_metrics(cloudwatch, ENDPOINT, 3600, variants=["Green"])
    assert calls == [] and report.variants == ["Green"]


def test_an_endpoint_without_metrics_gives_an_empty_report(cloudwatch) -> None:
    assert read_metrics(cloudwatch, "other", 3600).series == ()


def test_queries_carry_both_dimensions_and_the_right_namespace() -> None:
    queries = build_queries("e", ["A"], 60)
    averages = [i for i, spec in enumerate(METRICS) if spec.stat == "Average"]
    assert [q["Id"] for q in queries if q["Id"].startswith("m")] == [
        f"m{i}" for i in range(len(METRICS))
    ]
    assert [q["Id"] for q in queries if q["Id"].startswith("n")] == [f"n{i}" for i in averages]
    latency = next(q for q in queries if q["Label"] == "A/ModelLatency/SampleCount")
    assert latency["MetricStat"]["Stat"] == "SampleCount"
    cpu = next(q for q in queries if q["Label"] == "A/CPUUtilization")["MetricStat"]
    assert cpu["Metric"]["Namespace"] == "/aws/sagemaker/Endpoints"
    assert cpu["Metric"]["Dimensions"] == [
        {"Name": "EndpointName", "Value": "e"},
        {"Name": "VariantName", "Value": "A"},
    ]
    assert (cpu["Period"], cpu["Stat"]) == (60, "Average")


def test_too_many_variants_for_one_call_is_a_clear_error() -> None:
    with pytest.raises(TritonshipError, match="over CloudWatch's 500"):
        build_queries("e", [f"v{i}" for i in range(72)], 60)


@pytest.mark.parametrize(
    ("seconds", "period"), [(600, 60), (3600, 60), (86400, 300), (7 * 86400, 3600)]
)
def test_period_for(seconds: float, period: int) -> None:
    assert period_for(seconds) == period


def test_cli_table(cloudwatch, capsys) -> None:
    assert main(["metrics", "--endpoint", ENDPOINT, "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "Blue" in out and "Green" in out
    for spec in METRICS:
        assert spec.name in out
    assert "4.00 ms" in out and "60" in out


def test_cli_json(cloudwatch, capsys) -> None:
    assert main(["metrics", "--endpoint", ENDPOINT, "--variant", "Blue", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    invocations = next(s for s in data["series"] if s["metric"] == "Invocations")
    assert (invocations["variant"], invocations["summary"]) == ("Blue", 60)
    assert [point[1] for point in invocations["points"]] == [10, 20, 30]


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no bench extra")
def test_cli_plot_writes_a_png(cloudwatch, tmp_path: Path, capsys) -> None:
    out = tmp_path / "plots" / "metrics.png"
    assert main(["metrics", "--endpoint", ENDPOINT, "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().err


def test_cli_plot_without_matplotlib_fails_in_one_line_before_any_aws_call(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # would fail if called
    assert main(["metrics", "--endpoint", ENDPOINT, "--plot", str(tmp_path / "m.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "tritonship: error: metrics --plot needs matplotlib, not installed here "
        "(pip install 'tritonship[bench]')"
    )


def test_cli_says_when_there_is_nothing(aws_env: str, capsys) -> None:
    assert main(["metrics", "--endpoint", "nothing-here"]) == 0
    assert "no CloudWatch metrics for endpoint nothing-here" in capsys.readouterr().err
