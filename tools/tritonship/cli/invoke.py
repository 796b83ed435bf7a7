"""``tritonship invoke``: send a request to the endpoint and show its answer.

One call sends one of three things:

- ``IMAGE...``: photos for our ensemble, answered with labels and top-k;
- ``--input NAME=FILE.npy`` (repeatable): any model's tensors, answered with the decoded
  outputs (``--output NAME`` picks them; ``--save-outputs DIR`` keeps them as ``.npy``);
- ``--body FILE``: a prepared request body, sent as is with ``--content-type``; the answer
  is decoded when it is an inference response, else shown (or saved) as it came.

``--url`` posts to the container's ``/invocations``; ``--endpoint`` calls InvokeEndpoint,
which alone can name a multi-model endpoint's ``--target-model``. ``--endpoint NAME --async
--async-input s3://BUCKET/PREFIX/`` goes through an asynchronous endpoint instead: each
request is uploaded there, InvokeEndpointAsync queues it, and the answer is read from the
endpoint's S3 output path once it lands (progress on a terminal); requests may then reach
1 GB, so a whole batch of photos goes as one request.
"""

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
    add_target,
    add_target_model,
    require_endpoint,
    say,
)
from tritonship.errors import TritonshipError, UsageError

if TYPE_CHECKING:
    from tritonship.sagemaker.asynchronous import AsyncTransport
    from tritonship.sagemaker.client import Classification, HttpTransport, SageMakerTransport
    from tritonship.sagemaker.tensors import InferenceAnswer, OtherAnswer
    from tritonship.sagemaker.wire import EncodedRequest

SOURCES = "IMAGE files, --input NAME=FILE.npy or --body FILE"
#: Options that apply to some sources only: option -> (attribute, the sources it fits).
ONLY_WITH = {
    "--output": ("outputs", ("--input",)),
    "--content-type": ("content_type", ("--body",)),
    "--save-outputs": ("save_outputs", ("--input", "--body")),
}
#: What to check when a model refuses a request, per source.
REFUSED_HINTS = {
    "--input": "check the input names, datatypes and shapes against the model's config.pbtxt",
    "--body": "check the body against the model's inputs, and --content-type: "
    "application/json unless given",
}


def cmd_invoke(args: argparse.Namespace) -> int:
    """Send images, tensors or a prepared body; print the answer."""
    source = _source(args)
    transport = _transport(args)
    if source == "IMAGE":
        return _invoke_images(args, transport)
    request = _request(args, source)
    return _invoke_request(args, transport, request, source)


def _source(args: argparse.Namespace) -> str:
    """Which of IMAGE, --input, --body the call sends (exactly one), its options checked."""
    given = [
        name
        for name, value in (("IMAGE", args.images), ("--input", args.inputs), ("--body", args.body))
        if value
    ]
    if not given:
        raise UsageError("nothing to send", hint=f"give {SOURCES}")
    if len(given) > 1:
        raise UsageError(
            f"{' and '.join(given)} cannot be combined", hint=f"send one of {SOURCES} per call"
        )
    _check_options(given[0], args)
    return given[0]


def _check_options(source: str, args: argparse.Namespace) -> None:
    """Refuse options that do not apply to ``source``, with what they go with."""
    for option, (attribute, sources) in ONLY_WITH.items():
        if getattr(args, attribute) and source not in sources:
            raise UsageError(
                f"{option} does not apply to {source}",
                hint=f"{option} goes with {' or '.join(sources)}",
            )
    if args.format == "raw" and source != "IMAGE":
        raise UsageError(
            "--format raw sends one image as the whole body",
            hint="for another raw body: --body FILE --content-type "
            "'application/vnd.sagemaker-triton.binary+json;json-header-size=0'",
        )
    if args.format == "json" and source == "--body":
        raise UsageError(
            "--format does not apply to --body: the body is sent as is",
            hint="give its type with --content-type",
        )


def _transport(args: argparse.Namespace) -> HttpTransport | SageMakerTransport | AsyncTransport:
    """InvokeEndpoint for --endpoint (a variant, a target model), else the container URL."""
    from tritonship.sagemaker.client import HttpTransport, SageMakerTransport

    require_endpoint(args)
    if args.asynchronous:
        return _async_transport(args)
    if args.async_input:
        raise UsageError("--async-input is where --async uploads its requests", hint="add --async")
    if args.endpoint:
        return SageMakerTransport(
            args.endpoint, target_variant=args.target_variant, target_model=args.target_model
        )
    return HttpTransport(args.url or LOCAL_URL)


def _async_transport(args: argparse.Namespace) -> AsyncTransport:
    """InvokeEndpointAsync through S3 (no variant or target model: the API has neither)."""
    from tritonship.sagemaker.asynchronous import AsyncTransport

    if not args.endpoint:
        raise UsageError(
            "--async needs --endpoint", hint="--endpoint NAME --async --async-input S3"
        )
    if args.target_model or args.target_variant:
        raise UsageError(
            "--async cannot name a target model or variant: InvokeEndpointAsync takes neither",
            hint="leave out --target-model and --target-variant",
        )
    if not args.async_input:
        raise UsageError(
            "--async needs --async-input, the S3 prefix requests are uploaded to",
            hint="e.g. --async-input s3://my-bucket/async-inputs/",
        )
    return AsyncTransport(
        args.endpoint,
        args.async_input,
        invocation_timeout=args.invocation_timeout,
        poll=args.poll,
        progress=True,
        say=say,
    )


# --- any model ------------------------------------------------------------------------------


def _request(args: argparse.Namespace, source: str) -> EncodedRequest:
    """The encoded tensors (--input) or the prepared body (--body), under SageMaker's limit."""
    from tritonship.sagemaker.asynchronous import MAX_ASYNC_PAYLOAD_BYTES
    from tritonship.sagemaker.tensors import check_payload, encode_tensors, read_body, read_inputs

    if source == "--body":
        request = read_body(args.body, args.content_type)
    else:
        inputs = read_inputs(args.inputs)
        request = encode_tensors(inputs, args.outputs, binary=args.format != "json")
    if args.asynchronous:
        return check_payload(request, MAX_ASYNC_PAYLOAD_BYTES, "InvokeEndpointAsync")
    return check_payload(request)


def _invoke_request(
    args: argparse.Namespace,
    transport: HttpTransport | SageMakerTransport | AsyncTransport,
    request: EncodedRequest,
    source: str,
) -> int:
    """Send one request; show the decoded outputs, or the answer as it came."""
    from tritonship.sagemaker.client import InvocationError
    from tritonship.sagemaker.tensors import InferenceAnswer, decode_answer
    from tritonship.sagemaker.wire import ResponseError

    try:
        answer = transport.send(request)
    except InvocationError as err:
        if err.hint is not None or err.status is None:
            raise
        raise InvocationError(err.what, err.status, hint=REFUSED_HINTS[source]) from err
    decoded = decode_answer(answer.body, answer.content_type)
    if isinstance(decoded, InferenceAnswer):
        _show_tensors(args, transport.target, decoded, answer.seconds)
    elif source == "--input":
        raise ResponseError(f"{transport.target} answered {decoded.content_type}, not tensors")
    else:
        _show_other(args, decoded)
    return 0


def _show_tensors(
    args: argparse.Namespace, target: str, answer: InferenceAnswer, seconds: float
) -> None:
    """Save the outputs (--save-outputs), then print them as JSON (--json) or a table."""
    import json

    from tritonship.sagemaker.tensors import answer_json, save_outputs

    if args.save_outputs:
        for path in save_outputs(answer, args.save_outputs):
            say(f"wrote {path}")
    if args.json:
        print(json.dumps({**answer_json(answer), "latency_ms": round(seconds * 1000, 2)}, indent=2))
    else:
        _print_tensors(answer, target, seconds)


def _print_tensors(answer: InferenceAnswer, target: str, seconds: float) -> None:
    """A readable table: output, datatype, shape and (a summary of) the values."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    version = f" version {answer.model_version}" if answer.model_version else ""
    title = f"{target}: model {answer.model_name}{version} ({seconds * 1000:.0f} ms)"
    table = Table(title=title)
    for column in ("output", "datatype", "shape", "values"):
        table.add_column(column)
    for output in answer.outputs:
        # One line per row, at most 3 values either side of '...': a glance, not the data
        # (--json or --save-outputs give every value).
        values = np.array2string(output.array, threshold=20, edgeitems=3, max_line_width=10**6)
        shape = "[" + ", ".join(str(dim) for dim in output.shape) + "]"
        table.add_row(output.name, output.datatype, shape, values)
    Console().print(table)


def _show_other(args: argparse.Namespace, answer: OtherAnswer) -> None:
    """An answer that is not an inference response: JSON or text printed, bytes saved."""
    import json

    from tritonship.sagemaker.tensors import save_other

    if args.save_outputs:
        say(f"wrote {save_other(answer, args.save_outputs)}")
    if answer.is_json:
        print(json.dumps(answer.value, indent=2))
        return
    try:
        print(answer.body.decode("utf-8"))
    except UnicodeDecodeError:
        if not args.save_outputs:
            say(
                f"the answer is {len(answer.body)} bytes of {answer.content_type}, not text: "
                "keep it with --save-outputs DIR"
            )


# --- our ensemble: images -------------------------------------------------------------------


def _invoke_images(
    args: argparse.Namespace, transport: HttpTransport | SageMakerTransport | AsyncTransport
) -> int:
    """Classify images through the container API (--url) or InvokeEndpoint (--endpoint)."""
    import json

    from tritonship.repository.config import load_repository
    from tritonship.repository.labels import load_labels
    from tritonship.repository.limits import request_batch_limit
    from tritonship.sagemaker.client import classify

    images = [(str(path), _read_image(path)) for path in args.images]
    repository = load_repository(args.repo)
    labels = load_labels(repository)
    max_batch, _ = request_batch_limit(repository)
    results = classify(
        transport,
        images,
        binary=args.format == "binary",
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


def _warn_random_weights(repo: Path) -> None:
    """Say loudly when the local repository was built with random weights."""
    from tritonship.repository.manifest import read_manifest

    build = read_manifest(repo)
    if build is not None and build.weights.source == "random":
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


# --- arguments ------------------------------------------------------------------------------


def add_invoke(sub: Subparsers) -> None:
    """``invoke (IMAGE... | --input NAME=FILE.npy... | --body FILE) [--url | --endpoint] ...``."""
    invoke = add_command(
        sub, "invoke", cmd_invoke, "send images, tensors or a request body to the endpoint"
    )
    invoke.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="photos for our ensemble: answered with labels and top-k",
    )
    add_target(
        invoke,
        "SageMaker endpoint (boto3; "
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081 reaches the local runtime)",
    )
    add_target_model(invoke)
    invoke.add_argument(
        "--target-variant",
        metavar="VARIANT",
        help="with --endpoint: send every request to this production variant",
    )
    invoke.add_argument(
        "--format",
        choices=["binary", "json", "raw"],
        default="binary",
        help="binary+json (default), plain JSON, or raw: each image alone as the whole body "
        "(json-header-size=0; one image per request). --input: binary or json; the outputs "
        "come back as JSON only when named with --output",
    )
    invoke.add_argument(
        "--top-k", type=int, default=5, help="images: classes per image (default: %(default)s)"
    )
    _add_any_model(invoke)
    _add_async(invoke)
    add_json(invoke)
    add_repo(invoke)


def _add_async(invoke: argparse.ArgumentParser) -> None:
    """The options of an asynchronous endpoint."""
    from tritonship.sagemaker.asynchronous import DEFAULT_INVOCATION_TIMEOUT

    group = invoke.add_argument_group("asynchronous endpoint")
    group.add_argument(
        "--async",
        dest="asynchronous",
        action="store_true",
        help="with --endpoint: upload each request to --async-input, call InvokeEndpointAsync "
        "and wait for the answer in S3 (requests up to 1 GB: a batch goes as one request)",
    )
    group.add_argument(
        "--async-input",
        metavar="s3://BUCKET/PREFIX/",
        help="--async: where the requests are uploaded",
    )
    group.add_argument(
        "--invocation-timeout",
        type=int,
        default=DEFAULT_INVOCATION_TIMEOUT,
        metavar="SECONDS",
        help="--async: how long the endpoint may process a request (1-3600; %(default)s)",
    )
    group.add_argument(
        "--poll",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="--async: seconds between looks at the output path (%(default)s)",
    )


def _add_any_model(invoke: argparse.ArgumentParser) -> None:
    """The options for any model: tensors from .npy files, or a prepared body."""
    group = invoke.add_argument_group("any model")
    group.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="an input tensor from a .npy file; its dtype gives the datatype (repeatable)",
    )
    group.add_argument(
        "--output",
        dest="outputs",
        action="append",
        default=[],
        metavar="NAME",
        help="with --input: an output to return (repeatable; default: every output)",
    )
    group.add_argument("--body", type=Path, metavar="FILE", help="a request body, sent as is")
    group.add_argument(
        "--content-type",
        metavar="TYPE",
        help="with --body: its Content-Type (default: application/json; binary tensors: "
        "'application/vnd.sagemaker-triton.binary+json;json-header-size=N')",
    )
    group.add_argument(
        "--save-outputs",
        type=Path,
        metavar="DIR",
        help="write each output as DIR/NAME.npy (an answer that is not tensors: "
        "DIR/response.json or .bin)",
    )


def register(sub: Subparsers) -> None:
    """The invoke command."""
    add_invoke(sub)
