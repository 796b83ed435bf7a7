"""The targets, checked on one run: ratios, not absolute numbers.

- best served throughput >= 0.9 x the in-process ceiling (the best of its trials, which
  include the batch size the server reached);
- binary+json at concurrency 1: request bytes <= 0.3 x JSON's, p50 <= 0.7 x JSON's;
- no errors at any level.

Besides the targets, :func:`ceiling_statement` says whether served / ceiling stays <= 1,
as a ceiling should, and why not when it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tritonship.bench.ceiling import Ceiling
from tritonship.bench.stats import LevelStats

THROUGHPUT_RATIO = 0.9
BYTES_RATIO = 0.3
P50_RATIO = 0.7


@dataclass
class Check:
    """One target: what was measured, the goal, and whether it was met (None: not measured)."""

    name: str
    measured: str
    goal: str
    met: bool | None

    def line(self) -> str:
        """One line for the summary."""
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[self.met]
        return f"{self.name}: {self.measured} (goal {self.goal}): {verdict}"


def best_level(levels: Sequence[LevelStats]) -> LevelStats | None:
    """The level with the highest throughput (binary+json preferred when present)."""
    binary = [level for level in levels if level.format == "binary"]
    return max(binary or levels, key=lambda level: level.throughput, default=None)


def server_batch(level: LevelStats, dynamic_batching: bool, images: int = 1) -> tuple[int, str]:
    """The batch size the server reached at ``level``, and where that number comes from."""
    measured = level.server_batch.get("inception_graphdef") or level.server_batch.get(
        "inception_onnx"
    )
    if measured:
        return max(1, round(measured)), "Triton metrics (inference count / execution count)"
    if dynamic_batching:
        return level.concurrency * images, "concurrency (no metrics: an upper bound)"
    return images, "request size (no dynamic batching, no metrics)"


def throughput_check(best: LevelStats | None, ceiling: Ceiling | None) -> Check:
    """Served throughput as a ratio of the in-process ceiling (its best trial)."""
    if best is None or ceiling is None or ceiling.throughput <= 0:
        return Check("served / in-process throughput", "-", f">= {THROUGHPUT_RATIO}", None)
    ratio = best.throughput / ceiling.throughput
    clients = f"{best.concurrency} client{'s' if best.concurrency > 1 else ''}"
    measured = (
        f"{ratio:.3f} ({best.throughput:.1f} images/s at {clients} / "
        f"{ceiling.throughput:.1f} in-process, {ceiling.describe()})"
    )
    return Check(
        "served / in-process throughput",
        measured,
        f">= {THROUGHPUT_RATIO}",
        ratio >= THROUGHPUT_RATIO,
    )


def ceiling_statement(
    served: float | None,
    ceiling: Ceiling | None,
    noise_ceiling: float | None = None,
    noise_levels: float | None = None,
) -> str:
    """Whether served / ceiling stays <= 1, as a ceiling should; why not, when it does not.

    ``noise_*``: the cores other processes kept busy while the ceiling and while the levels
    ran (:mod:`.noise`); a busier ceiling is one reason it can be beaten.
    """
    if served is None or ceiling is None or ceiling.throughput <= 0:
        return "Served / ceiling: not measured."
    ratio = served / ceiling.throughput
    if ratio <= 1:
        return (
            f"Served / ceiling: {ratio:.2f} <= 1: the server stays under the best this machine "
            f"did with no server ({ceiling.describe()})."
        )
    if noise_ceiling is not None and noise_levels is not None and noise_ceiling > noise_levels:
        why = (
            f"other processes kept {noise_ceiling:.2f} cores busy during the ceiling and "
            f"{noise_levels:.2f} during the levels: the ceiling ran on a busier machine"
        )
    else:
        why = (
            "the server ran its steps in a way no in-process trial did (e.g. more instances "
            "overlapping DALI and the classifier): this ceiling is a lower bound"
        )
    return f"Served / ceiling: {ratio:.2f} > 1: {why}."


def _at_one(levels: Sequence[LevelStats], fmt: str) -> LevelStats | None:
    return next((lv for lv in levels if lv.format == fmt and lv.concurrency == 1), None)


def format_checks(levels: Sequence[LevelStats]) -> list[Check]:
    """binary+json against JSON at concurrency 1: request bytes and p50 latency."""
    binary, as_json = _at_one(levels, "binary"), _at_one(levels, "json")
    if binary is None or as_json is None or not as_json.requests or not binary.requests:
        return [
            Check("binary / JSON request bytes at 1 client", "-", f"<= {BYTES_RATIO}", None),
            Check("binary / JSON p50 at 1 client", "-", f"<= {P50_RATIO}", None),
        ]
    size = binary.request_bytes / as_json.request_bytes
    p50 = binary.latency_ms["p50"] / as_json.latency_ms["p50"]
    return [
        Check(
            "binary / JSON request bytes at 1 client",
            f"{size:.2f} ({binary.request_bytes} / {as_json.request_bytes} B)",
            f"<= {BYTES_RATIO}",
            size <= BYTES_RATIO,
        ),
        Check(
            "binary / JSON p50 at 1 client",
            f"{p50:.2f} ({binary.latency_ms['p50']:.0f} / {as_json.latency_ms['p50']:.0f} ms)",
            f"<= {P50_RATIO}",
            p50 <= P50_RATIO,
        ),
    ]


def error_check(levels: Sequence[LevelStats]) -> Check:
    """No errors at any level."""
    errors = sum(level.errors for level in levels)
    top = max((level.concurrency for level in levels), default=0)
    return Check(
        "errors",
        f"{errors} in {len(levels)} levels up to {top} clients",
        "0",
        errors == 0 if levels else None,
    )
