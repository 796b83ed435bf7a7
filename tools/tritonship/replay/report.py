"""The replay report: ``replay.md`` for people, ``replay.json`` for CI, a stamped copy.

The markdown says where the requests came from and what they were replayed against, the
latency of each target side by side, how the answers agree (for our ensemble: top-1 per
row, top-5 overlap, largest probability difference) and lists every request that
disagrees or failed, by eventId, so it can be found in the capture (``tritonship capture
decode`` writes it out). The stamped copy goes to ``docs/results/`` in a checkout
(``replay-<date>.md``), as the bench's does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tritonship.fileio import write_text_atomic
from tritonship.replay.engine import CAPTURED, Replayed, ReplayResult, latency_ms
from tritonship.results import machine_stamp, write_results

STEM = "replay"
#: At most this many disagreeing (or failed) requests are listed in the markdown.
LISTED = 50


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _latency_rows(result: ReplayResult) -> list[str]:
    """One row per target: answered, errors, p50/p90/p99/mean/max ms."""
    rows = [
        "| target | answered | errors | p50 ms | p90 ms | p99 ms | mean ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, target in enumerate(result.targets):
        sent = [item.answers[index] for item in result.items if len(item.answers) > index]
        seconds = [s.seconds for s in sent if s.ok and s.seconds is not None]
        stats = latency_ms(seconds)
        cells = [target.label, len(seconds), len(sent) - len(seconds)]
        cells += [_ms(stats[key]) for key in ("p50", "p90", "p99", "mean", "max")]
        rows.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return rows


def summary(result: ReplayResult) -> dict[str, Any]:
    """The counts and the agreement over every compared request."""
    compared = result.compared
    classified = [i.agreement for i in compared if i.agreement and i.agreement.kind == "classifier"]
    diffs = [a.max_abs_diff for i in compared if (a := i.agreement) and a.max_abs_diff is not None]
    rows = sum(a.rows for a in classified)
    return {
        "requests": len(result.items),
        "images": sum(item.images for item in result.items),
        "compared": len(compared),
        "agreeing": len(compared) - len(result.disagreeing),
        "disagreeing": len(result.disagreeing),
        "failed": len(result.failed),
        "skipped": sum(1 for item in result.items if item.skipped),
        "unreadable_lines": len(result.unreadable),
        "rows": rows,
        "top1_equal_rows": sum(a.top1_equal for a in classified),
        "mean_top5_overlap": (
            sum((a.top5_overlap or 0) * a.rows for a in classified) / rows if rows else None
        ),
        "max_abs_diff": max(diffs) if diffs else None,
        "ok": result.ok,
    }


def _agreement_lines(result: ReplayResult, counts: dict[str, Any]) -> list[str]:
    """The agreement paragraph and table."""
    against = (
        "the answers captured with the requests"
        if result.reference == CAPTURED
        else result.reference
    )
    verdict = "all agree" if result.ok else "DISAGREEMENT" if counts["disagreeing"] else "FAILED"
    lines = [
        f"## Agreement: {verdict}",
        "",
        f"{result.targets[0].label} against {against}; floating-point values within "
        f"{result.tolerance.describe()}.",
        "",
        "| compared | agree | disagree | failed | skipped | rows | top-1 equal | "
        "mean top-5 overlap | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    overlap = counts["mean_top5_overlap"]
    diff = counts["max_abs_diff"]
    cells = [
        counts["compared"],
        counts["agreeing"],
        counts["disagreeing"],
        counts["failed"],
        counts["skipped"],
        counts["rows"] or "-",
        f"{counts['top1_equal_rows']}/{counts['rows']}" if counts["rows"] else "-",
        f"{overlap:.2f}/5" if overlap is not None else "-",
        f"{diff:.3g}" if diff is not None else "-",
    ]
    return [*lines, "| " + " | ".join(str(cell) for cell in cells) + " |"]


def _listed(items: list[Replayed], heading: str, result: ReplayResult) -> list[str]:
    """A table of requests (eventId, time, images, why), at most :data:`LISTED`."""
    if not items:
        return []
    lines = [
        "",
        f"## {heading} ({len(items)})",
        "",
        "| eventId | inferenceTime | images | why | source |",
        "|---|---|---|---|---|",
    ]
    for item in items[:LISTED]:
        why = item.agreement.detail if item.agreement else _failure(item, result)
        record = item.record
        cells = [record.event_id, record.inference_time, item.images, why, record.source]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    if len(items) > LISTED:
        lines.append(f"\n... and {len(items) - LISTED} more in replay.json")
    return lines


def _failure(item: Replayed, result: ReplayResult) -> str:
    """Which target failed the request, and how."""
    errors = [
        f"{target.label}: {sent.error}"
        for target, sent in zip(result.targets, item.answers, strict=False)
        if not sent.ok
    ]
    return "; ".join(errors) or (item.skipped or "")


def markdown(result: ReplayResult) -> str:
    """The report as markdown (its first line is the heading)."""
    counts = summary(result)
    names = " vs ".join(t.label for t in result.targets)
    lines = [
        f"# tritonship replay: {names}",
        "",
        f"{counts['requests']} captured request(s) ({counts['images']} image(s)) from "
        f"{result.source}, replayed one at a time on {result.started}.",
        "",
        *(f"- {t.label}: {t.where}" for t in result.targets),
        "",
        "## Latency (client round trip)",
        "",
        *_latency_rows(result),
        "",
        *_agreement_lines(result, counts),
        *_listed(result.disagreeing, "Requests that disagree", result),
        *_listed(result.failed, "Requests a target failed", result),
    ]
    skipped = [item for item in result.items if item.skipped]
    if skipped:
        lines += ["", f"{len(skipped)} request(s) skipped: {skipped[0].skipped}"]
    if result.unreadable:
        lines += ["", f"{len(result.unreadable)} line(s) unreadable: {result.unreadable[0]}"]
    return "\n".join(lines) + "\n"


def as_json(result: ReplayResult) -> dict[str, Any]:
    """Everything, for CI: the summary, the targets and every request."""
    return {
        "source": result.source,
        "started": result.started,
        "targets": [{"label": t.label, "where": t.where} for t in result.targets],
        "reference": result.reference,
        "tolerance": {"rtol": result.tolerance.rtol, "atol": result.tolerance.atol},
        "summary": summary(result),
        "requests": [_item_json(item, result) for item in result.items],
        "unreadable": result.unreadable,
    }


def _item_json(item: Replayed, result: ReplayResult) -> dict[str, Any]:
    record = item.record
    return {
        "eventId": record.event_id,
        "inferenceTime": record.inference_time,
        "source": record.source,
        "contentType": item.content_type,
        "requestBytes": item.request_bytes,
        "images": item.images,
        "answers": [
            {"target": target.label, "ok": sent.ok, "seconds": sent.seconds, "error": sent.error}
            for target, sent in zip(result.targets, item.answers, strict=False)
        ],
        "agree": item.agreement.agree if item.agreement else None,
        "agreement": item.agreement.as_json() if item.agreement else None,
        "skipped": item.skipped,
    }


def write_report(result: ReplayResult, out: Path, results_dir: Path | None = None) -> list[Path]:
    """``replay.md`` and ``replay.json`` in ``out``; a stamped copy in ``results_dir``."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
    paths = [out / f"{STEM}.md", out / f"{STEM}.json"]
    write_text_atomic(paths[0], text)
    write_text_atomic(paths[1], json.dumps(as_json(result), indent=2) + "\n")
    if results_dir is not None:
        stamp = machine_stamp(server="see the targets in the report", date=result.started)
        paths.append(write_results(results_dir, STEM, text, stamp))
    return paths
