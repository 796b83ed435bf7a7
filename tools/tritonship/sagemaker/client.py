"""Clients of ``/invocations``: the container API over HTTP, the runtime API over boto3.

Both send the requests :mod:`tritonship.sagemaker.wire` encodes; :func:`classify` splits a
set of images into requests under SageMaker's payload limit and ranks the answers.
"""

from __future__ import annotations

import functools
import http.client
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.sagemaker import local_aws, settings
from tritonship.sagemaker.wire import (
    MAX_PAYLOAD_BYTES,
    EncodedRequest,
    ResponseError,
    decode_response,
    encode_raw,
    encode_request,
    error_text,
)

# --- transports ---------------------------------------------------------------------------


class InvocationError(TritonshipError):
    """The endpoint refused or failed a request; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


@dataclass(frozen=True)
class Answer:
    """One response: body, Content-Type and the round-trip time."""

    body: bytes
    content_type: str | None
    seconds: float


class HttpTransport:
    """POST ``<url>/invocations`` (the container API) with retries where they are safe.

    Connection failures (nothing was sent) and 429/503 answers are retried with backoff;
    a request that reached the server and failed otherwise is not.
    """

    def __init__(self, url: str, timeout: float = 60.0, retries: int = 3) -> None:
        """``url`` is the endpoint's base URL, e.g. ``http://127.0.0.1:8080``."""
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.url, self.timeout = url.rstrip("/"), timeout
        retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=retries,
            status_forcelist=(429, 503),
            allowed_methods=frozenset({"POST"}),
            backoff_factor=0.2,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    @property
    def target(self) -> str:
        """What this transport talks to, for display."""
        return f"{self.url}/invocations"

    def send(self, request: EncodedRequest) -> Answer:
        """Send one request; raise InvocationError unless the answer is 200."""
        import requests

        started = time.perf_counter()
        try:
            response = self.session.post(
                self.target,
                data=request.body,
                timeout=self.timeout,
                headers={"Content-Type": request.content_type},
            )
        except requests.ConnectionError as err:
            raise _connection_error(self.target, err) from err
        except requests.Timeout as err:
            message = f"{self.target} did not answer within {self.timeout:.0f} s"
            raise InvocationError(message) from err
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise InvocationError(
                f"{self.target} answered {response.status_code}: {error_text(response.text)}",
                status=response.status_code,
            )
        return Answer(response.content, response.headers.get("Content-Type"), seconds)


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and every exception it wraps (arguments, ``reason``, cause and context)."""
    seen: set[int] = set()
    pending = [err]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None)]
        linked += [current.__cause__, current.__context__]
        pending += [item for item in linked if isinstance(item, BaseException)]


def _lost_mid_request(err: BaseException) -> bool:
    """Whether the connection broke after the request went out (not a refused connection).

    requests wraps urllib3's ``ProtocolError("Connection aborted.", RemoteDisconnected(...)
    or ConnectionResetError(...))`` for that; a refused connection is a
    ``NewConnectionError`` instead.
    """
    from urllib3.exceptions import ProtocolError

    lost = (
        ProtocolError,
        http.client.RemoteDisconnected,
        ConnectionResetError,
        ConnectionAbortedError,
    )
    return any(isinstance(cause, lost) for cause in _causes(err))


def _connection_error(target: str, err: Exception) -> InvocationError:
    """Tell a refused connection (retried) from one lost mid-request (never retried)."""
    if _lost_mid_request(err):
        return InvocationError(
            f"the connection to {target} was lost during the request (did the server crash?)",
            hint="not retried automatically, since the server may have started on it; "
            "check the server log and send it again",
        )
    return InvocationError(
        f"cannot reach {target}", hint="is the endpoint running? start it with: tritonship serve"
    )


class SageMakerTransport:
    """boto3 ``sagemaker-runtime`` InvokeEndpoint for a named endpoint.

    Honours AWS_REGION / AWS_PROFILE / AWS_ENDPOINT_URL; botocore's standard retry mode
    retries throttling and connection errors. Pointed at the local runtime (a loopback
    AWS_ENDPOINT_URL) without credentials, requests go unsigned.
    """

    def __init__(
        self,
        endpoint_name: str,
        client: Any = None,
        timeout: float = 70.0,
        target_variant: str | None = None,
        target_model: str | None = None,
    ) -> None:
        """Create the client unless one is given (tests pass a stubbed one).

        ``target_variant`` sends every request to that production variant (InvokeEndpoint's
        ``TargetVariant``) instead of letting the variant weights choose. ``target_model``
        names the archive a multi-model endpoint serves the request with (``TargetModel``,
        relative to the model's S3 prefix, e.g. ``model_tf_dali.tar.gz``).
        """
        self.endpoint_name = endpoint_name
        self.target_variant = target_variant
        self.target_model = target_model
        self.client = client or runtime_client(timeout)

    @property
    def target(self) -> str:
        """What this transport talks to, for display."""
        model = f" model {self.target_model}" if self.target_model else ""
        variant = f" variant {self.target_variant}" if self.target_variant else ""
        return f"endpoint {self.endpoint_name}{model}{variant} ({self.client.meta.endpoint_url})"

    def send(self, request: EncodedRequest) -> Answer:
        """InvokeEndpoint once; raise InvocationError with SageMaker's error code."""
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.perf_counter()
        try:
            response = self.client.invoke_endpoint(**self._invoke_args(request))
            body = response["Body"].read()
        except ClientError as err:
            raise _invocation_error(err) from err
        except BotoCoreError as err:
            raise InvocationError(f"{self.target}: {err}") from err
        content_type = response.get("ContentType")
        if local_aws.is_placeholder(body, content_type) and local_aws.local_endpoint(
            "sagemaker-runtime"
        ):
            raise InvocationError(local_aws.placeholder_line(self.client.meta.endpoint_url))
        return Answer(body, content_type, time.perf_counter() - started)

    def _invoke_args(self, request: EncodedRequest) -> dict[str, Any]:
        """InvokeEndpoint's arguments for one request."""
        args = {
            "EndpointName": self.endpoint_name,
            "ContentType": request.content_type,
            "Body": request.body,
        }
        if self.target_variant:
            args["TargetVariant"] = self.target_variant
        if self.target_model:
            args["TargetModel"] = self.target_model
        return args


def _invocation_error(err: Any) -> InvocationError:
    """Turn a botocore ClientError (ModelError, ValidationError, ...) into one line.

    A local stand-in's HTML 500 page for a call it cannot answer says so instead.
    """
    error = err.response.get("Error", {})
    status = err.response.get("OriginalStatusCode") or err.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode"
    )
    lacking = local_aws.explain(err)
    if lacking:
        return InvocationError(lacking, status=status)
    return InvocationError(
        f"{error.get('Code', 'error')}: {error.get('Message', err)}", status=status
    )


def runtime_client(timeout: float = 70.0) -> Any:
    """A ``sagemaker-runtime`` client (unsigned for a loopback endpoint without credentials)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    session = boto3.Session()
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"}, read_timeout=timeout, connect_timeout=10
    )
    local = settings.is_loopback_url(settings.runtime_endpoint_url())
    if local and session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    region = settings.aws_region() or "us-east-1"
    return session.client("sagemaker-runtime", region_name=region, config=config)


# --- classification -----------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One of the top-k classes of an image."""

    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Classification:
    """The top-k predictions for one image and the latency of the request that carried it."""

    image: str
    predictions: list[Prediction]
    seconds: float
    request_bytes: int


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[Prediction]:
    """The ``k`` most probable classes, labelled (``#i`` where the labels run short)."""
    order = np.argsort(probabilities)[::-1][:k]
    return [
        Prediction(int(i), labels[i] if i < len(labels) else f"#{i}", float(probabilities[i]))
        for i in order
    ]


@dataclass(frozen=True)
class RequestSize:
    """The body size of one padded ``[N, L]`` request, grown one image at a time in O(1).

    tritonclient writes the JSON header with ``json.dumps``: between a ``[1, 1]`` request and
    an ``[N, L]`` one only the digits of N, L (and N*L, binary's ``binary_data_size``)
    change. A binary body adds the N*L raw bytes; a JSON body writes them as decimal numbers
    joined by a separator (measured once: ``,`` today), the padding as ``0``. So the size
    follows from N, L, the images' total length and their bytes' total digit count, without
    encoding the group.
    """

    binary: bool
    count: int = 0
    width: int = 0
    length: int = 0
    digits: int = 0

    def plus(self, image: bytes) -> RequestSize:
        """The size with ``image`` added to the group."""
        digits = 0
        if not self.binary:
            values = np.frombuffer(image, dtype=np.uint8)
            digits = (
                len(values)
                + int(np.count_nonzero(values >= 10))
                + int(np.count_nonzero(values >= 100))
            )
        return RequestSize(
            self.binary,
            self.count + 1,
            max(self.width, len(image)),
            self.length + len(image),
            self.digits + digits,
        )

    @property
    def bytes(self) -> int:
        """The encoded body's length in bytes."""
        cells = self.count * self.width
        shape = _digits(self.count) + _digits(self.width) - 2
        if self.binary:
            return _one_by_one(True) + shape + _digits(cells) - 1 + cells
        data = 2 + self.digits + (cells - self.length) + _separator() * (cells - 1)
        return _one_by_one(False) + shape + data - len("[0]")


def _digits(value: int) -> int:
    """How many characters ``json.dumps`` writes for a non-negative int."""
    return len(str(value))


@functools.cache
def _one_by_one(binary: bool) -> int:
    """The JSON header (binary) or whole body (JSON) length of a ``[1, 1]`` zero request."""
    request = encode_request([b"\0"], binary=binary)
    return len(request.body) - 1 if binary else len(request.body)


@functools.cache
def _separator() -> int:
    """The length of the separator between JSON data values (``[0,0]`` against ``[0]``)."""
    wider = len(encode_request([b"\0\0"], binary=False).body)
    return wider - _one_by_one(False) - 1


def request_batches(
    images: Sequence[bytes],
    binary: bool,
    max_batch: int | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> list[list[int]]:
    """Group image indices into requests under SageMaker's payload limit (``max_bytes``).

    Each request also carries at most ``max_batch`` images (the served model's
    ``max_batch_size``; None: no cap). Sizes come from :class:`RequestSize`: O(n) overall.
    The limit is InvokeEndpoint's 6 MB, or asynchronous inference's 1 GB.
    """
    groups: list[list[int]] = [[]]
    size = RequestSize(binary)
    for index, image in enumerate(images):
        grown = size.plus(image)
        full = max_batch is not None and size.count >= max_batch
        if groups[-1] and (full or grown.bytes > max_bytes):
            groups.append([index])
            grown = RequestSize(binary).plus(image)
        else:
            groups[-1].append(index)
        size = grown
    return groups


class Transport(Protocol):
    """What :func:`classify` sends through: HTTP, InvokeEndpoint, or InvokeEndpointAsync."""

    @property
    def target(self) -> str:
        """Where requests go, for messages."""

    def send(self, request: EncodedRequest) -> Answer:
        """Send one request; its answer."""


def classify(
    transport: Transport,
    images: Sequence[tuple[str, bytes]] | Mapping[str, bytes],
    binary: bool = True,
    k: int = 5,
    labels: Sequence[str] = (),
    max_batch: int | None = None,
    raw: bool = False,
) -> list[Classification]:
    """Classify ``(name, bytes)`` images: as few padded-batch requests as the limits allow.

    ``max_batch`` caps the images per request (the served model's ``max_batch_size``).
    With ``raw`` every image travels alone as the whole body of its request
    (``json-header-size=0``): a raw request carries exactly one image. A transport with a
    ``max_payload`` (asynchronous inference: 1 GB) takes requests up to that size.
    """
    pairs = list(images.items()) if isinstance(images, Mapping) else list(images)
    names, blobs = [name for name, _ in pairs], [blob for _, blob in pairs]
    results: list[Classification] = []
    limit = getattr(transport, "max_payload", MAX_PAYLOAD_BYTES)
    groups = (
        [[i] for i in range(len(blobs))]
        if raw
        else request_batches(blobs, binary, max_batch, limit)
    )
    for group in groups:
        request = (
            encode_raw(blobs[group[0]])
            if raw
            else encode_request([blobs[i] for i in group], binary=binary)
        )
        answer = transport.send(request)
        output = decode_response(answer.body, answer.content_type)
        if output.shape[0] != len(group):
            raise ResponseError(f"asked for {len(group)} images, got {output.shape[0]} rows")
        results += [
            Classification(names[i], top_k(row, labels, k), answer.seconds, len(request.body))
            for i, row in zip(group, output, strict=True)
        ]
    return results
