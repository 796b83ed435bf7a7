"""Result files stamped with where and when they were measured (``docs/results/``).

The bench, the hardening run and replay write their tables there: each file starts with
a heading, then a table of the machine (date, cores, CPU, memory, OS, Python, server,
tritonship), so a number in the docs can be traced to the run that produced it.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from tritonship import __version__
from tritonship.fileio import write_text_atomic
from tritonship.paths import checkout_root


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
