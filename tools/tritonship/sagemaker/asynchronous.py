"""Asynchronous inference from the caller's side: upload the input, call, poll S3 for the answer.

``InvokeEndpointAsync`` (botocore's sagemaker-runtime 2017-05-13 service model; API reference
"InvokeEndpointAsync") takes no body of more than 128,000 bytes: the input goes to S3 first,
and the call names it (``InputLocation``). SageMaker queues the request and answers at once
(HTTP 202) with the ``InferenceId`` and where the answer will be: the
``X-Amzn-SageMaker-OutputLocation`` and ``X-Amzn-SageMaker-FailureLocation`` headers. The
caller then polls S3 until one of the two objects exists, as the SageMaker Python SDK's
``AsyncInferenceResponse.get_result`` does (``src/sagemaker/async_inference/
async_inference_response.py``: the output first, else the failure, else "still running").

Limits (AWS guide "Asynchronous inference"): payloads up to 1 GB and up to one hour of
processing (``InvocationTimeoutSeconds`` 1-3600, default 900); a request waits in the
queue for at most ``RequestTTLSeconds`` (60-21600, default 21600).

The endpoint's side of the same contract, for the local runtime, is
:mod:`tritonship.local.async_inference`; what ``promote --async`` configures is
:mod:`tritonship.cloud.asynchronous`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from tritonship.errors import TritonshipError, TritonshipTimeout, UsageError
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.wire import EncodedRequest

#: "large payload sizes (up to 1GB)" (AWS guide "Asynchronous inference").
MAX_ASYNC_PAYLOAD_BYTES = 1 << 30
#: InvokeEndpointAsync's inline ``Body`` limit (API reference: "up to 128,000 bytes").
MAX_INLINE_BODY_BYTES = 128_000
#: ``InvocationTimeoutSeconds`` (botocore: InvocationTimeoutSecondsHeader, 1-3600; default 900).
DEFAULT_INVOCATION_TIMEOUT = 900
MAX_INVOCATION_TIMEOUT = 3600
#: ``RequestTTLSeconds`` (botocore: RequestTTLSecondsHeader, 60-21600; default 21600).
DEFAULT_REQUEST_TTL = 21600
MIN_REQUEST_TTL = 60
#: How long a caller waits beyond the invocation timeout for a queued request to start.
QUEUE_ALLOWANCE_SECONDS = 600


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a UsageError for anything else."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise UsageError(
            f"{uri!r} is not an s3://bucket/key URI", hint="e.g. s3://my-bucket/async/"
        )
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join_s3(prefix: str, name: str) -> str:
    """``name`` under the S3 prefix ``prefix`` (one slash between them)."""
    return f"{prefix.rstrip('/')}/{name.lstrip('/')}"


def default_failure_path(output_path: str) -> str:
    """Where failures go when no S3FailurePath is given: ``failures/`` under the output path."""
    return join_s3(output_path, "failures/")


@dataclass(frozen=True)
class Submission:
    """One queued request: its id, where its input is, and where its answer will be."""

    inference_id: str
    input_location: str
    output_location: str
    failure_location: str


@dataclass(frozen=True)
class AsyncAnswer:
    """What landed in S3: the output (``ok``) or the failure, with its location."""

    ok: bool
    body: bytes
    content_type: str | None
    location: str
    seconds: float


def upload(s3: Any, body: bytes, uri: str, content_type: str, progress: bool = False) -> str:
    """Put ``body`` at ``uri`` (multipart above 8 MiB, with a progress bar); return ``uri``."""
    import io

    from boto3.s3.transfer import TransferConfig
    from tqdm import tqdm

    bucket, key = split_s3(uri)
    with tqdm(
        total=len(body),
        unit="B",
        unit_scale=True,
        desc=f"upload {key}",
        disable=None if progress else True,  # None: only on a terminal
    ) as bar:
        s3.upload_fileobj(
            io.BytesIO(body),
            bucket,
            key,
            ExtraArgs={"ContentType": content_type},
            Callback=bar.update,
            Config=TransferConfig(multipart_chunksize=8 << 20),
        )
    return uri


def submit(
    runtime: Any,
    endpoint: str,
    input_location: str,
    content_type: str,
    inference_id: str | None = None,
    invocation_timeout: int = DEFAULT_INVOCATION_TIMEOUT,
) -> Submission:
    """InvokeEndpointAsync on the input at ``input_location``; where its answer will be."""
    answer = runtime.invoke_endpoint_async(
        EndpointName=endpoint,
        InputLocation=input_location,
        ContentType=content_type,
        InferenceId=inference_id or str(uuid.uuid4()),
        InvocationTimeoutSeconds=invocation_timeout,
    )
    return Submission(
        answer["InferenceId"],
        input_location,
        answer["OutputLocation"],
        answer.get("FailureLocation") or "",
    )


def _fetch(s3: Any, uri: str) -> tuple[bytes, str | None] | None:
    """The object at ``uri`` (body, Content-Type), or None while it does not exist."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    try:
        found = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return found["Body"].read(), found.get("ContentType")


def wait(
    s3: Any,
    submission: Submission,
    timeout: float,
    poll: float = 2.0,
    progress: bool = False,
) -> AsyncAnswer:
    """Poll the output, then the failure object, every ``poll`` s until one exists."""
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(
        bar_format="{desc} [{elapsed}]",
        desc=f"waiting for {submission.output_location}",
        disable=None if progress else True,
        leave=False,
    ) as bar:
        while True:
            for ok, uri in (
                (True, submission.output_location),
                (False, submission.failure_location),
            ):
                found = _fetch(s3, uri) if uri else None
                if found is not None:
                    return AsyncAnswer(ok, found[0], found[1], uri, time.monotonic() - started)
            if time.monotonic() - started > timeout:
                raise _not_yet(submission, timeout)
            bar.refresh()
            time.sleep(poll)


def _not_yet(submission: Submission, timeout: float) -> TritonshipTimeout:
    """The error for an answer that did not land within ``timeout``."""
    failure = submission.failure_location or "(no failure path)"
    return TritonshipTimeout(
        f"inference {submission.inference_id}: nothing at {submission.output_location} or "
        f"{failure} after {timeout:.0f} s",
        hint="the request may still be queued or running: look there later",
    )


class AsyncFailed(TritonshipError):
    """The endpoint wrote the request's failure, not its output."""


class AsyncTransport:
    """A transport like :class:`~tritonship.sagemaker.client.SageMakerTransport`, through S3.

    Each :meth:`send` uploads its body, calls InvokeEndpointAsync and waits for the answer.
    """

    max_payload = MAX_ASYNC_PAYLOAD_BYTES

    def __init__(
        self,
        endpoint_name: str,
        input_prefix: str,
        runtime: Any = None,
        s3: Any = None,
        invocation_timeout: int = DEFAULT_INVOCATION_TIMEOUT,
        poll: float = 2.0,
        progress: bool = False,
        say: Reporter = quiet,
    ) -> None:
        """``input_prefix``: the S3 prefix the inputs are uploaded under."""
        split_s3(input_prefix)
        check_invocation_timeout(invocation_timeout)
        self.endpoint_name, self.input_prefix = endpoint_name, input_prefix
        self.runtime = runtime or _runtime_client()
        self.s3 = s3 or _client("s3")
        self.invocation_timeout, self.poll = invocation_timeout, poll
        self.progress, self.say = progress, say
        self.submissions: list[Submission] = []

    @property
    def target(self) -> str:
        """What this transport talks to, for display."""
        return f"endpoint {self.endpoint_name} (asynchronous, {self.runtime.meta.endpoint_url})"

    def send(self, request: EncodedRequest) -> Any:
        """Upload, call, wait; the output as an :class:`~tritonship.sagemaker.client.Answer`."""
        from tritonship.sagemaker.client import Answer

        if len(request.body) > MAX_ASYNC_PAYLOAD_BYTES:
            raise UsageError(
                f"the request body is {len(request.body)} bytes, over asynchronous inference's "
                f"{MAX_ASYNC_PAYLOAD_BYTES}-byte limit",
                hint="send fewer rows per request",
            )
        started = time.perf_counter()
        inference_id = str(uuid.uuid4())
        location = join_s3(self.input_prefix, f"{inference_id}.in")
        upload(self.s3, request.body, location, request.content_type, self.progress)
        submission = submit(
            self.runtime,
            self.endpoint_name,
            location,
            request.content_type,
            inference_id,
            self.invocation_timeout,
        )
        self.submissions.append(submission)
        self.say(
            f"inference {submission.inference_id}: {len(request.body):,} bytes at {location}; "
            f"output {submission.output_location}"
        )
        timeout = self.invocation_timeout + QUEUE_ALLOWANCE_SECONDS
        answer = wait(self.s3, submission, timeout, self.poll, self.progress)
        if not answer.ok:
            text = answer.body.decode("utf-8", "replace").strip()
            raise AsyncFailed(
                f"inference {submission.inference_id} failed: {text[:500]}",
                hint=f"the failure is at {answer.location}",
            )
        self.say(f"inference {submission.inference_id}: output at {answer.location}")
        return Answer(answer.body, answer.content_type, time.perf_counter() - started)


def check_invocation_timeout(seconds: int) -> int:
    """``seconds`` if InvokeEndpointAsync takes it as InvocationTimeoutSeconds (1-3600)."""
    if not 1 <= seconds <= MAX_INVOCATION_TIMEOUT:
        raise UsageError(
            f"invocation timeout {seconds} is not 1-{MAX_INVOCATION_TIMEOUT} seconds",
            hint="asynchronous inference processes a request for at most an hour",
        )
    return seconds


def _runtime_client() -> Any:
    """The sagemaker-runtime client of :mod:`tritonship.sagemaker.client`.

    Unsigned for a loopback endpoint without credentials.
    """
    from tritonship.sagemaker.client import runtime_client

    return runtime_client()


def _client(service: str) -> Any:
    """A client for ``service`` in the configured region (standard retries)."""
    import boto3
    from botocore.config import Config

    from tritonship.sagemaker import settings

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
    region = settings.aws_region() or "us-east-1"
    return boto3.session.Session().client(service, region_name=region, config=config)
