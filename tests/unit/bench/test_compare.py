"""``bench --compare``: the alternating schedule, the per-format ratios and the report.

The served runs themselves are integration work (tests/integration/test_onnx.py runs a
short comparison); here the sides hold made-up results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.bench.test_bench import level
from tritonship.bench.ceiling import Ceiling
from tritonship.bench.compare import Side, label, markdown, parse_repositories, schedule, write
from tritonship.bench.runner import BenchConfig, BenchResult
from tritonship.errors import UsageError
from tritonship.paths import MANIFEST_NAME


def result(throughputs: dict[int, float], ceilings: dict[int, float], batch: int, noise=0.1):
    """One round: binary levels, and ceiling trials by batch (batch 4 on two workers)."""
    levels = [level("binary", c, t) for c, t in throughputs.items()]
    meta = {
        "server_batch": {"batch": batch, "source": "test"},
        "foreign_cores": noise,
        "foreign_cores_ceiling": noise,
        "foreign_cores_levels": noise,
        "compute": {"gflops": 224.0, "kernel": "tf.function conv", "kernels": {}},
    }
    found = [
        Ceiling(b, t, 1000 * b / t, 3, workers=2 if b > 1 else 1, threads=1 if b > 1 else 2)
        for b, t in ceilings.items()
    ]
    return BenchResult(meta, levels, found, [])


@pytest.fixture()
def sides() -> list[Side]:
    tf = Side("TensorFlow", Path("tf"))
    tf.results = [
        result({1: 10.0, 4: 12.0}, {1: 15.0, 4: 16.0}, 4),
        result({1: 8.0, 4: 12.0}, {1: 13.0, 4: 16.0}, 4, noise=0.3),
    ]
    onnx = Side("ONNX", Path("onnx"))
    onnx.results = [
        result({1: 11.0, 4: 15.0}, {1: 18.0, 4: 20.0}, 4),
        result({1: 11.0, 4: 13.0}, {1: 18.0, 4: 20.0}, 4),
    ]
    return [tf, onnx]


def test_the_schedule_alternates_so_drift_falls_on_both():
    a, b = Side("A", Path("a")), Side("B", Path("b"))
    assert [s.label for s in schedule([a, b], 3)] == ["A", "B", "B", "A", "A", "B"]


def test_each_side_is_measured_against_its_own_ceiling(sides: list[Side]):
    tf, onnx = sides
    assert tf.served(1) == 9.0 and tf.best() == (4, 12.0)
    assert tf.ceiling() == 16.0 and tf.ratio() == pytest.approx(0.75)
    assert tf.winner() == "batch 4, 2 workers x 1 thread (tf)"
    assert onnx.best() == (4, 14.0) and onnx.ratio() == pytest.approx(0.7)
    assert tf.noise() == 0.3


def test_markdown_gives_both_side_by_side_and_their_ratio(sides: list[Side]):
    text = markdown(sides, BenchConfig(concurrency=[1, 4], duration=5, warmup=1), 2)
    trial = "batch 4, 2 workers x 1 thread (tf)"
    assert f"| TensorFlow | 9.0 | 12.0 | 4 | 16.0 ({trial}) | 0.75 | 0 | 0.30 |" in text
    assert f"| ONNX | 11.0 | 14.0 | 4 | 20.0 ({trial}) | 0.70 | 0 | 0.10 |" in text
    assert "ONNX / TensorFlow served throughput: **1.17** at the best level" in text
    assert "x1 1.22, x4 1.17" in text and "in-process ceilings: 1.25" in text
    assert "- TensorFlow: Served / ceiling: 0.75 <= 1" in text
    assert "- ONNX: served 14.0 images/s = 160 GFLOP/s (71% of the machine's 224 GFLOP/s" in text


def test_write_puts_a_stamped_copy_in_the_results(sides: list[Side], tmp_path: Path):
    base = BenchConfig(concurrency=[1, 4])
    paths = write(sides, base, 2, tmp_path / "out", tmp_path / "results")
    assert [p.name for p in paths[:2]] == ["compare.md", "compare.json"]
    assert paths[2].parent == tmp_path / "results" and paths[2].name.startswith("formats-")
    stamped = paths[2].read_text()
    assert stamped.startswith("# Formats served side by side: TensorFlow vs ONNX")
    assert "| cores |" in stamped
    summary = json.loads(paths[1].read_text())
    assert summary["ONNX"]["served_over_in_process"] == pytest.approx(0.7)


def test_labels_come_from_the_build_manifest(tmp_path: Path, staged_repository: Path):
    built = json.loads((staged_repository / MANIFEST_NAME).read_text())
    for name, fmt in (("a", "onnx"), ("b", "tf")):
        (tmp_path / name).mkdir()
        classifier = {"format": fmt, "platform": "p", "model": "m", "file": "f"}
        manifest = {**built, "classifier": classifier}
        (tmp_path / name / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert (label(tmp_path / "a"), label(tmp_path / "b")) == ("ONNX", "TensorFlow")
    assert label(tmp_path / "missing") == "missing"
    assert parse_repositories(f"{tmp_path / 'a'},{tmp_path / 'b'}") == [
        tmp_path / "a",
        tmp_path / "b",
    ]
    with pytest.raises(UsageError, match="give two repositories"):
        parse_repositories(str(tmp_path / "a"))
    with pytest.raises(UsageError, match="not built"):
        parse_repositories(f"{tmp_path / 'a'},{tmp_path / 'missing'}")


def test_without_ceilings_the_report_says_so(sides: list[Side]):
    for side in sides:
        for r in side.results:
            r.ceilings.clear()
    text = markdown(sides, BenchConfig(concurrency=[1, 4], ceiling=False), 2)
    assert "no in-process ceiling (--no-ceiling)" in text
    assert "in-process: not measured" in text and "nan" not in text
    assert "| TensorFlow | 9.0 | 12.0 | 4 | - (-) | - |" in text
    assert "Served / ceiling" not in text
