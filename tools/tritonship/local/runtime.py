"""A local SageMaker runtime: ``POST /endpoints/{name}/invocations`` in front of a container.

Unmodified boto3 code reaches the local endpoint with ``endpoint_url`` (or
``AWS_ENDPOINT_URL``) pointed here. Like SageMaker's InvokeEndpoint it passes the
Content-Type both ways, refuses a body above 6 MB (6,291,456 bytes), gives the container
60 s, and turns a container error into ``ModelError`` (HTTP 424) carrying the original
status and message. Run as ``python -m tritonship.local.runtime --upstream URL --port N``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tritonship.sagemaker.wire import CONTAINER_TIMEOUT_SECONDS, MAX_PAYLOAD_BYTES

DEFAULT_ENDPOINT_NAME = "tritonship-local"
LOCAL_ACCOUNT = "000000000000"
_PATH = re.compile(r"^/endpoints/(?P<name>[^/?]+)/invocations/?(?:\?.*)?$")
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


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def error_reply(status: int, error_type: str | None, payload: dict[str, object]) -> Reply:
    """A rest-json error as AWS sends it (botocore reads ``x-amzn-ErrorType``)."""
    headers = {"Content-Type": "application/json"}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Reply(status, headers, json.dumps(payload).encode())


def model_error(config: RuntimeConfig, status: int | None, message: str) -> Reply:
    """SageMaker's ``ModelError``: the container failed, its status and message kept."""
    group = f"/aws/sagemaker/Endpoints/{config.endpoint_name}"
    if status is None:
        summary, payload = message, {"Message": message}
    else:
        kind = "client" if status < 500 else "server"
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


def check_request(config: RuntimeConfig, path: str, length: int) -> Reply | None:
    """Refuse what SageMaker refuses before the container sees it (None: go ahead)."""
    match = _PATH.match(path)
    if not match:
        return error_reply(404, "UnknownOperationException", {"message": f"no route {path}"})
    if match["name"] != config.endpoint_name:
        message = f"Endpoint {match['name']} of account {LOCAL_ACCOUNT} not found."
        return error_reply(400, "ValidationError", {"message": message})
    if length > MAX_PAYLOAD_BYTES:
        message = f"HTTP content length exceeded {MAX_PAYLOAD_BYTES} bytes."
        return error_reply(413, None, {"message": message})
    return None


class Forwarder:
    """Sends one invocation to the container (one keep-alive session per thread)."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def invoke(self, body: bytes, headers: dict[str, str]) -> Reply:
        """POST ``/invocations`` upstream and translate the answer."""
        try:
            answer = self._session().post(
                f"{self.config.upstream}/invocations",
                data=body,
                headers=headers,
                timeout=(5, CONTAINER_TIMEOUT_SECONDS),
            )
        except requests.Timeout:
            return model_error(self.config, None, _TIMEOUT_MESSAGE)
        except requests.ConnectionError:
            message = f"the container at {self.config.upstream} is not reachable"
            return error_reply(503, "ServiceUnavailable", {"message": message})
        if answer.status_code >= 300:
            return model_error(self.config, answer.status_code, answer.text)
        content_type = answer.headers.get("Content-Type", "application/octet-stream")
        return Reply(
            200,
            {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"},
            answer.content,
        )


class RuntimeHandler(BaseHTTPRequestHandler):
    """HTTP handler of the local runtime."""

    protocol_version = "HTTP/1.1"
    server: RuntimeServer

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        """InvokeEndpoint."""
        length = int(self.headers.get("Content-Length") or 0)
        refused = check_request(self.server.forwarder.config, self.path, length)
        if refused:
            self.close_connection = length > 0  # the unread body must not be parsed
            self._send(refused)
            return
        body = self.rfile.read(length)
        headers = {k: v for k in ("Content-Type", "Accept") if (v := self.headers.get(k))}
        self._send(self.server.forwarder.invoke(body, headers))

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        """``GET /ping``: the container's health, for readiness checks."""
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
        for key, value in {**reply.headers, "x-amzn-RequestId": str(uuid.uuid4())}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class RuntimeServer(ThreadingHTTPServer):
    """The local runtime's HTTP server."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: RuntimeConfig) -> None:
        super().__init__(address, RuntimeHandler)
        self.forwarder = Forwarder(config)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tritonship.local.runtime")
    parser.add_argument(
        "--upstream", required=True, help="the container, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT_NAME)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log-hint", default="the container log")
    args = parser.parse_args(argv)
    config = RuntimeConfig(
        args.upstream.rstrip("/"), args.endpoint_name, args.region, args.log_hint
    )
    server = RuntimeServer(("127.0.0.1", args.port), config)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
