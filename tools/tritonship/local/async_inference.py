"""InvokeEndpointAsync for the local runtime: the input from S3, the container, the answer to S3.

What SageMaker does, and what this module imitates (botocore's sagemaker-runtime 2017-05-13
service model, operation ``InvokeEndpointAsync``; API reference "InvokeEndpointAsync";
AWS guides "Asynchronous inference" and "Check prediction results"):

- ``POST /endpoints/{EndpointName}/async-invocations`` is answered at once, HTTP 202, with
  ``{"InferenceId": ...}`` and the headers ``X-Amzn-SageMaker-OutputLocation`` and
  ``X-Amzn-SageMaker-FailureLocation``; the request is queued and processed later.
- The request names its input with ``X-Amzn-SageMaker-InputLocation`` (pattern
  ``^(https|s3)://([^/]+)/?(.*)$``, 1-1024 characters), or carries it inline as the body
  (up to 128,000 bytes); "Body and InputLocation are mutually exclusive. Provide exactly one
  of them." Its other headers: ``-Content-Type`` and ``-Accept`` (passed to the container as
  Content-Type and Accept), ``-Custom-Attributes``, ``-Inference-Id`` (1-64 printable
  characters, not starting with a space; generated when absent), ``-S3OutputPathExtension``
  (appended to the output path), ``-Filename`` (the output's name; default: from the
  inference id), ``-RequestTTLSeconds`` (60-21600, default 21600: how long a request may
  wait in the queue) and ``-InvocationTimeoutSeconds`` (1-3600, default 900: how long it
  may be processed).
- Payloads up to 1 GB, up to an hour of processing (guide "Asynchronous inference").
- The answer goes to ``<S3OutputPath>/<InferenceId>.out``, a failure to
  ``<S3FailurePath>/<InferenceId>-error.out`` (AWS does not document the names; these are
  the names public reports show, e.g. a failure object ``.../async-endpoint-failures/
  <endpoint>/<uuid>-error.out``). The failure object holds the container's answer (or what
  went wrong before it could answer); its exact format is not documented.
- At most ``MaxConcurrentInvocationsPerInstance`` requests run at once (one instance here);
  the rest wait in the queue.
- A real-time InvokeEndpoint on an asynchronous endpoint is a ValidationError (public report
  strands-agents/sdk-python#1969: "ValidationError ... when calling the InvokeEndpoint
  operation: Endpoint XXXX does not s..."; the rest of that message is ours).

Not imitated: the SNS success and error notifications (``NotificationConfig``), KMS
encryption of the output, an ``https://`` InputLocation, and the instance count: autoscaling
to zero only exists on SageMaker.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tritonship.sagemaker.asynchronous import (
    DEFAULT_INVOCATION_TIMEOUT,
    DEFAULT_REQUEST_TTL,
    MAX_ASYNC_PAYLOAD_BYTES,
    MAX_INLINE_BODY_BYTES,
    MAX_INVOCATION_TIMEOUT,
    MIN_REQUEST_TTL,
    default_failure_path,
    join_s3,
    split_s3,
)

if TYPE_CHECKING:
    from tritonship.local.runtime import Forwarder, Reply, RuntimeConfig, RuntimeHandler

#: The operation's route (botocore: ``/endpoints/{EndpointName}/async-invocations``).
ASYNC_PATH = re.compile(r"^/endpoints/(?P<name>[^/?]+)/async-invocations/?(?:\?.*)?$")
#: Request headers (the ``locationName`` of each member of InvokeEndpointAsyncInput).
CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
ACCEPT = "X-Amzn-SageMaker-Accept"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
OUTPUT_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"
FILENAME = "X-Amzn-SageMaker-Filename"
REQUEST_TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
INVOCATION_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
#: Response headers (InvokeEndpointAsyncOutput).
OUTPUT_LOCATION = "X-Amzn-SageMaker-OutputLocation"
FAILURE_LOCATION = "X-Amzn-SageMaker-FailureLocation"
#: InputLocationHeader's pattern (botocore).
_INPUT_LOCATION = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
#: InferenceId: 1-64 characters, printable, the first not a space (botocore's pattern
#: ``\A\S[\p{Print}]*\z``).
_INFERENCE_ID = re.compile(r"^\S[ -~]{0,63}$")

log = logging.getLogger("tritonship.local.runtime")


@dataclass(frozen=True)
class AsyncConfig:
    """The endpoint config's AsyncInferenceConfig, as the local runtime uses it."""

    output_path: str  # OutputConfig.S3OutputPath
    failure_path: str  # OutputConfig.S3FailurePath
    max_concurrent: int = 1  # ClientConfig.MaxConcurrentInvocationsPerInstance


@dataclass(frozen=True)
class Job:
    """One queued request."""

    inference_id: str
    body: bytes | None  # inline, else read from input_location
    input_location: str | None
    headers: dict[str, str]
    output_location: str
    failure_location: str
    ttl: int
    timeout: int
    queued: float


class Rejected(Exception):
    """A request SageMaker refuses at once: ValidationError (400) with ``message``."""


def _int_header(headers: Any, name: str, default: int, low: int, high: int) -> int:
    """An integer header within ``low``-``high`` (botocore's min and max)."""
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Rejected(f"{name} must be an integer, not {raw!r}.") from None
    if not low <= value <= high:
        raise Rejected(f"{name} must be between {low} and {high}, not {value}.")
    return value


def _inference_id(headers: Any) -> str:
    """The caller's InferenceId, checked, or a new one (as SageMaker generates one)."""
    given = headers.get(INFERENCE_ID)
    if given is None:
        return str(uuid.uuid4())
    if not _INFERENCE_ID.match(given):
        raise Rejected(f"InferenceId {given!r} must be 1-64 printable characters.")
    return given


def _input_location(headers: Any, length: int) -> str | None:
    """The InputLocation, or None for an inline body; exactly one of them, within limits."""
    location = headers.get(INPUT_LOCATION)
    if (location is None) == (length == 0):
        raise Rejected(
            "Body and InputLocation are mutually exclusive. Provide exactly one of them."
        )
    if location is None:
        if length > MAX_INLINE_BODY_BYTES:
            raise Rejected(f"The inline Body is {length} bytes, over {MAX_INLINE_BODY_BYTES}.")
        return None
    if not _INPUT_LOCATION.match(location) or len(location) > 1024:
        raise Rejected(f"InputLocation {location!r} is not an s3:// or https:// URI.")
    if not location.startswith("s3://"):
        raise Rejected(f"InputLocation {location!r}: this local runtime reads s3:// URIs only.")
    return location


class AsyncInvocations:
    """The queue of one asynchronous endpoint and the workers that empty it."""

    def __init__(self, config: AsyncConfig, forwarder: Forwarder) -> None:
        self.config, self.forwarder = config, forwarder
        self.pool = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="async")
        self._lock = threading.Lock()
        self._s3: Any = None

    def s3(self) -> Any:
        """One S3 client, made on first use (reads and writes as SageMaker's role would)."""
        with self._lock:
            if self._s3 is None:
                import boto3

                from tritonship.sagemaker.settings import aws_region

                session = boto3.session.Session()
                self._s3 = session.client("s3", region_name=aws_region() or "us-east-1")
            return self._s3

    def accept(self, headers: Any, body: bytes, input_location: str | None) -> Job:
        """Queue a checked request; the job, with where its answer will be."""
        inference_id = _inference_id(headers)
        name = headers.get(FILENAME) or f"{inference_id}.out"
        output = self.config.output_path
        if extension := headers.get(OUTPUT_EXTENSION):
            output = join_s3(output, extension)
        job = Job(
            inference_id,
            None if input_location else body,
            input_location,
            _container_headers(headers, inference_id),
            join_s3(output, name),
            join_s3(self.config.failure_path, f"{inference_id}-error.out"),
            _int_header(headers, REQUEST_TTL, DEFAULT_REQUEST_TTL, MIN_REQUEST_TTL, 21600),
            _int_header(
                headers, INVOCATION_TIMEOUT, DEFAULT_INVOCATION_TIMEOUT, 1, MAX_INVOCATION_TIMEOUT
            ),
            time.monotonic(),
        )
        self.pool.submit(self.process, job)
        log.info("async %s queued (input %s)", inference_id, input_location or "inline")
        return job

    def process(self, job: Job) -> None:
        """Run one job: expire it, read its input, invoke, write the answer or the failure."""
        try:
            waited = time.monotonic() - job.queued
            if waited > job.ttl:
                self._fail(
                    job,
                    f"the request expired: it waited {waited:.0f} s in the queue, "
                    f"over its RequestTTLSeconds of {job.ttl}",
                    "text/plain",
                )
                return
            body = job.body if job.body is not None else self._read(job)
            if body is None:
                return
            self._invoke(job, body)
        except Exception as err:  # noqa: BLE001 - a worker must record every failure
            log.exception("async %s failed", job.inference_id)
            self._fail(job, f"{type(err).__name__}: {err}", "text/plain")

    def _read(self, job: Job) -> bytes | None:
        """The input object (None, with the failure written, when it cannot be used)."""
        from botocore.exceptions import BotoCoreError, ClientError

        assert job.input_location is not None
        bucket, key = split_s3(job.input_location)
        try:
            size = int(self.s3().head_object(Bucket=bucket, Key=key)["ContentLength"])
            if size > MAX_ASYNC_PAYLOAD_BYTES:
                self._fail(
                    job,
                    f"the input is {size} bytes, over the {MAX_ASYNC_PAYLOAD_BYTES}-byte "
                    "limit of asynchronous inference",
                    "text/plain",
                )
                return None
            return self.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as err:
            self._fail(job, f"cannot read the input {job.input_location}: {err}", "text/plain")
            return None

    def _invoke(self, job: Job, body: bytes) -> None:
        """POST /invocations within the job's timeout; write what came back."""
        started = time.monotonic()
        answer = self.forwarder.send("/invocations", body, job.headers, started + job.timeout)
        status, headers, data = answer.status, answer.headers, answer.body
        content_type = headers.get("Content-Type") or "application/octet-stream"
        if status >= 300:
            self._fail(job, data, content_type)
            return
        bucket, key = split_s3(job.output_location)
        self.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        log.info(
            "async %s: %d bytes to %s in %.1f s",
            job.inference_id,
            len(data),
            job.output_location,
            time.monotonic() - started,
        )

    def _fail(self, job: Job, what: bytes | str, content_type: str) -> None:
        """Write the failure object (the container's answer, or what went wrong)."""
        data = what.encode() if isinstance(what, str) else what
        bucket, key = split_s3(job.failure_location)
        try:
            self.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except Exception:  # noqa: BLE001 - nowhere left to report it but the log
            log.exception("async %s: cannot write %s", job.inference_id, job.failure_location)
            return
        log.info("async %s failed: %s", job.inference_id, job.failure_location)

    def close(self) -> None:
        """Stop taking jobs; drop those still queued."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def _container_headers(headers: Any, inference_id: str) -> dict[str, str]:
    """What the container sees: Content-Type and Accept from the X-Amzn-SageMaker- headers."""
    found = {
        "Content-Type": headers.get(CONTENT_TYPE),
        "Accept": headers.get(ACCEPT),
        CUSTOM_ATTRIBUTES: headers.get(CUSTOM_ATTRIBUTES),
        INFERENCE_ID: inference_id,
    }
    return {key: value for key, value in found.items() if value is not None}


# --- the hooks tritonship.local.runtime calls --------------------------------------------------


def is_async_path(path: str) -> bool:
    """Whether ``path`` is InvokeEndpointAsync's route."""
    return ASYNC_PATH.match(path) is not None


def make(config: RuntimeConfig, forwarder: Forwarder) -> AsyncInvocations | None:
    """The queue of an asynchronous endpoint (None for a real-time one)."""
    if config.asynchronous is None:
        return None
    return AsyncInvocations(config.asynchronous, forwarder)


def refuse_realtime(config: RuntimeConfig) -> Reply | None:
    """InvokeEndpoint on an asynchronous endpoint: a ValidationError (module docstring)."""
    from tritonship.local.runtime import error_reply

    if config.asynchronous is None:
        return None
    message = (
        f"Endpoint {config.endpoint_name} does not support real-time invocations: it is an "
        "asynchronous endpoint (use InvokeEndpointAsync)."
    )
    return error_reply(400, "ValidationError", {"message": message})


def handle(handler: RuntimeHandler, length: int) -> Reply:
    """InvokeEndpointAsync: check, read the inline body, queue; SageMaker's 202 or its error."""
    from tritonship.local.runtime import Reply, error_reply

    config = handler.server.forwarder.config
    name = ASYNC_PATH.match(handler.path)["name"]  # type: ignore[index]
    queue: AsyncInvocations | None = handler.server.async_invocations
    try:
        if name != config.endpoint_name:
            raise Rejected(f"Endpoint {name} of account 000000000000 not found.")
        if queue is None:
            raise Rejected(
                f"Endpoint {name} is not an asynchronous endpoint: its endpoint config has no "
                "AsyncInferenceConfig (serve --async-output s3://BUCKET/PREFIX/)."
            )
        location = _input_location(handler.headers, length)
    except Rejected as err:
        handler.close_connection = length > 0  # the unread body must not be parsed
        return error_reply(400, "ValidationError", {"message": str(err)})
    body = handler.rfile.read(length) if length else b""
    try:
        job = queue.accept(handler.headers, body, location)
    except Rejected as err:
        return error_reply(400, "ValidationError", {"message": str(err)})
    headers = {
        "Content-Type": "application/json",
        OUTPUT_LOCATION: job.output_location,
        FAILURE_LOCATION: job.failure_location,
    }
    return Reply(202, headers, json.dumps({"InferenceId": job.inference_id}).encode())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runtime's options of an asynchronous endpoint."""
    parser.add_argument("--async-output", help="asynchronous: S3OutputPath (s3://bucket/prefix/)")
    parser.add_argument("--async-failure", help="asynchronous: S3FailurePath")
    parser.add_argument(
        "--async-max-concurrent",
        type=int,
        default=1,
        help="asynchronous: MaxConcurrentInvocationsPerInstance (default 1)",
    )


def config_from(args: argparse.Namespace) -> AsyncConfig | None:
    """The AsyncConfig the parsed options name (None without --async-output)."""
    if not args.async_output:
        return None
    failure = args.async_failure or default_failure_path(args.async_output)
    return AsyncConfig(args.async_output, failure, args.async_max_concurrent)
