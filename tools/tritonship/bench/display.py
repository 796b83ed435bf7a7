"""The live progress display: one bar per level with running counts, then its figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tritonship.bench.load import Tick
from tritonship.bench.stats import LevelStats, Sample

Done = Callable[[LevelStats], None]


class Display:
    """The live progress display: one bar per level, on stderr (rich)."""

    def __init__(self, enabled: bool, unit: str = "images") -> None:
        """A disabled display prints nothing; ``unit`` is what throughput counts."""
        self.unit = unit
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
            disable=not enabled,
        )

    @contextmanager
    def running(self) -> Iterator[Display]:
        """Show the bars while the levels run."""
        with self._progress:
            yield self

    def level(self, label: str, seconds: float) -> tuple[Tick, Done]:
        """A bar for one level: its ``tick`` (live counts) and its ``done`` (final figures)."""
        task = self._progress.add_task(label, total=seconds, status="")
        counts = {"seen": 0, "images": 0, "errors": 0}

        def tick(elapsed: float, samples: list[Sample]) -> None:
            for sample in samples[counts["seen"] :]:
                key, amount = ("errors", 1) if sample.error else ("images", sample.images)
                counts[key] += amount
            counts["seen"] = len(samples)
            status = (
                f"{counts['images'] / max(elapsed, 1e-9):6.1f} {self.unit}/s  "
                f"{counts['errors']} errors"
            )
            self._progress.update(task, completed=min(elapsed, seconds), status=status)

        def done(stats: LevelStats) -> None:
            status = (
                f"{stats.throughput:6.1f} {self.unit}/s  p50 {stats.latency_ms['p50']:.0f} ms  "
                f"p99 {stats.latency_ms['p99']:.0f} ms  {stats.errors} errors"
            )
            self._progress.update(task, completed=seconds, status=status)

        return tick, done
