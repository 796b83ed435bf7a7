"""``tritonship bench``: closed-loop load, the in-process ceiling and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonship.cli.common import (
    LOCAL_URL,
    Subparsers,
    add_command,
    add_quiet,
    add_repo,
    add_target,
    say,
)
from tritonship.paths import run_dir


def cmd_bench(args: argparse.Namespace) -> int:
    """Load the endpoint level by level, then measure the in-process ceiling; write a report."""
    from tritonship.bench import FORMATS, BenchConfig, parse_levels, run_bench, write_report

    config = BenchConfig(
        url=args.url or LOCAL_URL,
        endpoint=args.endpoint,
        concurrency=parse_levels(args.concurrency),
        duration=args.duration,
        warmup=args.warmup,
        formats=FORMATS[args.format],
        repository=args.repo,
        image=args.image,
        metrics_url=args.metrics_url,
        ceiling=not args.no_ceiling,
        progress=not args.quiet,
    )
    result = run_bench(config, say=say)
    from tritonship.bench.report import default_results_dir

    results = None if args.no_results else (args.results or default_results_dir())
    for path in write_report(result, args.out, results_dir=results):
        print(f"wrote {path}")
    for line in result.targets:
        print(line)
    return 0


def add_bench(sub: Subparsers) -> None:
    """``bench [--url URL | --endpoint NAME] [--concurrency L] [--duration S] ...``."""
    bench = add_command(sub, "bench", cmd_bench, "closed-loop load, in-process ceiling, report")
    add_target(
        bench,
        "SageMaker endpoint (boto3 in a "
        "thread pool; AWS_ENDPOINT_URL=http://127.0.0.1:8081 for the local one)",
    )
    bench.add_argument(
        "--concurrency",
        default="1,2,4,8,16",
        help="clients per level, closed loop (default: %(default)s)",
    )
    bench.add_argument("--duration", type=float, default=10.0, help="measured seconds per level")
    bench.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per level")
    bench.add_argument("--format", choices=["binary", "json", "both"], default="both")
    _add_outputs(bench)
    add_repo(bench)


def _add_outputs(bench: argparse.ArgumentParser) -> None:
    """Where the report goes, what is sent and what is measured besides latency."""
    bench.add_argument(
        "--out",
        type=Path,
        default=run_dir() / "bench",
        help="report folder (default: %(default)s)",
    )
    bench.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder for a stamped copy of bench.md (default: docs/results in a checkout)",
    )
    bench.add_argument("--no-results", action="store_true", help="keep no stamped copy")
    bench.add_argument("--image", type=Path, help="image to send (default: a 640x480 photo)")
    bench.add_argument("--metrics-url", help="Triton metrics, for the batch sizes it reached")
    bench.add_argument("--no-ceiling", action="store_true", help="skip the in-process ceiling")
    add_quiet(bench, "no live progress display")


def register(sub: Subparsers) -> None:
    """The benchmark command."""
    add_bench(sub)
