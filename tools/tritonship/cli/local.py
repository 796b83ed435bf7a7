"""``tritonship serve``, ``stop`` and ``invoke``: the endpoint on this machine (and its clients)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tritonship.cli.common import (
    LOCAL_URL,
    Subparsers,
    add_command,
    add_json,
    add_repo,
    add_sagemaker_env,
    add_target,
    env_sources,
    from_args,
    say,
)
from tritonship.errors import TritonshipError, UsageError

if TYPE_CHECKING:
    from tritonship.sagemaker.client import Classification

ENGINES = ["native", "docker"]


def cmd_serve(args: argparse.Namespace) -> int:
    """Start an engine and the local runtime, wait for /ping, stay in the foreground."""
    from rich.console import Console

    from tritonship.local.endpoint import LocalEndpoint, ServeOptions

    options = from_args(ServeOptions, args, env_sources=env_sources(args))
    endpoint = LocalEndpoint.open(options, status=Console(stderr=True).status, say=say)
    print(f"ready in {endpoint.ready_seconds:.1f} s")
    for line in endpoint.describe():
        print(f"  {line}")
    if options.detach:
        print(f"running in the background; stop it with: tritonship stop --engine {args.engine}")
        return 0
    print("press Ctrl-C to stop")
    return endpoint.serve_forever(say)


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the server a detached ``serve`` left running."""
    from tritonship.local.endpoint import stop_detached

    for line in stop_detached(args.engine):
        print(line)
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    """Classify images through the container API (--url) or InvokeEndpoint (--endpoint)."""
    import json

    from tritonship.repository.labels import load_labels
    from tritonship.repository.limits import request_batch_limit
    from tritonship.sagemaker.client import classify

    images = [(str(path), _read_image(path)) for path in args.images]
    transport = _transport(args)
    binary = args.format == "binary"
    labels = load_labels(args.repo)
    max_batch, _ = request_batch_limit(args.repo)
    results = classify(
        transport,
        images,
        binary=binary,
        k=args.top_k,
        labels=labels,
        max_batch=max_batch,
        raw=args.format == "raw",
    )
    _warn_random_weights(args.repo)
    if args.json:
        print(json.dumps([_as_json(result) for result in results], indent=2))
    else:
        _print_table(results, transport.target, args.format)
    return 0


def _transport(args: argparse.Namespace):  # noqa: ANN202 - a transport, imported lazily
    """InvokeEndpoint for --endpoint (to one variant with --target-variant), else the URL."""
    from tritonship.sagemaker.client import HttpTransport, SageMakerTransport

    if args.endpoint:
        return SageMakerTransport(args.endpoint, target_variant=args.target_variant)
    if args.target_variant:
        raise UsageError("--target-variant needs --endpoint", hint="add --endpoint NAME")
    return HttpTransport(args.url or LOCAL_URL)


def _warn_random_weights(repo: Path) -> None:
    """Say loudly when the local repository was built with random weights."""
    from tritonship.repository.build import read_manifest

    weights = (read_manifest(repo) or {}).get("weights") or {}
    if weights.get("source") == "random":
        say(f"NOTICE: {repo} holds RANDOM weights: the labels below are meaningless")


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


def add_serve(sub: Subparsers) -> None:
    """``serve [--engine E] [--archive F] [--port N] [--runtime-port N] [--detach] ...``."""
    serve = add_command(sub, "serve", cmd_serve, "serve the repository locally as SageMaker does")
    add_repo(serve)
    serve.add_argument("--engine", choices=ENGINES, default="native")
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
    serve.add_argument(
        "--endpoint-name",
        default="tritonship-local",
        metavar="NAME",
        help="the EndpointName the local runtime answers to (default: tritonship-local)",
    )
    serve.add_argument("--detach", action="store_true", help="leave the server running")
    serve.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for /ping")
    add_sagemaker_env(serve)
    serve.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="multi-model: the folder target models are unpacked to, seen by the server as "
        "/opt/ml/models (default: models/ in the run folder)",
    )
    serve.add_argument(
        "--model-data",
        metavar="DIR|s3://BUCKET/PREFIX/",
        help="multi-model: the model data prefix each TargetModel is an archive under "
        "(default: dist/models/, where package --multi-model writes)",
    )
    _add_docker_options(serve)


def _add_docker_options(serve: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--image``: what the docker engine runs."""
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


def add_stop(sub: Subparsers) -> None:
    """``stop [--engine native|docker]``."""
    stop = add_command(sub, "stop", cmd_stop, "stop a server started with serve --detach")
    stop.add_argument("--engine", choices=ENGINES, default="native")


def add_invoke(sub: Subparsers) -> None:
    """``invoke IMAGE... [--url URL | --endpoint NAME] [--format F] [--top-k K] [--json]``."""
    invoke = add_command(sub, "invoke", cmd_invoke, "classify images through the endpoint")
    invoke.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    add_target(
        invoke,
        "SageMaker endpoint (boto3; "
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081 reaches the local runtime)",
    )
    invoke.add_argument(
        "--format",
        choices=["binary", "json", "raw"],
        default="binary",
        help="binary+json (default), plain JSON, or raw: each image alone as the whole body "
        "(json-header-size=0; one image per request)",
    )
    invoke.add_argument(
        "--target-variant",
        metavar="VARIANT",
        help="with --endpoint: send every request to this production variant",
    )
    invoke.add_argument("--top-k", type=int, default=5)
    add_json(invoke)
    add_repo(invoke)


def register(sub: Subparsers) -> None:
    """The local endpoint's commands."""
    add_serve(sub)
    add_stop(sub)
    add_invoke(sub)
