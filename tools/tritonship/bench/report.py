"""The bench's report files: JSON (everything), CSV (one row per level), PNG, markdown.

Result tables (the bench's and the hardening run's) can also go to a results folder
(``docs/results/`` in a checkout), each file stamped with the machine and the date.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonship import __version__
from tritonship.bench.stats import PERCENTILES, LevelStats
from tritonship.fileio import write_bytes_atomic, write_text_atomic
from tritonship.paths import checkout_root

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


def default_results_dir() -> Path | None:
    """``docs/results`` of the checkout tritonship runs from (None when installed)."""
    root = checkout_root()
    return root / "docs" / "results" if root else None


def _first_line(path: str, prefix: str) -> str | None:
    """The value after ``:`` of the first line of ``path`` starting with ``prefix``."""
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _memory() -> str:
    """Total memory from ``/proc/meminfo`` (``MemTotal: 8148536 kB`` -> ``7.8 GiB``)."""
    total = _first_line("/proc/meminfo", "MemTotal")
    if not total or not total.split()[0].isdigit():
        return "unknown"
    return f"{int(total.split()[0]) / (1 << 20):.1f} GiB"


def _os_name() -> str:
    """The distribution's pretty name and the kernel, e.g. ``Debian GNU/Linux 12, Linux 6.1``."""
    try:
        name = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        name = ""
    kernel = f"{platform.system()} {platform.release()}"
    return f"{name}, {kernel}" if name else kernel


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


def machine_stamp(server: str | None = None, date: str | None = None) -> dict[str, str]:
    """Where and when a result was measured: date, cores, CPU, memory, OS, Python, server."""
    return {
        "date": date or time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cores": str(os.cpu_count() or "unknown"),
        "cpu": _first_line("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "memory": _memory(),
        "os": _os_name(),
        "python": platform.python_version(),
        "tritonserver": server or "unknown",
        "tritonship": __version__,
    }


def stamp_markdown(stamp: dict[str, str]) -> str:
    """The stamp as a two-column markdown table."""
    rows = [f"| {key} | {value.replace('|', '/')} |" for key, value in stamp.items()]
    return "\n".join(["| measured on | |", "|---|---|", *rows]) + "\n"


def write_results(results_dir: Path, kind: str, table: str, stamp: dict[str, str]) -> Path:
    """Write ``<kind>-<date>.md``: heading, stamp, then the result; return its path.

    ``table`` may start with its own ``# heading``; else the heading is ``kind``.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y%m%d-%H%M%S")
    path, number = results_dir / f"{kind}-{when}.md", 1
    while path.exists():  # two runs in the same second
        number += 1
        path = results_dir / f"{kind}-{when}-{number}.md"
    heading, body = f"# {kind}", table
    if table.startswith("# "):
        heading, _, body = table.partition("\n")
    write_text_atomic(path, f"{heading}\n\n{stamp_markdown(stamp)}\n{body.strip()}\n")
    return path


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
    for ceiling in result.ceilings:
        left.axhline(ceiling.throughput, linestyle="--", linewidth=1, color="grey")
        left.annotate(
            f"in-process, batch {ceiling.batch}",
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


def _ceiling_line(result: BenchResult) -> str:
    """The in-process ceiling, or why there is none (a user's body: any model)."""
    if result.meta.get("body"):
        return "In-process ceiling: none for a request body (it measures our ensemble)."
    return (
        "In-process ceiling (same DALI pipeline and graph, no server): "
        + ", ".join(f"batch {c.batch}: {c.throughput:.1f} images/s" for c in result.ceilings)
        + "."
    )


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
    lines += ["", _ceiling_line(result), ""]
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
