"""The ``tritonship`` command line: parse arguments, call the library, print results."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tritonship import __version__
from tritonship.errors import TritonshipError
from tritonship.local.engine import Engine
from tritonship.paths import DEFAULT_REPOSITORY

if TYPE_CHECKING:
    from tritonship.local.endpoint import LocalEndpoint
    from tritonship.sagemaker.client import Classification

Command = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    """Progress lines go to stderr so stdout stays machine-readable."""
    print(f"tritonship: {message}", file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    """Build every artifact of the repository."""
    from tritonship.repository.build import build_repository

    manifest = build_repository(
        args.repo, weights=args.weights, device=args.device, progress=not args.quiet, say=_say
    )
    weights = manifest["weights"]
    print(
        f"built {args.repo}: {weights['source']} weights (sha256 {weights['graph_sha256'][:12]}), "
        f"DALI {manifest['dali']['build_dali_version']} {manifest['dali']['mode']}, "
        f"target {manifest['device_target']}, {len(manifest['files'])} files, "
        f"{manifest['seconds']} s"
    )
    if weights["source"] == "random":
        _say(
            "NOTICE: random weights - the labels the model predicts are meaningless; "
            "build with --weights official for real predictions"
        )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate the repository; exit 1 with one line per finding."""
    from tritonship.repository.validate import (
        format_findings,
        load_repository,
        summary,
        validate_repository,
    )

    findings = validate_repository(args.repo, image_tag=args.image)
    if findings:
        print(format_findings(findings))
        print(f"{len(findings)} finding(s) in {args.repo}", file=sys.stderr)
        return 1
    print(summary(load_repository(args.repo)))
    return 0


def _make_engine(args: argparse.Namespace) -> Engine:
    """The engine the command line asks for."""
    if args.engine == "docker":
        from tritonship.local.docker import DockerEngine

        return DockerEngine(args.repo, port=args.port, image=args.image, profile=args.profile)
    from tritonship.local.native import NativeEngine

    return NativeEngine(args.repo, port=args.port, detach=args.detach)


def _refuse_findings(repo: Path) -> None:
    """Validate before any server starts; raise with every finding."""
    from tritonship.repository.validate import format_findings, validate_repository

    findings = validate_repository(repo)
    if findings:
        raise TritonshipError(
            f"{repo} has {len(findings)} problem(s):\n{format_findings(findings)}",
            hint="fix them (tritonship validate) or rebuild (tritonship build)",
        )


def cmd_serve(args: argparse.Namespace) -> int:
    """Start an engine and the local runtime, wait for /ping, stay in the foreground."""
    from rich.console import Console

    from tritonship.local.endpoint import LocalEndpoint

    if args.archive:
        from tritonship.artifact.unpack import unpack_for_serving
        from tritonship.paths import run_dir

        args.repo = unpack_for_serving(args.archive, run_dir())
        _say(f"serving the unpacked archive {args.archive} from {args.repo}")
    _refuse_findings(args.repo)
    endpoint = LocalEndpoint(_make_engine(args), args.runtime_port or None, args.detach)
    seconds = endpoint.start(args.timeout, status=Console(stderr=True).status)
    print(f"ready in {seconds:.1f} s")
    for line in endpoint.describe():
        print(f"  {line}")
    if args.detach:
        print(f"running in the background; stop it with: tritonship stop --engine {args.engine}")
        return 0
    return _serve_foreground(endpoint)


def _serve_foreground(endpoint: LocalEndpoint) -> int:
    """Block until Ctrl-C (then stop cleanly) or until the server dies (exit 1)."""
    import time

    print("press Ctrl-C to stop")
    try:
        while endpoint.is_alive():
            time.sleep(1.0)
            problem = endpoint.heal()
            if problem:
                _say(f"{problem}: restarted the server (as SageMaker replaces an instance)")
    except KeyboardInterrupt:
        print("stopping ...", file=sys.stderr)
        endpoint.stop()
        return 0
    print(f"the server exited:\n{endpoint.engine.logs(30)}", file=sys.stderr)
    endpoint.stop()
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the server a detached ``serve`` left running."""
    from tritonship.local.endpoint import stop_runtime

    if stop_runtime():
        print("stopped the local SageMaker runtime")
    if args.engine == "docker":
        from tritonship.local.docker import DockerEngine

        DockerEngine().stop()
        print("stopped the tritonship Docker Compose project")
        return 0
    from tritonship.local.native import read_state, stop_recorded

    state = read_state()
    if not stop_recorded():
        print("no native server is running")
        return 0
    print(f"stopped the native server (pid {state['pid'] if state else '?'})")
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    """Classify images through the container API (--url) or InvokeEndpoint (--endpoint)."""
    import json

    from tritonship.repository.labels import load_labels
    from tritonship.sagemaker.client import HttpTransport, SageMakerTransport, classify

    images = [(str(path), _read_image(path)) for path in args.images]
    transport = (
        SageMakerTransport(args.endpoint)
        if args.endpoint
        else HttpTransport(args.url or "http://127.0.0.1:8080")
    )
    results = classify(
        transport,
        images,
        binary=args.format == "binary",
        k=args.top_k,
        labels=load_labels(args.repo),
    )
    _warn_random_weights(args.repo)
    if args.json:
        print(json.dumps([_as_json(result) for result in results], indent=2))
    else:
        _print_table(results, transport.target, args.format)
    return 0


def _warn_random_weights(repo: Path) -> None:
    """Say loudly when the local repository was built with random weights."""
    from tritonship.repository.build import read_manifest

    weights = (read_manifest(repo) or {}).get("weights") or {}
    if weights.get("source") == "random":
        _say(f"NOTICE: {repo} holds RANDOM weights: the labels below are meaningless")


def _read_image(path: Path) -> bytes:
    """An image file's bytes, or a one-line error."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise TritonshipError(f"cannot read {path}: {err.strerror}") from err


def _as_json(result: Classification) -> dict[str, object]:
    """One classification as plain JSON."""
    return {
        "image": result.image,
        "latency_ms": round(result.seconds * 1000, 2),
        "request_bytes": result.request_bytes,
        "top": [
            {"index": p.index, "label": p.label, "probability": p.probability}
            for p in result.predictions
        ],
    }


def _print_table(results: list[Classification], target: str, fmt: str) -> None:
    """A readable table: image, rank, label, probability, latency."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{target} ({fmt})")
    for column in ("image", "#", "label", "probability", "latency"):
        table.add_column(column, justify="right" if column in ("#", "probability") else "left")
    for result in results:
        for rank, prediction in enumerate(result.predictions, 1):
            first = rank == 1
            table.add_row(
                Path(result.image).name if first else "",
                str(rank),
                prediction.label,
                f"{prediction.probability:.4f}",
                f"{result.seconds * 1000:.0f} ms" if first else "",
                end_section=rank == len(result.predictions),
            )
    Console().print(table)


def cmd_package(args: argparse.Namespace) -> int:
    """Validate, then write the deterministic model.tar.gz and its manifest."""
    from tritonship.artifact.package import package_repository

    result = package_repository(
        args.repo,
        args.out,
        image_tag=args.image_tag,
        allow_random_weights=args.allow_random_weights,
        progress=not args.quiet,
    )
    if result.skipped:
        _say(f"left out {len(result.skipped)}: {', '.join(result.skipped)}")
    print(f"{result.archive}: {result.size / (1 << 20):.1f} MiB, sha256 {result.sha256}")
    print(f"manifest: {result.manifest_path}")
    if result.manifest["weights"]["source"] == "random":
        _say("NOTICE: random weights - a test deployment only; its predictions are meaningless")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Print the plan (--dry-run), or upload and deploy it with rollback."""
    from tritonship.cloud.autoscaling import parse_bounds
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.endpoints import Waiting
    from tritonship.cloud.promote import (
        PromoteOptions,
        apply,
        build_plan,
        describe_plan,
        summary_lines,
    )

    bounds = parse_bounds(args.autoscale) if args.autoscale else None
    options = PromoteOptions(
        args.endpoint,
        args.bucket,
        args.role,
        archive=args.archive,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        image_tag=args.image_tag,
        autoscale=bounds,
        autoscale_target=args.autoscale_target,
        kms_key=args.kms_key,
        prefix=args.prefix,
        smoke_test=not args.skip_smoke_test,
        photo=args.photo,
    )
    waiting = Waiting.within(args.timeout, args.poll)
    plan = build_plan(options, resolve_region())
    if args.dry_run:
        print(f"plan for endpoint {plan.endpoint} in {plan.region} (dry run: no AWS call made)")
        for number, line in enumerate(describe_plan(plan, waiting), 1):
            print(f"{number:3d}. {line}")
        return 0
    result = apply(plan, make_clients(plan.region), waiting, progress=not args.quiet, say=_say)
    print("\n".join(summary_lines(result, plan)))
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    """Delete the endpoint and what promote created for it."""
    from tritonship.cloud.aws import make_clients, resolve_region
    from tritonship.cloud.teardown import summary_lines, teardown

    report = teardown(
        make_clients(resolve_region()),
        args.endpoint,
        delete_artifacts=args.delete_artifacts,
        bucket=args.bucket,
        prefix=args.prefix,
        say=_say,
    )
    print("\n".join(summary_lines(report)))
    return 0


def _add_ship_commands(sub: argparse._SubParsersAction) -> None:
    """The package, promote and teardown commands."""
    from tritonship.artifact.package import DEFAULT_ARCHIVE
    from tritonship.cloud.autoscaling import DEFAULT_TARGET
    from tritonship.cloud.promote import DEFAULT_INSTANCE_TYPE, DEFAULT_PREFIX
    from tritonship.sagemaker.images import DEFAULT_TAG

    package = sub.add_parser("package", help="validate, then write dist/model.tar.gz")
    _add_repo(package)
    package.add_argument("--out", type=Path, default=DEFAULT_ARCHIVE)
    package.add_argument("--image-tag", default=DEFAULT_TAG, help="the image it targets")
    package.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="package a random-weight build (a test deployment)",
    )
    package.add_argument("--quiet", action="store_true", help="no progress bar")
    package.set_defaults(func=cmd_package)

    promote = sub.add_parser("promote", help="upload the archive and deploy a SageMaker endpoint")
    promote.add_argument("--endpoint", required=True, metavar="NAME")
    promote.add_argument("--bucket", required=True, help="S3 bucket (must block public access)")
    promote.add_argument("--role", required=True, metavar="ARN", help="the endpoint's role")
    promote.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    promote.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    promote.add_argument("--instance-count", type=int, default=1)
    promote.add_argument("--image-tag", default=DEFAULT_TAG)
    promote.add_argument("--autoscale", metavar="MIN:MAX", help="Application Auto Scaling")
    promote.add_argument(
        "--autoscale-target",
        type=float,
        default=DEFAULT_TARGET,
        help="invocations per instance per minute (default: %(default)s)",
    )
    promote.add_argument("--kms-key", help="SSE-KMS key for the archive (default: SSE-S3)")
    promote.add_argument("--prefix", default=DEFAULT_PREFIX, help="S3 key prefix")
    promote.add_argument("--photo", type=Path, help="smoke-test photo (default: a cat)")
    promote.add_argument("--skip-smoke-test", action="store_true")
    promote.add_argument("--timeout", type=float, default=60.0, help="minutes to wait")
    promote.add_argument("--poll", type=float, default=30.0, help="seconds between polls")
    promote.add_argument("--dry-run", action="store_true", help="print the plan, call nothing")
    promote.add_argument("--quiet", action="store_true", help="no progress bars")
    promote.set_defaults(func=cmd_promote)

    teardown = sub.add_parser("teardown", help="delete an endpoint and what promote created")
    teardown.add_argument("--endpoint", required=True, metavar="NAME")
    teardown.add_argument(
        "--delete-artifacts", action="store_true", help="also delete the archives in S3"
    )
    teardown.add_argument("--bucket", help="with --delete-artifacts: also sweep the prefix")
    teardown.add_argument("--prefix", default=DEFAULT_PREFIX)
    teardown.set_defaults(func=cmd_teardown)


def cmd_bench(args: argparse.Namespace) -> int:
    """Load the endpoint level by level, then measure the in-process ceiling; write a report."""
    from tritonship.bench import FORMATS, BenchConfig, parse_levels, run_bench, write_report

    config = BenchConfig(
        url=args.url or "http://127.0.0.1:8080",
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
    result = run_bench(config, say=_say)
    for path in write_report(result, args.out):
        print(f"wrote {path}")
    for line in result.targets:
        print(line)
    return 0


def _add_repo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        type=Path,
        default=DEFAULT_REPOSITORY,
        help="model repository (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="tritonship",
        description="Build, validate, serve and ship a Triton DALI + Inception V3 ensemble.",
    )
    parser.add_argument("--version", action="version", version=f"tritonship {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = sub.add_parser("build", help="build the DALI pipeline, Inception graph and labels")
    _add_repo(build)
    build.add_argument(
        "--weights",
        choices=["official", "random", "auto"],
        default="official",
        help="auto: official where the network allows, else random",
    )
    build.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_build)

    validate = sub.add_parser("validate", help="check every config.pbtxt and the ensemble")
    _add_repo(validate)
    validate.add_argument("--image", metavar="TAG", help="also check the image has each backend")
    validate.set_defaults(func=cmd_validate)

    serve = sub.add_parser("serve", help="serve the repository locally as SageMaker does")
    _add_repo(serve)
    serve.add_argument("--engine", choices=["native", "docker"], default="native")
    serve.add_argument(
        "--archive",
        type=Path,
        metavar="MODEL_TAR_GZ",
        help="serve a packaged model.tar.gz (unpacked safely) instead of --repo",
    )
    serve.add_argument("--port", type=int, default=8080, help="container API (SageMaker: 8080)")
    serve.add_argument(
        "--runtime-port", type=int, default=8081, help="local SageMaker runtime API (0: none)"
    )
    serve.add_argument("--detach", action="store_true", help="leave the server running")
    serve.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for /ping")
    serve.add_argument(
        "--profile",
        choices=["gpu", "cpu"],
        default="gpu",
        help="docker engine: with or without a GPU reservation",
    )
    serve.add_argument(
        "--image",
        help="docker engine: image URI (default: SageMaker's, for AWS_REGION, or TRITONSHIP_IMAGE)",
    )
    serve.set_defaults(func=cmd_serve)

    invoke = sub.add_parser("invoke", help="classify images through the endpoint")
    invoke.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    where = invoke.add_mutually_exclusive_group()
    where.add_argument("--url", help="container API base URL (default http://127.0.0.1:8080)")
    where.add_argument(
        "--endpoint",
        metavar="NAME",
        help="SageMaker endpoint (boto3; "
        "AWS_ENDPOINT_URL=http://127.0.0.1:8081 reaches the local runtime)",
    )
    invoke.add_argument("--format", choices=["binary", "json"], default="binary")
    invoke.add_argument("--top-k", type=int, default=5)
    invoke.add_argument("--json", action="store_true", help="machine-readable output")
    _add_repo(invoke)
    invoke.set_defaults(func=cmd_invoke)

    bench = sub.add_parser("bench", help="closed-loop load, in-process ceiling, report")
    target = bench.add_mutually_exclusive_group()
    target.add_argument("--url", help="container API base URL (default http://127.0.0.1:8080)")
    target.add_argument(
        "--endpoint",
        metavar="NAME",
        help="SageMaker endpoint (boto3 in a "
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
    bench.add_argument(
        "--out",
        type=Path,
        default=Path(".tritonship/bench"),
        help="report folder (default: %(default)s)",
    )
    bench.add_argument("--image", type=Path, help="image to send (default: a 640x480 photo)")
    bench.add_argument("--metrics-url", help="Triton metrics, for the batch sizes it reached")
    bench.add_argument("--no-ceiling", action="store_true", help="skip the in-process ceiling")
    bench.add_argument("--quiet", action="store_true", help="no live progress display")
    _add_repo(bench)
    bench.set_defaults(func=cmd_bench)

    stop = sub.add_parser("stop", help="stop a server started with serve --detach")
    stop.add_argument("--engine", choices=["native", "docker"], default="native")
    stop.set_defaults(func=cmd_stop)
    _add_ship_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tritonship`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except TritonshipError as err:
        if args.debug:
            raise
        print(f"tritonship: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("tritonship: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
