"""A short bench against the endpoint: the report files exist and parse (no timing limits)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.integration.conftest import RUNTIME_ENDPOINT, Endpoint
from tritonship.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(endpoint: Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "bench",
        "--url",
        endpoint.url,
        "--repo",
        str(endpoint.repository),
        "--concurrency",
        "1,2",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--format",
        "both",
        "--out",
        str(out),
        "--results",
        str(out / "results"),
        "--quiet",
    ]
    if endpoint.metrics_url:
        argv += ["--metrics-url", endpoint.metrics_url]
    assert main(argv) == 0
    return out


def test_a_stamped_copy_goes_to_the_results_folder(report: Path):
    (stamped,) = (report / "results").glob("bench-*.md")
    text = stamped.read_text()
    assert "| cores |" in text and "| date |" in text


def test_json_report_has_every_level_without_errors(report: Path):
    data = json.loads((report / "bench.json").read_text())
    levels = {(lv["format"], lv["concurrency"]): lv for lv in data["levels"]}
    assert set(levels) == {("binary", 1), ("binary", 2), ("json", 1), ("json", 2)}
    for stats in levels.values():
        assert stats["requests"] > 0 and stats["errors"] == 0, stats
        assert stats["latency_ms"]["p50"] <= stats["latency_ms"]["p99"]
    assert levels[("binary", 1)]["request_bytes"] < levels[("json", 1)]["request_bytes"]
    assert [c["batch"] for c in data["ceilings"]][0] == 1
    assert len(data["checks"]) == 4


def test_csv_png_and_markdown(report: Path):
    rows = list(csv.DictReader((report / "bench.csv").open()))
    assert len(rows) == 4 and all(float(row["throughput"]) > 0 for row in rows)
    assert (report / "bench.png").read_bytes().startswith(b"\x89PNG")
    summary = (report / "bench.md").read_text()
    assert "In-process ceiling" in summary and "| json | 2 |" in summary


def test_server_batch_is_read_from_metrics(report: Path, endpoint: Endpoint):
    if not endpoint.metrics_url:
        pytest.skip("no metrics URL for this endpoint")
    data = json.loads((report / "bench.json").read_text())
    assert all(lv["server_batch"].get("inception_graphdef", 0) >= 1 for lv in data["levels"])
    assert data["meta"]["server_batch"]["source"].startswith("Triton metrics")


def test_bench_through_boto3_and_the_local_runtime(
    runtime: str, endpoint: Endpoint, tmp_path: Path, monkeypatch
):
    for key, value in {
        "AWS_ENDPOINT_URL": runtime,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    argv = [
        "bench",
        "--endpoint",
        RUNTIME_ENDPOINT,
        "--concurrency",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--format",
        "binary",
        "--no-ceiling",
        "--quiet",
        "--out",
        str(tmp_path),
        "--no-results",
    ]
    assert main(argv) == 0
    assert not list(tmp_path.rglob("bench-*.md")), "--no-results keeps no stamped copy"
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["meta"]["transport"].startswith("boto3")
    (level,) = data["levels"]
    assert level["requests"] > 0 and level["errors"] == 0 and data["ceilings"] == []
