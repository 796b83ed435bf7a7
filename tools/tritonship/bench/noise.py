"""How much CPU other processes used while we measured: the noise on a bench's numbers.

The machine's busy time (``/proc/stat``) minus what this process and its descendants (the
server and its backend stubs, when this process started them) used, per wall second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _tree_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its descendants (``/proc/<pid>/stat``)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grew = {root}, True
    while grew:
        grown = tree | {pid for pid, (parent, _) in stats.items() if parent in tree}
        tree, grew = grown, grown != tree
    return sum(stats[pid][1] for pid in tree if pid in stats) / os.sysconf("SC_CLK_TCK")


@contextmanager
def foreign_load() -> Iterator[dict[str, float]]:
    """Measure the cores other processes kept busy meanwhile (noise on the numbers)."""
    found: dict[str, float] = {}
    started, busy, ours = time.monotonic(), _busy_seconds(), _tree_seconds(os.getpid())
    yield found
    others = (_busy_seconds() - busy) - (_tree_seconds(os.getpid()) - ours)
    found["cores"] = round(max(0.0, others) / max(time.monotonic() - started, 1.0), 2)
