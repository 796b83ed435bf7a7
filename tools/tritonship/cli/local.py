"""``tritonship serve`` and ``stop``: the endpoint on this machine (``invoke``: cli/invoke.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonship.cli.common import (
    Subparsers,
    add_command,
    add_repo,
    add_sagemaker_env,
    env_sources,
    from_args,
    say,
)
from tritonship.cli.traffic_loop import add_serve_traffic, traffic_options

ENGINES = ["native", "docker"]


def cmd_serve(args: argparse.Namespace) -> int:
    """Start an engine and the local runtime, wait for /ping, stay in the foreground."""
    from rich.console import Console

    from tritonship.local.endpoint import LocalEndpoint, ServeOptions

    options = from_args(
        ServeOptions, args, env_sources=env_sources(args), traffic=traffic_options(args)
    )
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


def add_serve(sub: Subparsers) -> None:
    """``serve [--engine E] [--archive F] [--port N] [--runtime-port N] [--detach] ...``."""
    serve = add_command(sub, "serve", cmd_serve, "serve the repository locally as SageMaker does")
    add_repo(serve)
    serve.add_argument(
        "--engine",
        choices=ENGINES,
        default="native",
        help="native: this machine's tritonserver; docker: the SageMaker image under Docker "
        "Compose (default: %(default)s)",
    )
    serve.add_argument(
        "--archive",
        type=Path,
        metavar="MODEL_TAR_GZ",
        help="serve a packaged model.tar.gz (unpacked safely) instead of --repo",
    )
    serve.add_argument(
        "--port", type=int, default=8080, help="container API port (default: %(default)s)"
    )
    serve.add_argument(
        "--runtime-port",
        type=int,
        default=8081,
        help="local SageMaker runtime API, 0 for none (default: %(default)s)",
    )
    serve.add_argument(
        "--endpoint-name",
        default="tritonship-local",
        metavar="NAME",
        help="the EndpointName the local runtime answers to (default: tritonship-local)",
    )
    serve.add_argument("--detach", action="store_true", help="leave the server running")
    serve.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for /ping; a first docker start that unpacks a large image "
        "may need more (default: %(default)s)",
    )
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
    serve.add_argument(
        "--bind-all",
        action="store_true",
        help="native engine: run tritonserver without its private network namespace, "
        "listening on EVERY interface, unauthenticated (also TRITONSHIP_NATIVE_CONFINE=0). "
        "Without it, serve refuses to start where the namespace is not permitted",
    )
    _add_async_options(serve)
    add_serve_traffic(serve)
    _add_docker_options(serve)


def _add_async_options(serve: argparse.ArgumentParser) -> None:
    """An asynchronous endpoint: InvokeEndpointAsync through the local runtime."""
    serve.add_argument(
        "--async-output",
        metavar="s3://BUCKET/PREFIX/",
        help="an asynchronous endpoint: the local runtime takes InvokeEndpointAsync and writes "
        "each answer there (S3OutputPath; AWS_ENDPOINT_URL reaches a local S3 such as moto)",
    )
    serve.add_argument(
        "--async-failure",
        metavar="s3://BUCKET/PREFIX/",
        help="asynchronous: where failures go (S3FailurePath; default: failures/ under the "
        "output path)",
    )
    serve.add_argument(
        "--async-max-concurrent",
        type=int,
        default=1,
        metavar="N",
        help="asynchronous: requests processed at once (MaxConcurrentInvocationsPerInstance; "
        "default: %(default)s)",
    )


def _add_docker_options(serve: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--image``: what the docker engine runs."""
    serve.add_argument(
        "--profile",
        choices=["gpu", "cpu"],
        default="gpu",
        help="docker engine: with (gpu) or without (cpu) a GPU reservation (default: %(default)s)",
    )
    serve.add_argument(
        "--image",
        metavar="URI",
        help="docker engine: the image to run, a full URI (registry/name:tag), not a tag "
        "(default: TRITONSHIP_IMAGE, else SageMaker's 24.09-py3 image for AWS_REGION)",
    )


def add_stop(sub: Subparsers) -> None:
    """``stop [--engine native|docker]``."""
    stop = add_command(sub, "stop", cmd_stop, "stop a server started with serve --detach")
    stop.add_argument(
        "--engine", choices=ENGINES, default="native", help="which engine (default: %(default)s)"
    )


def register(sub: Subparsers) -> None:
    """The local endpoint's commands."""
    add_serve(sub)
    add_stop(sub)
