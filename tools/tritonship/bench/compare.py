"""``tritonship bench --compare A,B``: repositories served on this machine in one run, alternating.

Typically the TensorFlow repository and its ONNX build (``tritonship build --format onnx``).
Each round serves every repository in turn with the native engine (the order reversed
every other round: A B, B A, ...), benches its levels, measures its in-process ceiling
(the best of its trials: batch sizes, workers and threads; :mod:`.ceiling`) and stops it,
so a drift in the machine's speed falls on both. Per repository the report gives the
served throughput per level, the ceiling and which trial reached it, the served / ceiling
ratio (each format against its own ceiling; <= 1, or why not) and both as a share of the
machine's compute rate (:mod:`.hardware`); between them, the served and in-process
throughput ratios (e.g. ONNX / TensorFlow). Numbers from one run only: compare ratios,
not runs.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from tritonship.bench.ceiling import Ceiling
from tritonship.bench.ceiling import best as best_ceiling
from tritonship.bench.hardware import INCEPTION_GFLOP, ComputeRate, hardware_share, served_gflops
from tritonship.bench.runner import BenchConfig, BenchResult
from tritonship.bench.targets import ceiling_statement
from tritonship.bench.tuning import bench_repository
from tritonship.errors import UsageError
from tritonship.paths import MANIFEST_NAME
from tritonship.reporting import Reporter, quiet
from tritonship.repository.manifest import read_manifest

FORMAT_NAMES = {"tf": "TensorFlow", "onnx": "ONNX"}


@dataclass
class Side:
    """One repository of the comparison and its results, one per round."""

    label: str
    repository: Path
    results: list[BenchResult] = field(default_factory=list)

    def served(self, concurrency: int) -> float:
        """Mean served throughput (images/s) at one level over the rounds (binary requests)."""
        return statistics.fmean(
            lv.throughput
            for r in self.results
            for lv in r.levels
            if lv.concurrency == concurrency and lv.format == "binary"
        )

    def best(self) -> tuple[int, float]:
        """The level with the highest mean served throughput: (concurrency, images/s)."""
        levels = sorted({lv.concurrency for r in self.results for lv in r.levels})
        return max(((c, self.served(c)) for c in levels), key=lambda pair: pair[1])

    def server_batch(self) -> int:
        """The classifier's batch at the best level (from the first round's metrics)."""
        return int(self.results[0].meta["server_batch"]["batch"])

    def ceilings(self) -> list[Ceiling]:
        """Each round's ceiling: the best of its in-process trials."""
        return [c for r in self.results if (c := best_ceiling(r.ceilings)) is not None]

    def ceiling(self) -> float | None:
        """The in-process ceiling: the mean over the rounds of each round's best trial."""
        found = [c.throughput for c in self.ceilings()]
        return statistics.fmean(found) if found else None

    def winner(self) -> str:
        """Which trial reached the ceiling (in the round with the highest one)."""
        found = best_ceiling(self.ceilings())
        return found.describe() if found else "-"

    def ratio(self) -> float | None:
        """Best served throughput over the in-process ceiling."""
        ceiling = self.ceiling()
        return self.best()[1] / ceiling if ceiling else None

    def compute(self) -> ComputeRate | None:
        """The machine's compute rate: the best any round measured."""
        rates = [r.meta["compute"] for r in self.results if r.meta.get("compute")]
        if not rates:
            return None
        top = max(rates, key=lambda rate: rate["gflops"])
        return ComputeRate(top["gflops"], top["kernel"], top.get("kernels", {}))

    def errors(self) -> int:
        """Failed requests over every round."""
        return sum(lv.errors for r in self.results for lv in r.levels)

    def noise(self) -> float:
        """The most cores other processes kept busy during any of its rounds."""
        return max(float(r.meta.get("foreign_cores", 0.0)) for r in self.results)

    def noise_during(self, phase: str) -> float | None:
        """The most cores other processes kept busy during a ``ceiling`` or ``levels`` phase."""
        key = f"foreign_cores_{phase}"
        found = [float(r.meta[key]) for r in self.results if key in r.meta]
        return max(found) if found else None


def label(repository: Path) -> str:
    """``TensorFlow`` or ``ONNX`` from the build manifest, else the folder name."""
    manifest = read_manifest(repository)
    if manifest is None:
        return repository.name
    fmt = manifest.classifier.format if manifest.classifier else "tf"
    return FORMAT_NAMES.get(fmt, fmt)


def parse_repositories(text: str) -> list[Path]:
    """``DIR1,DIR2`` -> two or more existing repositories."""
    repositories = [Path(part.strip()) for part in text.split(",") if part.strip()]
    if len(repositories) < 2:
        raise UsageError(f"--compare {text!r}: give two repositories, e.g. DIR1,DIR2")
    missing = [str(r) for r in repositories if not (r / MANIFEST_NAME).is_file()]
    if missing:
        raise UsageError(
            f"--compare: {', '.join(missing)} not built (no {MANIFEST_NAME})",
            hint="tritonship build (and build --format onnx) first",
        )
    return repositories


def schedule(sides: list[Side], rounds: int) -> list[Side]:
    """Every side once per round, the order reversed every other round (A B B A ...)."""
    return [s for r in range(rounds) for s in (sides if r % 2 == 0 else sides[::-1])]


def compare(
    repositories: list[Path], base: BenchConfig, rounds: int, work: Path, say: Reporter = quiet
) -> list[Side]:
    """Serve and bench each repository ``rounds`` times, alternating; return the sides."""
    labels = [label(r) for r in repositories]
    names = [
        lb if labels.count(lb) == 1 else f"{lb} ({r.name})"
        for lb, r in zip(labels, repositories, strict=True)
    ]
    sides = [Side(n, r.resolve()) for n, r in zip(names, repositories, strict=True)]
    for number, side in enumerate(schedule(sides, rounds), 1):
        say(f"round {(number - 1) // len(sides) + 1}/{rounds}: {side.label} ({side.repository})")
        config = BenchConfig(**{**vars(base), "repository": side.repository})
        slot = work / f"{number:02d}-{side.label.split()[0].lower()}"
        side.results.append(bench_repository(slot.name, config, side.repository, work))
    return sides


def markdown(sides: list[Side], base: BenchConfig, rounds: int) -> str:
    """The comparison: one row per repository, then the ratios between them."""
    levels = list(base.concurrency)
    head = " | ".join(f"x{c} img/s" for c in levels)
    lines = [
        f"Served with the native engine (binary+json, {base.duration:g} s per level after "
        f"{base.warmup:g} s warm-up), {rounds} alternating rounds, means over the rounds; "
        + (
            "the in-process ceiling runs the same repository's pipeline and classifier with "
            "no server."
            if base.ceiling
            else "no in-process ceiling (--no-ceiling)."
        ),
        "",
        f"| format | {head} | server batch | in-process ceiling img/s (best trial) | "
        "served / ceiling | errors | noise (cores) |",
        "|---|" + "---:|" * len(levels) + "---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        cells = " | ".join(f"{side.served(c):.1f}" for c in levels)
        lines.append(
            f"| {side.label} | {cells} | {side.server_batch()} | {_num(side.ceiling())} "
            f"({side.winner()}) | {_num(side.ratio(), 2)} | {side.errors()} | "
            f"{side.noise():.2f} |"
        )
    lines += ["", *ratio_lines(sides, levels), *statement_lines(sides)]
    return "\n".join(lines) + "\n"


def statement_lines(sides: list[Side]) -> list[str]:
    """Per side: served / ceiling <= 1 or why not, and how close to the hardware each runs."""
    lines = []
    for side in sides:
        served, found = side.best()[1], best_ceiling(side.ceilings())
        if found is None:
            continue
        ceiling = replace(found, throughput=side.ceiling() or 0.0)
        statement = ceiling_statement(
            served, ceiling, side.noise_during("ceiling"), side.noise_during("levels")
        )
        lines.append(f"- {side.label}: {statement}")
        rate = side.compute()
        if rate is not None:
            lines.append(
                f"- {side.label}: served {served:.1f} images/s = "
                f"{served_gflops(served):.0f} GFLOP/s ({hardware_share(served, rate):.0%} of "
                f"the machine's {rate.gflops:.0f} GFLOP/s, {rate.kernel}); the ceiling "
                f"{hardware_share(ceiling.throughput, rate):.0%}; Inception V3: "
                f"{INCEPTION_GFLOP:.2f} GFLOP an image."
            )
    return lines


def ratio_lines(sides: list[Side], levels: list[int]) -> list[str]:
    """``ONNX / TensorFlow``: served (best level and per level) and in-process ratios."""
    first, lines = sides[0], []
    for other in sides[1:]:
        best = other.best()[1] / first.best()[1]
        per_level = ", ".join(f"x{c} {other.served(c) / first.served(c):.2f}" for c in levels)
        ceilings = other.ceiling(), first.ceiling()
        in_process = (
            f"in-process ceilings: {ceilings[0] / ceilings[1]:.2f}"
            if ceilings[0] and ceilings[1]
            else "in-process: not measured"
        )
        lines.append(
            f"- {other.label} / {first.label} served throughput: **{best:.2f}** at the best "
            f"level ({per_level}); {in_process}."
        )
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    """A number for the table, ``-`` when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


def native_server() -> str:
    """The native engine's tritonserver, for the results stamp."""
    from importlib import metadata

    from tritonship.bench.report import PYTRITON_SERVERS

    wheel = metadata.version("nvidia-pytriton")
    return f"{PYTRITON_SERVERS.get(wheel, 'unknown')} (native engine, nvidia-pytriton {wheel})"


def write(
    sides: list[Side], base: BenchConfig, rounds: int, out: Path, results_dir: Path | None
) -> list[Path]:
    """``compare.md`` (and ``compare.json``) in ``out``, and a stamped copy in ``results_dir``."""
    from tritonship.bench.report import machine_stamp, write_results
    from tritonship.fileio import write_text_atomic

    title = " vs ".join(side.label for side in sides)
    text = f"# Formats served side by side: {title}\n\n" + markdown(sides, base, rounds)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.md", out / "compare.json"]
    write_text_atomic(paths[0], text)
    summary = {
        side.label: {
            "repository": str(side.repository),
            "served": {c: side.served(c) for c in base.concurrency},
            "server_batch": side.server_batch(),
            "ceiling": side.ceiling(),
            "ceiling_trial": side.winner(),
            "compute_gflops": rate.gflops if (rate := side.compute()) else None,
            "served_over_in_process": side.ratio(),
            "errors": side.errors(),
            "noise_cores": side.noise(),
        }
        for side in sides
    }
    write_text_atomic(paths[1], json.dumps(summary, indent=2) + "\n")
    if results_dir is not None:
        stamp = machine_stamp(server=native_server())
        paths.append(write_results(results_dir, "formats", text, stamp))
    return paths
