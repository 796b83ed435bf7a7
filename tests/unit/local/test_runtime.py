"""The local SageMaker runtime against a loopback stub container, through unmodified boto3.

The stub (a tiny http.server thread) answers, fails, stays silent or drips its answer a
byte at a time; boto3 reaches the runtime through the service-specific
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, and the tests check what botocore parses.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.servers import QuietHandler, serving
from tritonship.errors import UsageError
from tritonship.local.endpoint import runtime_client_hints
from tritonship.local.runtime import RuntimeConfig, RuntimeServer, check_endpoint_name

NAME = "notebook-endpoint-2024-05-01"
VARIANT = "Blue"
#: The container deadline in these tests (SageMaker's is 60 s).
DEADLINE = 0.5


@dataclass
class Stub:
    """What the stub container does next, and what it saw."""

    mode: str = "ok"
    seen: list[dict[str, str]] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class StubHandler(QuietHandler):
    """``POST /invocations`` in the way ``server.stub.mode`` says."""

    protocol_version = "HTTP/1.1"
    server: StubServer

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        """Record the request, then answer per mode."""
        stub = self.server.stub
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        stub.seen.append(dict(self.headers.items()))
        stub.peers.append(self.client_address[1])
        getattr(self, f"_{stub.mode}")()

    def _ok(self) -> None:
        headers = {}
        if attributes := self.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            headers["X-Amzn-SageMaker-Custom-Attributes"] = f"echo:{attributes}"
        self.reply(200, b'{"outputs": []}', headers=headers)

    def _ok_then_hang_up(self) -> None:
        """Answer as if keeping the connection alive, then close it (an idle timeout)."""
        self.reply(200, b"{}")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)
        self.close_connection = True

    def _refuse(self) -> None:
        self.reply(400, b'{"error":"bad image"}')

    def _crash(self) -> None:
        self.reply(500, b"internal", "text/plain")

    def _silent(self) -> None:
        self.server.stub.release.wait(30)
        self.reply(200, b"{}")

    def _drip(self) -> None:
        """40 bytes, one every 50 ms: each read is quick, the whole answer takes 2 s."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "40")
        self.end_headers()
        for _ in range(40):
            if self.server.stub.release.wait(0.05):
                return
            self.wfile.write(b" ")
            self.wfile.flush()


class StubServer(ThreadingHTTPServer):
    """The stub container."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.stub = Stub()


@pytest.fixture()
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Any, Stub]]:
    """A runtime (deadline 0.5 s, variant Blue) before a stub, and a boto3 client for it."""
    container = StubServer()
    with ExitStack() as stack:
        upstream = stack.enter_context(serving(container))
        stack.callback(container.stub.release.set)  # runs first: frees a silent stub
        config = RuntimeConfig(upstream, endpoint_name=NAME, variant_name=VARIANT, timeout=DEADLINE)
        url = stack.enter_context(serving(RuntimeServer(("127.0.0.1", 0), config)))
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        client = boto3.client(
            "sagemaker-runtime", config=Config(retries={"max_attempts": 1}, read_timeout=30)
        )
        assert client.meta.endpoint_url == url  # the service-specific variable reached boto3
        yield client, container.stub


def invoke(client, **extra):
    return client.invoke_endpoint(
        EndpointName=NAME, Body=b"{}", ContentType="application/json", **extra
    )


def test_a_silent_container_is_sagemakers_timeout_model_error(runtime) -> None:
    client, stub = runtime
    stub.mode = "silent"
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 0
    assert response["OriginalMessage"].startswith(
        "Your invocation timed out while waiting for a response from container primary."
    )
    assert response["Error"]["Message"].startswith(
        'Received server error (0) from primary with message "Your invocation timed out'
    )
    assert f"/aws/sagemaker/Endpoints/{NAME}" in response["LogStreamArn"]


def test_the_deadline_covers_the_whole_answer_not_the_gap_between_bytes(runtime) -> None:
    client, stub = runtime
    stub.mode = "drip"  # 2 s in all, 50 ms between bytes: a per-read timeout never fires
    started = time.monotonic()
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client)
    assert info.value.response["OriginalStatusCode"] == 0
    assert time.monotonic() - started < 1.5


def test_the_runtime_recovers_after_a_timeout(runtime) -> None:
    client, stub = runtime
    stub.mode = "silent"
    with pytest.raises(client.exceptions.ModelError):
        invoke(client)
    stub.mode = "ok"
    assert invoke(client)["Body"].read() == b'{"outputs": []}'


def test_custom_attributes_target_variant_and_inference_id_reach_the_container(runtime) -> None:
    client, stub = runtime
    response = invoke(client, CustomAttributes="trace=42", TargetVariant=VARIANT, InferenceId="r7")
    seen = {key.lower(): value for key, value in stub.seen[-1].items()}
    assert seen["x-amzn-sagemaker-custom-attributes"] == "trace=42"
    assert seen["x-amzn-sagemaker-target-variant"] == VARIANT
    assert seen["x-amzn-sagemaker-inference-id"] == "r7"
    assert seen["content-type"] == "application/json"
    assert "authorization" not in seen  # SageMaker strips headers outside its API
    assert response["CustomAttributes"] == "echo:trace=42"  # what the model set, verbatim
    assert response["InvokedProductionVariant"] == VARIANT
    assert response["ContentType"] == "application/json"


def test_no_custom_attributes_come_back_unless_the_model_sets_them(runtime) -> None:
    client, _ = runtime
    response = invoke(client)
    assert "CustomAttributes" not in response
    assert response["InvokedProductionVariant"] == VARIANT


def test_an_unknown_target_variant_is_a_validation_error(runtime) -> None:
    client, stub = runtime
    with pytest.raises(ClientError) as info:
        invoke(client, TargetVariant="Green")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "Green" in info.value.response["Error"]["Message"]
    assert stub.seen == []  # refused before the container


@pytest.mark.parametrize(
    ("mode", "status", "kind"), [("refuse", 400, "client"), ("crash", 500, "server")]
)
def test_a_container_error_keeps_its_status_and_message(runtime, mode, status, kind) -> None:
    client, stub = runtime
    stub.mode = mode
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client)
    response = info.value.response
    assert response["OriginalStatusCode"] == status
    assert response["Error"]["Message"].startswith(f"Received {kind} error ({status}) from primary")


def test_the_container_connection_is_kept_alive(runtime) -> None:
    client, stub = runtime
    for _ in range(3):
        invoke(client)["Body"].read()  # a body left unread would cost boto3 its connection
    assert len(set(stub.peers)) == 1


def test_a_connection_the_container_closed_while_idle_is_replaced(runtime) -> None:
    client, stub = runtime
    stub.mode = "ok_then_hang_up"
    invoke(client)["Body"].read()
    stub.mode = "ok"
    assert invoke(client)["Body"].read() == b'{"outputs": []}'
    assert len(set(stub.peers)) == 2


def test_an_unreachable_container_is_service_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    server = RuntimeServer(
        ("127.0.0.1", 0), RuntimeConfig(f"http://127.0.0.1:{dead}", endpoint_name=NAME)
    )
    with serving(server) as url:
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106
            config=Config(retries={"max_attempts": 1}),
        )
        with pytest.raises(ClientError) as info:
            invoke(client)
        assert info.value.response["Error"]["Code"] == "ServiceUnavailable"


@pytest.mark.parametrize("name", ["tritonship-local", "a", "nb-2024-05-01-12-00-00-123", "x" * 63])
def test_endpoint_names_sagemaker_accepts(name: str) -> None:
    assert check_endpoint_name(name) == name


@pytest.mark.parametrize("name", ["", "-lead", "trail-", "under_score", "x" * 64, "a/b"])
def test_endpoint_names_sagemaker_refuses(name: str) -> None:
    with pytest.raises(UsageError):
        check_endpoint_name(name)


def test_the_banner_suggests_the_service_specific_variable_and_credentials() -> None:
    text = "\n".join(runtime_client_hints("http://127.0.0.1:8081", NAME))
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081" in text
    assert "AWS_ENDPOINT_URL=" not in text
    assert "AWS_DEFAULT_REGION=" in text  # boto3 and AWS CLI v1 ignore AWS_REGION
    assert f"EndpointName='{NAME}'" in text and f"--endpoint-name {NAME}" in text
    assert "region" in text and "credentials" in text and "--no-sign-request" in text
