"""``tritonship bench``: closed-loop load, the in-process ceiling and a report.

``bench hostile`` sends the hardening corpus and ``bench tune`` runs the tuning study
(each option after the subcommand's name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonship.cli.common import (
    LOCAL_URL,
    Subparsers,
    add_command,
    add_deprecated,
    add_quiet,
    add_repo,
    add_target,
    add_target_model,
    require_endpoint,
    say,
)
from tritonship.errors import UsageError
from tritonship.sagemaker.settings import run_dir

DEFAULT_FORMAT = "both"


def cmd_bench(args: argparse.Namespace) -> int:
    """Load the endpoint level by level, then measure the in-process ceiling; write a report."""
    from tritonship.bench import FORMATS, BenchConfig, parse_levels, run_bench, write_report

    _check_options(args)
    if args.compare:
        return _compare(args)
    config = BenchConfig(
        url=args.url or LOCAL_URL,
        endpoint=args.endpoint,
        concurrency=parse_levels(args.concurrency),
        duration=args.duration,
        warmup=args.warmup,
        formats=FORMATS[args.format or DEFAULT_FORMAT],
        repository=args.repo,
        image=args.photo,
        metrics_url=args.metrics_url,
        ceiling=not args.no_ceiling,
        progress=not args.quiet,
        body=args.body,
        content_type=args.content_type,
        target_model=args.target_model,
    )
    result = run_bench(config, say=say)
    for path in write_report(result, args.out, results_dir=_results_dir(args, args.out)):
        print(f"wrote {path}")
    print(f"first request of the run: {result.meta['first_request_ms']:.0f} ms (not in the levels)")
    for line in result.targets:
        print(line)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """Refuse combinations that cannot mean anything, each with what to do instead."""
    if args.compare and (args.body or args.target_model):
        option = "--body" if args.body else "--target-model"
        raise UsageError(
            f"--compare serves our repositories itself: {option} does not apply",
            hint="bench one endpoint at a time with --body or --target-model",
        )
    require_endpoint(args)
    if args.content_type and not args.body:
        raise UsageError("--content-type goes with --body", hint="add --body FILE")
    if args.body and (args.photo or args.format):
        option = "--photo" if args.photo else "--format"
        raise UsageError(
            f"{option} does not apply to --body: the body is sent as is",
            hint="give its type with --content-type",
        )


def _compare(args: argparse.Namespace) -> int:
    """``--compare A,B``: serve each repository natively in turn, alternating; one report."""
    from tritonship.bench import BenchConfig, parse_levels
    from tritonship.bench.compare import compare, parse_repositories, write

    if args.url or args.endpoint:
        say("--compare serves each repository itself: --url and --endpoint are ignored")
    repositories = parse_repositories(args.compare)
    base = BenchConfig(
        concurrency=parse_levels(args.concurrency),
        duration=args.duration,
        warmup=args.warmup,
        formats=("binary",),
        image=args.photo,
        ceiling=not args.no_ceiling,
        progress=False,
    )
    out = args.out / "compare"
    sides = compare(repositories, base, args.rounds, out, say=say)
    for path in write(sides, base, args.rounds, out, _results_dir(args, out)):
        print(f"wrote {path}")
    print((out / "compare.md").read_text(encoding="utf-8"))
    return 0


def _results_dir(args: argparse.Namespace, out: Path) -> Path | None:
    """Where the stamped copy goes: ``--results``, else beside the report in ``out``.

    Never into the checkout unless asked (``--results docs/results``): a benchmark a user
    runs must not dirty their working tree.
    """
    if args.no_results:
        return None
    return args.results or out


def add_bench(sub: Subparsers) -> None:
    """``bench [--url URL | --endpoint NAME] [--concurrency L] [--duration S] ...``."""
    bench = add_command(sub, "bench", cmd_bench, "closed-loop load, in-process ceiling, report")
    add_target(
        bench,
        "SageMaker endpoint (boto3 in a thread pool; the local runtime with "
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081)",
    )
    bench.add_argument(
        "--concurrency",
        default="1,2,4,8,16",
        help="clients per level, closed loop (default: %(default)s)",
    )
    bench.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="measured seconds per level (default: %(default)s)",
    )
    bench.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds per level (default: %(default)s)",
    )
    bench.add_argument(
        "--format",
        choices=["binary", "json", "raw", "both", "all"],
        help="binary+json, JSON, raw (the JPEG as the whole body), both (binary and JSON) "
        f"or all three (default: {DEFAULT_FORMAT})",
    )
    add_target_model(bench)
    bench.add_argument(
        "--body",
        type=Path,
        metavar="FILE",
        help="send this request body as is, for any model, instead of a photo (no in-process "
        "ceiling)",
    )
    bench.add_argument(
        "--content-type",
        metavar="TYPE",
        help="with --body: its Content-Type (default: application/json)",
    )
    bench.add_argument(
        "--compare",
        metavar="DIR1,DIR2",
        help="serve these repositories natively in turn (e.g. TensorFlow and its ONNX build), "
        "alternating, and compare them",
    )
    bench.add_argument(
        "--rounds", type=int, default=2, help="with --compare: rounds (default: %(default)s)"
    )
    _add_outputs(bench)
    add_repo(bench)
    add_studies(bench)


def _add_outputs(bench: argparse.ArgumentParser) -> None:
    """Where the report goes, what is sent and what is measured besides latency."""
    bench.add_argument(
        "--out",
        type=Path,
        default=run_dir() / "bench",
        help="report folder (default: %(default)s, in the run folder)",
    )
    bench.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder for a copy of bench.md stamped with the machine and date, e.g. "
        "docs/results to keep it with the docs (default: the --out folder)",
    )
    bench.add_argument("--no-results", action="store_true", help="keep no stamped copy")
    bench.add_argument(
        "--photo",
        type=Path,
        metavar="JPG",
        help="the photo to send (default: scikit-image's rocket as a 640x480 JPEG)",
    )
    add_deprecated(bench, "--image", "--photo", "photo", type=Path)
    bench.add_argument("--metrics-url", help="Triton metrics, for the batch sizes it reached")
    bench.add_argument("--no-ceiling", action="store_true", help="skip the in-process ceiling")
    add_quiet(bench, "no live progress display")


def cmd_hostile(args: argparse.Namespace) -> int:
    """Send the hostile corpus; print the table, keep it stamped in ``--results``."""
    from tritonship.bench.hostile import run_corpus, write_hostile_results

    table = run_corpus(args.url, args.runtime)
    print(table)
    # Never into the checkout unless asked (--results docs/results), as bench's report.
    results = None if args.no_results else (args.results or run_dir() / "hostile")
    if results is not None:
        print(f"wrote {write_hostile_results(results, args.url, table)}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Bench each variant of the repository's configs in turn; one table row each."""
    from tritonship.bench import FORMATS, BenchConfig, parse_levels
    from tritonship.bench.tuning import quiet_bench, table_row, variant_names

    names = variant_names(args.variants)
    base = BenchConfig(
        concurrency=parse_levels(args.concurrency),
        duration=args.duration,
        formats=FORMATS[args.format],
        progress=False,
    )
    source = args.repo.resolve()
    for name in names:
        result = quiet_bench(name, base, source, args.out, args.tries, args.max_noise, say)
        print(table_row(name, result), flush=True)
    return 0


def add_studies(bench: argparse.ArgumentParser) -> None:
    """``bench hostile`` and ``bench tune``: the hardening corpus and the tuning study."""
    studies = bench.add_subparsers(
        dest="study", metavar="{hostile,tune}", help="default: the closed-loop load of the endpoint"
    )
    hostile = add_command(
        studies, "hostile", cmd_hostile, "send the hostile-request corpus, print the table"
    )
    hostile.add_argument("--url", required=True, help="container API base URL")
    hostile.add_argument("--runtime", metavar="URL", help="local runtime base URL")
    hostile.add_argument(
        "--results",
        type=Path,
        help="folder for the stamped table, e.g. docs/results to keep it with the docs "
        "(default: hostile/ in the run folder)",
    )
    hostile.add_argument("--no-results", action="store_true", help="only print the table")
    tune = add_command(
        studies, "tune", cmd_tune, "bench variants of the configs, served natively in turn"
    )
    tune.add_argument(
        "--variants",
        metavar="A,B",
        help="comma-separated (default: every one; an unknown name lists them)",
    )
    tune.add_argument("--concurrency", default="1,4,8,16", help="(default: %(default)s)")
    tune.add_argument("--duration", type=float, default=8.0, help="measured seconds per level")
    tune.add_argument(
        "--out", type=Path, default=run_dir() / "tuning", help="work folder (default: %(default)s)"
    )
    tune.add_argument(
        "--format", choices=["binary", "json", "raw", "both", "all"], default="binary"
    )
    tune.add_argument("--tries", type=int, default=3, help="runs per variant while noisy")
    tune.add_argument(
        "--max-noise",
        type=float,
        default=0.1,
        help="cores other processes may use during a run (default: %(default)s)",
    )
    add_repo(tune)


def register(sub: Subparsers) -> None:
    """The benchmark command, with its studies."""
    add_bench(sub)
