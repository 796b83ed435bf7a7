"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` in front of a container.

Unmodified boto3 code reaches the local endpoint with ``endpoint_url`` (or the
service-specific ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) pointed here. Like SageMaker's
InvokeEndpoint it passes the Content-Type both ways, refuses a body above 6 MB (6,291,456
bytes), gives the container 60 s for the whole answer, turns a container error into
``ModelError`` (HTTP 424) carrying the original status and message, passes
``CustomAttributes``, ``TargetVariant`` and ``InferenceId`` to the container, and names the
variant in ``x-Amzn-Invoked-Production-Variant``. Run as
``python -m tritonship.local.runtime --upstream URL --port N``.

With ``--model-data`` the endpoint is a multi-model endpoint: every call names a
``TargetModel`` (an archive under the model data prefix), which is loaded on first use and
invoked through the container's ``/models`` API (:mod:`tritonship.local.target_models`).

With ``--async-output`` the endpoint is an asynchronous one: ``POST
/endpoints/{name}/async-invocations`` (InvokeEndpointAsync) queues the request, whose input
and answer live in S3 (:mod:`tritonship.local.async_inference`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

import requests

from tritonship.errors import UsageError
from tritonship.local.target_models import (
    TARGET_MODEL,
    ContainerUnreachable,
    LoadFailed,
    ModelDataMissing,
    ModelNotReady,
    MultiModelConfig,
    TargetModels,
)
from tritonship.local.traffic_tap import Tap, add_runtime_options, tap_from_args
from tritonship.sagemaker.wire import CONTAINER_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from tritonship.local.async_inference import AsyncConfig

DEFAULT_ENDPOINT_NAME = "tritonship-local"
#: The variant name SageMaker examples (and the toolkit's promote) give a single-variant endpoint.
DEFAULT_VARIANT_NAME = "AllTraffic"
LOCAL_ACCOUNT = "000000000000"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
INVOKED_VARIANT = "x-Amzn-Invoked-Production-Variant"
#: Request headers passed to the container: those the SageMaker Python SDK's local mode
#: passes (sagemaker-python-sdk v2.257.6, src/sagemaker/local/local_session.py:613-632,
#: less TargetModel, which only multi-model endpoints take). SageMaker itself "strips all
#: POST headers except those supported by the API" (InvokeEndpoint API reference).
FORWARDED_HEADERS = ("Content-Type", "Accept", CUSTOM_ATTRIBUTES, TARGET_VARIANT, INFERENCE_ID)
#: How long the container gets to accept a connection (within the 60 s of the whole answer).
CONNECT_TIMEOUT_SECONDS = 5.0
#: SageMaker's EndpointName pattern (botocore's service model, shape EndpointName).
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PATH = re.compile(r"^/endpoints/(?P<name>[^/?]+)/invocations/?(?:\?.*)?$")
#: SageMaker's text for a container that did not answer in time, as botocore shows it in
#: public reports: 'Received server error (0) from primary with message "Your invocation
#: timed out while waiting for a response from container primary. Review the latency
#: metrics ...". See <log group URL> ...' (not in AWS's reference docs).
_TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container primary. "
    "Review the latency metrics for each container in Amazon CloudWatch, resolve the "
    "issue, and try again."
)


@dataclass(frozen=True)
class RuntimeConfig:
    """What the local runtime fronts and how it names itself."""

    upstream: str
    endpoint_name: str = DEFAULT_ENDPOINT_NAME
    region: str = "us-east-1"
    log_hint: str = "the container log"
    variant_name: str = DEFAULT_VARIANT_NAME
    timeout: float = CONTAINER_TIMEOUT_SECONDS  # for the whole answer: connect to last byte
    multi_model: MultiModelConfig | None = None  # a multi-model endpoint's target models
    asynchronous: AsyncConfig | None = None  # an asynchronous endpoint's output paths


def check_endpoint_name(name: str) -> str:
    """``name`` if SageMaker would accept it as an EndpointName, else a UsageError."""
    if not _ENDPOINT_NAME.match(name):
        raise UsageError(
            f"bad endpoint name {name!r}",
            hint="SageMaker takes 1-63 letters, digits and hyphens, not starting with a hyphen",
        )
    return name


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def error_reply(status: int, error_type: str | None, payload: Mapping[str, object]) -> Reply:
    """A rest-json error as AWS sends it (botocore reads ``x-amzn-ErrorType``)."""
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Reply(status, headers, json.dumps(payload).encode())


def model_error(config: RuntimeConfig, status: int | None, message: str) -> Reply:
    """SageMaker's ``ModelError``: the container failed, its status and message kept.

    Status 0 is SageMaker's code for "no answer in time" (a server error).
    """
    group = f"/aws/sagemaker/Endpoints/{config.endpoint_name}"
    payload: dict[str, object]
    if status is None:
        summary, payload = message, {"Message": message}
    else:
        kind = "client" if 400 <= status < 500 else "server"
        summary = (
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See {config.log_hint} for more information."
        )
        payload = {
            "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
            "Message": summary,
            "OriginalStatusCode": status,
            "OriginalMessage": message,
        }
    payload["LogStreamArn"] = f"arn:aws:logs:{config.region}:{LOCAL_ACCOUNT}:log-group:{group}"
    return error_reply(424, "ModelError", payload)


def check_request(
    config: RuntimeConfig, path: str, length: int, target_variant: str | None = None
) -> Reply | None:
    """Refuse what SageMaker refuses before the container sees it (None: go ahead)."""
    match = _PATH.match(path)
    if not match:
        return error_reply(404, "UnknownOperationException", {"message": f"no route {path}"})
    if match["name"] != config.endpoint_name:
        message = f"Endpoint {match['name']} of account {LOCAL_ACCOUNT} not found."
        return error_reply(400, "ValidationError", {"message": message})
    if target_variant is not None and target_variant != config.variant_name:
        message = (
            f"Variant {target_variant} of endpoint {config.endpoint_name} not found "
            f"(this local endpoint has one variant, {config.variant_name})."
        )
        return error_reply(400, "ValidationError", {"message": message})
    if length > MAX_PAYLOAD_BYTES:
        message = f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
        return error_reply(413, None, {"message": message})
    return None


def check_target_model(
    config: RuntimeConfig, target_model: str | None, request_id: str
) -> Reply | None:
    """Refuse a TargetModel the endpoint's kind does not take (None: go ahead)."""
    if config.multi_model is not None and not target_model:
        # SageMaker's words, as botocore showed them in a public report
        # (aws/sagemaker-tensorflow-serving-container#166): "ValidationError: ... Request
        # <id> is missing a target model header".
        message = f"Request {request_id} is missing a target model header."
        return error_reply(400, "ValidationError", {"message": message})
    if config.multi_model is None and target_model is not None:
        # SageMaker's words and ErrorCode, as public reports show them
        # (aws/amazon-sagemaker-examples#1026 and #1216).
        message = (
            f"Endpoint {config.endpoint_name} is not a multi-model endpoint and does not "
            "support target model header."
        )
        payload = {"ErrorCode": "TARGET_MODEL_HEADER_NOT_SUPPORTED", "Message": message}
        return error_reply(400, "ValidationError", payload)
    return None


def target_model_reply(config: RuntimeConfig, target_model: str, err: Exception) -> Reply:
    """What SageMaker answers when ``target_model`` could not be made ready."""
    if isinstance(err, ModelDataMissing):
        # Adapted from SageMaker's "Failed to download model data(bucket: B, key: K). Please
        # ensure that there is an object located at the URL and that the role passed to
        # CreateModel has permissions to download the object." (a ValidationError); the
        # reason is ours.
        message = (
            f"Failed to download model data({err.location}) for target model {target_model}. "
            "Please ensure that there is an object located at the URL and that the role "
            "passed to CreateModel has permissions to download the object."
        )
        if err.reason:
            message += f" ({err.reason})"
        return error_reply(400, "ValidationError", {"message": message})
    if isinstance(err, LoadFailed):  # the container's status and message, as for /invocations
        return model_error(config, err.status, err.message)
    if isinstance(err, ModelNotReady):
        # AWS guide "Invoke a Multi-Model Endpoint": "If the model does not finish loading
        # before the 60 second timeout limit, the request to invoke_endpoint returns with the
        # error code ModelNotReadyException, and the model continues to download and load";
        # botocore's service model gives it status 429 and a Message.
        message = (
            f"Target model {target_model} is still being downloaded or loaded. "
            "Wait and try your request again."
        )
        return error_reply(429, "ModelNotReadyException", {"Message": message})
    if isinstance(err, ContainerUnreachable):
        message = f"the container is not reachable ({err})"
        return error_reply(503, "ServiceUnavailable", {"message": message})
    message = f"loading target model {target_model} failed: {type(err).__name__}: {err}"
    return error_reply(500, "InternalFailure", {"message": message})


class _Watchdog:
    """Cuts a connection's socket when the deadline passes, whatever call is blocked on it.

    A per-read socket timeout does not bound an answer that drips a byte at a time; shutting
    the socket down from a timer does, for connect, send, headers and body alike.
    """

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.expired = threading.Event()
        self._connection = connection
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired.set()
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # blocked reads return at once

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


class Answer(NamedTuple):
    """The container's HTTP answer."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def _is_dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed by the container (readable at rest).

    The check urllib3 makes before reusing a pooled connection (util/wait.py).
    """
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class Forwarder:
    """Sends one invocation to the container (one kept-alive connection per thread)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        parts = urlsplit(config.upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and _is_dropped(connection):
            connection.close()
            connection = None
        if connection is None:
            connection = http.client.HTTPConnection(
                self._host, self._port, timeout=CONNECT_TIMEOUT_SECONDS
            )
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        request: tuple[str, bytes, dict[str, str]],
        deadline: float,
    ) -> Answer:
        if connection.sock is None:
            connection.connect()  # bounded by CONNECT_TIMEOUT_SECONDS
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no time left after connecting")
        connection.sock.settimeout(left)  # the watchdog cuts whatever runs past the deadline
        path, body, headers = request
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        if answer.will_close:
            self._drop()
        return Answer(answer.status, answer.headers, data)

    def send(
        self, path: str, body: bytes, headers: dict[str, str], deadline: float
    ) -> Answer | Reply:
        """POST ``path`` upstream before ``deadline`` (``time.monotonic()``).

        The container's answer, or SageMaker's reply when none came in time (or at all).
        """
        connection = self._connection()
        with _Watchdog(connection, deadline - time.monotonic()) as watchdog:
            try:
                answer = self._exchange(connection, (path, body, headers), deadline)
            except (OSError, http.client.HTTPException) as err:
                self._drop()
                if watchdog.expired.is_set() or isinstance(err, TimeoutError):
                    return model_error(self.config, 0, _TIMEOUT_MESSAGE)
                message = f"the container at {self.config.upstream} is not reachable ({err})"
                return error_reply(503, "ServiceUnavailable", {"message": message})
        if watchdog.expired.is_set():  # cut just as the last byte arrived: still too late
            self._drop()
            return model_error(self.config, 0, _TIMEOUT_MESSAGE)
        return answer

    def translate(self, answer: Answer) -> Reply:
        """The container's answer as InvokeEndpoint returns it."""
        if answer.status >= 300:
            return model_error(self.config, answer.status, answer.body.decode("utf-8", "replace"))
        reply_headers = {
            "Content-Type": answer.headers.get("Content-Type", "application/octet-stream"),
            INVOKED_VARIANT: self.config.variant_name,
        }
        if attributes := answer.headers.get(CUSTOM_ATTRIBUTES):
            reply_headers[CUSTOM_ATTRIBUTES] = attributes  # set by the model, as on SageMaker
        return Reply(200, reply_headers, answer.body)

    def invoke(self, body: bytes, headers: dict[str, str]) -> Reply:
        """POST ``/invocations`` upstream within the deadline and translate the answer."""
        answer = self.send("/invocations", body, headers, time.monotonic() + self.config.timeout)
        return answer if isinstance(answer, Reply) else self.translate(answer)


class MultiModelForwarder:
    """Sends one invocation to a target model, loading it first if need be.

    The 60 s cover the load and the answer together; a load that outlasts them goes on
    while the caller gets ``ModelNotReadyException``.
    """

    def __init__(self, forwarder: Forwarder, config: MultiModelConfig) -> None:
        self.forwarder = forwarder
        self.models = TargetModels(config, forwarder.config.upstream)

    def invoke(self, target_model: str, body: bytes, headers: dict[str, str]) -> Reply:
        """``POST /models/<hash>/invoke`` with the TargetModel header, as SageMaker sends it."""
        deadline = time.monotonic() + self.forwarder.config.timeout
        headers = {**headers, TARGET_MODEL: target_model}
        for retry in (False, True):
            load = self.models.load(target_model)
            try:
                name = self.models.ready(load, deadline)
            except Exception as err:  # noqa: BLE001 - every failure becomes SageMaker's answer
                return target_model_reply(self.forwarder.config, target_model, err)
            answer = self.forwarder.send(f"/models/{name}/invoke", body, headers, deadline)
            if isinstance(answer, Reply):
                return answer
            if answer.status != 404 or retry:
                return self.forwarder.translate(answer)
            # 404: the server does not have the model (sagemaker_server.cc, INVOKE MODEL), so
            # it was restarted since the load; SageMaker loads a model that is not there.
            self.models.forget(target_model, load)
        raise AssertionError("the second try always returns")


class RuntimeHandler(BaseHTTPRequestHandler):
    """HTTP handler of the local runtime."""

    protocol_version = "HTTP/1.1"
    server: RuntimeServer
    request_id = ""  # the x-amzn-RequestId of the request being answered

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        """InvokeEndpoint (or InvokeEndpointAsync)."""
        from tritonship.local import async_inference

        started = time.perf_counter()
        self.request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        if async_inference.is_async_path(self.path):
            self._send(async_inference.handle(self, length))
            return
        config = self.server.forwarder.config
        target_model = self.headers.get(TARGET_MODEL)
        refused = (
            check_request(config, self.path, length, self.headers.get(TARGET_VARIANT))
            or check_target_model(config, target_model, self.request_id)
            or async_inference.refuse_realtime(config)
        )
        if refused:
            self.close_connection = length > 0  # the unread body must not be parsed
            self._send(refused)
            return
        body = self.rfile.read(length)
        headers = {k: v for k in FORWARDED_HEADERS if (v := self.headers.get(k)) is not None}
        if self.server.target_models is not None and target_model:
            reply = self.server.target_models.invoke(target_model, body, headers)
        else:
            reply = self.server.forwarder.invoke(body, headers)
        # serve --capture, --mirror: the record is written before the answer goes out (a
        # caller that has its answer finds it captured); the mirror's copy is only queued.
        self.server.tap.observe(
            body, headers.get("Content-Type"), reply, started, headers.get(INFERENCE_ID)
        )
        self._send(reply)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        """``GET /ping``: the container's health, for readiness checks."""
        self.request_id = str(uuid.uuid4())
        if self.path != "/ping":
            self._send(error_reply(404, "UnknownOperationException", {"message": self.path}))
            return
        try:
            status = requests.get(f"{self.server.forwarder.config.upstream}/ping", timeout=5)
            self._send(Reply(status.status_code, {}, b""))
        except requests.RequestException:
            self._send(Reply(503, {}, b""))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for key, value in {**reply.headers, "x-amzn-RequestId": self.request_id}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class RuntimeServer(ThreadingHTTPServer):
    """The local runtime's HTTP server."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: RuntimeConfig) -> None:
        from tritonship.local import async_inference

        super().__init__(address, RuntimeHandler)
        self.tap = Tap()  # serve --capture / --mirror set it (main)
        self.forwarder = Forwarder(config)
        self.target_models = (
            MultiModelForwarder(self.forwarder, config.multi_model)
            if config.multi_model is not None
            else None
        )
        self.async_invocations = async_inference.make(config, self.forwarder)

    def server_close(self) -> None:
        """Close the socket; drop the asynchronous requests still queued."""
        super().server_close()
        if self.async_invocations is not None:
            self.async_invocations.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted."""
    from tritonship.local import async_inference

    parser = argparse.ArgumentParser(prog="python -m tritonship.local.runtime")
    parser.add_argument(
        "--upstream", required=True, help="the container, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT_NAME)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log-hint", default="the container log")
    parser.add_argument("--variant-name", default=DEFAULT_VARIANT_NAME)
    parser.add_argument("--timeout", type=float, default=CONTAINER_TIMEOUT_SECONDS)
    _add_multi_model(parser)
    async_inference.add_arguments(parser)
    add_runtime_options(parser)
    args = parser.parse_args(argv)
    multi_model = None
    if args.model_data:
        if args.models_dir is None:
            parser.error("--model-data needs --models-dir")
        multi_model = MultiModelConfig(
            args.model_data, args.models_dir, args.container_models_dir or str(args.models_dir)
        )
    config = RuntimeConfig(
        args.upstream.rstrip("/"),
        args.endpoint_name,
        args.region,
        args.log_hint,
        variant_name=args.variant_name,
        timeout=args.timeout,
        multi_model=multi_model,
        asynchronous=async_inference.config_from(args),
    )
    if config.asynchronous is not None and multi_model is not None:
        parser.error("an asynchronous endpoint cannot be a multi-model one (SageMaker's rule)")
    # The log (runtime.log) says which target model was loaded and how long it took.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = RuntimeServer(("127.0.0.1", args.port), config)
    server.tap = tap_from_args(args, config.endpoint_name, config.variant_name)
    with server, contextlib.suppress(KeyboardInterrupt):
        try:
            server.serve_forever()
        finally:
            server.tap.close()


def _add_multi_model(parser: argparse.ArgumentParser) -> None:
    """The options of a multi-model endpoint (all three, or none)."""
    parser.add_argument(
        "--model-data", help="multi-model: the model data prefix, a folder or s3://bucket/prefix/"
    )
    parser.add_argument(
        "--models-dir", type=Path, help="multi-model: the folder target models are unpacked to"
    )
    parser.add_argument(
        "--container-models-dir",
        help="multi-model: that folder as the server sees it (default: the same path)",
    )


if __name__ == "__main__":
    main()
