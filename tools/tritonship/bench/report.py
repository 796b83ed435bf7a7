"""The bench's report files: JSON (everything), CSV (one row per level), PNG, markdown.

Result tables (the bench's and the hardening run's) can also go to a results folder
(``docs/results/`` in a checkout), each file stamped with the machine and the date
(:mod:`tritonship.results`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonship.bench.ceiling import best as best_ceiling
from tritonship.bench.hardware import (
    INCEPTION_GFLOP,
    ComputeRate,
    hardware_share,
    images_at_full_rate,
    served_gflops,
)
from tritonship.bench.stats import PERCENTILES, LevelStats
from tritonship.bench.targets import best_level, ceiling_statement
from tritonship.fileio import write_bytes_atomic, write_text_atomic

# Re-exported: the bench, the hardening run and replay share the stamped results files.
from tritonship.results import (  # noqa: F401
    default_results_dir,
    machine_stamp,
    stamp_markdown,
    write_results,
)

if TYPE_CHECKING:
    from tritonship.bench.runner import BenchResult

STEM = "bench"
CSV_COLUMNS = (
    "format",
    "concurrency",
    "throughput",
    *(f"p{q}" for q in PERCENTILES),
    "mean",
    "requests",
    "images",
    "errors",
    "request_bytes",
    "response_bytes",
    "client_cpu",
    "server_batch",
)


#: The tritonserver inside each nvidia-pytriton wheel (the native engine's server).
PYTRITON_SERVERS = {"0.7.0": "2.51.0"}


def write_report(result: BenchResult, out: Path, results_dir: Path | None = None) -> list[Path]:
    """Write ``bench.json``, ``bench.csv``, ``bench.png`` and ``bench.md`` into ``out``.

    With ``results_dir``, the markdown also goes there as a stamped results file.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{STEM}.{ext}" for ext in ("json", "csv", "png", "md")]
    write_text_atomic(paths[0], json.dumps(_jsonable(asdict(result)), indent=2) + "\n")
    write_text_atomic(paths[1], csv_text(result.levels))
    write_bytes_atomic(paths[2], plot_png(result))
    text = markdown(result)
    write_text_atomic(paths[3], text)
    if results_dir is not None:
        target = str(result.meta.get("target", ""))
        stamp = machine_stamp(server=server_version(target), date=result.meta.get("date"))
        paths.append(write_results(results_dir, STEM, text, stamp))
    return paths


# --- stamped results ----------------------------------------------------------------------


def server_version(target: str) -> str | None:
    """The tritonserver version behind ``target``, when it is the native engine's server."""
    from tritonship.local.native import read_state

    state = read_state()
    if not state or not target or str(state.get("url", "")).rstrip("/") != target.rstrip("/"):
        return None
    try:
        wheel = metadata.version("nvidia-pytriton")
    except metadata.PackageNotFoundError:
        return None
    known = PYTRITON_SERVERS.get(wheel, "unknown")
    return f"{known} (native engine, nvidia-pytriton {wheel})"


def _jsonable(value: object) -> object:
    """NaN (no samples) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def csv_row(level: LevelStats) -> dict[str, object]:
    """One level as a flat CSV row."""
    batch = " ".join(f"{model}={size}" for model, size in level.server_batch.items())
    return {
        "format": level.format,
        "concurrency": level.concurrency,
        "throughput": round(level.throughput, 2),
        **{key: round(value, 2) for key, value in level.latency_ms.items() if key != "max"},
        "requests": level.requests,
        "images": level.images,
        "errors": level.errors,
        "request_bytes": level.request_bytes,
        "response_bytes": round(level.response_bytes),
        "client_cpu": round(level.client_cpu, 3),
        "server_batch": batch,
    }


def csv_text(levels: list[LevelStats]) -> str:
    """All levels as CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(level) for level in levels)
    return buffer.getvalue()


def plot_png(result: BenchResult) -> bytes:
    """Throughput and p99 latency against concurrency, one line per format."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for fmt in sorted({level.format for level in result.levels}):
        levels = [level for level in result.levels if level.format == fmt]
        xs = [level.concurrency for level in levels]
        left.plot(xs, [level.throughput for level in levels], marker="o", label=fmt)
        right.plot(xs, [level.latency_ms["p99"] for level in levels], marker="o", label=fmt)
    ceiling = best_ceiling(result.ceilings)
    if ceiling is not None:
        left.axhline(ceiling.throughput, linestyle="--", linewidth=1, color="grey")
        left.annotate(
            f"in-process ceiling: {ceiling.describe()}",
            (0.01, ceiling.throughput),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            va="bottom",
        )
    clients = sorted({level.concurrency for level in result.levels})
    _style(left, f"throughput ({result.meta.get('unit', 'images')}/s)", clients)
    _style(right, "p99 latency (ms)", clients)
    figure.suptitle(f"{result.meta['target']} - {result.meta['machine']}", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _style(axes: Any, label: str, clients: list[int]) -> None:
    """Log-2 concurrency axis ticked at the levels, labels, grid and legend."""
    axes.set_xscale("log", base=2)
    axes.set_xticks(clients, [str(c) for c in clients])
    axes.set_xlabel("concurrency (clients)")
    axes.set_ylabel(label)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend()


def _carried(meta: dict[str, Any]) -> str:
    """What every request carried: the photo, or a user's body (file, size, type)."""
    body = meta.get("body")
    if not body:
        return f"image {meta['image']}"
    return f"request body {body['file']} ({body['bytes']} B, {body['content_type']})"


def _ceiling_lines(result: BenchResult) -> list[str]:
    """The in-process ceiling, served / ceiling and the hardware; or why there is none."""
    if result.meta.get("body"):
        return ["In-process ceiling: none for a request body (it measures our ensemble)."]
    ceiling = best_ceiling(result.ceilings)
    if ceiling is None:
        return ["In-process ceiling: not measured (--no-ceiling)."]
    tried = "; ".join(f"{c.describe()}: {c.throughput:.1f}" for c in result.ceilings)
    best = best_level(result.levels)
    served = best.throughput if best else None
    meta = result.meta
    statement = ceiling_statement(
        served, ceiling, meta.get("foreign_cores_ceiling"), meta.get("foreign_cores_levels")
    )
    lines = [
        f"In-process ceiling (same DALI pipeline and classifier, no server): "
        f"**{ceiling.throughput:.1f} images/s**, best of the trials ({tried} images/s).",
        "",
        statement,
    ]
    return lines + ["", *hardware_lines(meta, served, ceiling.throughput)]


def hardware_lines(meta: dict[str, Any], served: float | None, ceiling: float) -> list[str]:
    """How close to the hardware: each throughput as GFLOP/s and as a share of the rate."""
    compute = meta.get("compute")
    if not compute:
        return []
    rate = ComputeRate(compute["gflops"], compute["kernel"], compute.get("kernels", {}))
    per_image = float(meta.get("gflop_per_image", INCEPTION_GFLOP))
    rows = [("The in-process ceiling", ceiling)]
    rows += [("the best served level", served)] if served else []
    parts = [
        f"{name} computes {served_gflops(images, per_image):.0f} GFLOP/s "
        f"({hardware_share(images, rate, per_image):.0%} of it)"
        for name, images in rows
    ]
    return [
        f"Hardware: this machine's CPUs reach {rate.gflops:.0f} GFLOP/s with the best compiled "
        f"kernel ({rate.kernel}); Inception V3 costs {per_image:.2f} GFLOP an image, so the "
        f"classifier alone could reach {images_at_full_rate(rate, per_image):.1f} images/s. "
        + ", ".join(parts)
        + "; the DALI step and the server's own work take the rest (a share above 100%: the "
        "classifier's kernels beat the two timed, or the machine was busier while they ran).",
    ]


def markdown(result: BenchResult) -> str:
    """A short summary: the run, the levels table, the ceiling and the targets."""
    meta = result.meta
    unit = meta.get("unit", "images")
    lines = [
        f"# tritonship bench: {meta['target']}",
        "",
        f"{meta['machine']}; {_carried(meta)}; {meta['duration']} s per level "
        f"after {meta['warmup']} s warm-up; {meta['date']}.",
        "",
        *_first_request_lines(meta),
        f"| format | clients | {unit}/s | p50 ms | p90 ms | p99 ms | errors | "
        "request B | response B | client CPU | server batch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_markdown_row(level) for level in result.levels]
    lines += ["", *_ceiling_lines(result), ""]
    lines += [f"- {line}" for line in result.targets]
    return "\n".join(lines) + "\n"


def _first_request_lines(meta: dict[str, Any]) -> list[str]:
    """The run's first request, reported apart from the levels (absent in older results)."""
    if meta.get("first_request_ms") is None:
        return []
    return [
        f"First request of the run: {meta['first_request_ms']:.0f} ms, not counted in the "
        "levels (a cold start only when the server had answered nothing before it).",
        "",
    ]


def _markdown_row(level: LevelStats) -> str:
    """One level as a markdown table row."""
    latency = level.latency_ms
    batch = ", ".join(f"{model} {size:g}" for model, size in level.server_batch.items()) or "-"
    cells = [
        level.format,
        level.concurrency,
        f"{level.throughput:.1f}",
        f"{latency['p50']:.0f}",
        f"{latency['p90']:.0f}",
        f"{latency['p99']:.0f}",
        level.errors,
        level.request_bytes,
        f"{level.response_bytes:.0f}",
        f"{level.client_cpu:.0%}",
        batch,
    ]
    return "| " + " | ".join(str(cell) for cell in cells) + " |"
