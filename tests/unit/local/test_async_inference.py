"""InvokeEndpointAsync in the local runtime, through unmodified boto3, with moto's S3.

A stub container (a tiny http.server thread) answers, refuses, stays silent or waits for a
second request; the runtime runs in a thread with an AsyncInferenceConfig; boto3 reaches
it with ``endpoint_url`` and S3 is a local moto server (``AWS_ENDPOINT_URL``). What is
checked is what botocore parses (the 202's InferenceId and locations) and what lands in S3.
The real server, a 20 MB batch of photos and ``invoke --async`` are in
tests/integration/test_async_invoke.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.servers import QuietHandler, serving
from tritonship.local.async_inference import AsyncConfig, AsyncInvocations, Job
from tritonship.local.runtime import Forwarder, RuntimeConfig, RuntimeServer
from tritonship.sagemaker.asynchronous import Submission, wait

NAME = "async-endpoint"
BUCKET = "async-test"
OUTPUT = f"s3://{BUCKET}/out/"
FAILURES = f"s3://{BUCKET}/failed/"


@dataclass
class Stub:
    """What the stub container does, and the headers it saw."""

    seen: list[dict[str, str]] = field(default_factory=list)
    barrier: threading.Barrier = field(default_factory=lambda: threading.Barrier(2, timeout=10))


class StubHandler(QuietHandler):
    """``POST /invocations``: the body's first word picks the answer."""

    protocol_version = "HTTP/1.1"
    server: StubServer

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.stub.seen.append(dict(self.headers.items()))
        word = body.split(b" ", 1)[0]
        if word == b"poison":
            self.reply(400, b'{"error":"cannot decode image 3"}')
        elif word == b"silent":
            time.sleep(3)  # past the 1 s InvocationTimeoutSeconds of the test
            self.reply(200, b"{}")
        elif word == b"together":
            self.server.stub.barrier.wait()  # both requests must be in flight at once
            self.reply(200, b'{"together": true}')
        else:
            self.reply(200, json.dumps({"bytes": len(body)}).encode())


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.stub = Stub()


@pytest.fixture()
def s3(aws_env: str):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture()
def container() -> Iterator[tuple[str, Stub]]:
    server = StubServer()
    with serving(server) as url:
        yield url, server.stub


def runtime_client(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


@contextmanager
def runtime(upstream: str, asynchronous: AsyncConfig | None) -> Iterator:
    config = RuntimeConfig(upstream, NAME, asynchronous=asynchronous)
    with serving(RuntimeServer(("127.0.0.1", 0), config)) as url:
        yield runtime_client(url)


@pytest.fixture()
def endpoint(s3, container) -> Iterator:
    """The runtime of an asynchronous endpoint (two requests at once) before the stub."""
    with runtime(container[0], AsyncConfig(OUTPUT, FAILURES, 2)) as client:
        yield client


def put(s3, key: str, body: bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def landed(s3, answer: dict, timeout: float = 15.0):
    """Wait (polling S3, as the SageMaker SDK does) for the output or the failure."""
    submission = Submission(
        answer["InferenceId"], "", answer["OutputLocation"], answer["FailureLocation"]
    )
    return wait(s3, submission, timeout, poll=0.05)


def test_the_input_is_read_from_s3_and_the_answer_written_there(endpoint, s3, container) -> None:
    location = put(s3, "in/a.bin", b"x" * 1000)
    answer = endpoint.invoke_endpoint_async(
        EndpointName=NAME,
        InputLocation=location,
        ContentType="application/vnd.sagemaker-triton.binary+json;json-header-size=0",
        Accept="application/json",
        CustomAttributes="trace=7",
        InferenceId="request-7",
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["InferenceId"] == "request-7"
    assert answer["OutputLocation"] == f"{OUTPUT}request-7.out"
    assert answer["FailureLocation"] == f"{FAILURES}request-7-error.out"
    result = landed(s3, answer)
    assert result.ok and json.loads(result.body) == {"bytes": 1000}
    assert result.content_type == "application/json"
    (seen,) = container[1].seen
    assert seen["Content-Type"].endswith("json-header-size=0")  # X-Amzn-SageMaker-Content-Type
    assert seen["Accept"] == "application/json"
    assert seen["X-Amzn-SageMaker-Custom-Attributes"] == "trace=7"
    assert seen["X-Amzn-SageMaker-Inference-Id"] == "request-7"


def test_an_inference_id_is_generated_and_names_the_output(endpoint, s3) -> None:
    answer = endpoint.invoke_endpoint_async(EndpointName=NAME, InputLocation=put(s3, "in/b", b"y"))
    inference_id = answer["InferenceId"]
    assert len(inference_id) == 36 and answer["OutputLocation"].endswith(f"/{inference_id}.out")
    assert landed(s3, answer).ok


def test_a_poisoned_input_lands_in_the_failure_path(endpoint, s3) -> None:
    answer = endpoint.invoke_endpoint_async(
        EndpointName=NAME, InputLocation=put(s3, "in/p", b"poison pill")
    )
    result = landed(s3, answer)
    assert not result.ok and result.location == answer["FailureLocation"]
    assert json.loads(result.body) == {"error": "cannot decode image 3"}
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3.get_object(Bucket=BUCKET, Key=answer["OutputLocation"].split("/", 3)[3])


def test_a_missing_input_is_a_failure_not_an_error_of_the_call(endpoint, s3) -> None:
    answer = endpoint.invoke_endpoint_async(
        EndpointName=NAME, InputLocation=f"s3://{BUCKET}/in/nothing-here"
    )
    result = landed(s3, answer)
    assert not result.ok and b"cannot read the input" in result.body


def test_a_request_past_its_invocation_timeout_fails(endpoint, s3) -> None:
    answer = endpoint.invoke_endpoint_async(
        EndpointName=NAME, InputLocation=put(s3, "in/s", b"silent"), InvocationTimeoutSeconds=1
    )
    result = landed(s3, answer)
    assert not result.ok and b"Your invocation timed out" in result.body


def test_an_inline_body_and_the_path_extension_and_filename(endpoint, s3) -> None:
    answer = endpoint.invoke_endpoint_async(
        EndpointName=NAME, Body=b"z" * 128_000, S3OutputPathExtension="day1", Filename="z.json"
    )
    assert answer["OutputLocation"] == f"{OUTPUT}day1/z.json"
    assert json.loads(landed(s3, answer).body) == {"bytes": 128_000}


def test_max_concurrent_invocations_run_at_once(endpoint, s3) -> None:
    """Each of the two requests waits for the other inside the container: both must run."""
    answers = [
        endpoint.invoke_endpoint_async(
            EndpointName=NAME, InputLocation=put(s3, f"in/t{i}", b"together")
        )
        for i in range(2)
    ]
    assert all(landed(s3, answer).ok for answer in answers)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Body and InputLocation are mutually exclusive"),
        (
            {"Body": b"a", "InputLocation": f"s3://{BUCKET}/x"},
            "Body and InputLocation are mutually exclusive",
        ),
        ({"Body": b"a" * 128_001}, "over 128000"),
        ({"Body": b"a", "InvocationTimeoutSeconds": 3601}, "between 1 and 3600"),
        ({"Body": b"a", "RequestTTLSeconds": 21601}, "between 60 and 21600"),
        ({"InputLocation": "https://example.com/x"}, "s3:// URIs only"),
        ({"Body": b"a", "EndpointName": "other"}, "Endpoint other of account"),
    ],
)
def test_what_sagemaker_refuses_at_once(endpoint, arguments: dict, message: str) -> None:
    with pytest.raises(ClientError, match=message) as caught:
        endpoint.invoke_endpoint_async(**{"EndpointName": NAME, **arguments})
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_a_real_time_call_on_an_asynchronous_endpoint_is_refused(endpoint) -> None:
    with pytest.raises(ClientError, match="does not support real-time invocations"):
        endpoint.invoke_endpoint(EndpointName=NAME, Body=b"{}", ContentType="application/json")


def test_an_asynchronous_call_on_a_real_time_endpoint_is_refused(s3, container) -> None:
    with runtime(container[0], None) as client:
        with pytest.raises(ClientError, match="not an asynchronous endpoint"):
            client.invoke_endpoint_async(EndpointName=NAME, InputLocation=f"s3://{BUCKET}/x")
        assert client.invoke_endpoint(EndpointName=NAME, Body=b"{}")["Body"].read()


def test_a_request_older_than_its_ttl_expires_unprocessed(s3, container) -> None:
    config = AsyncConfig(OUTPUT, FAILURES)
    queue = AsyncInvocations(config, Forwarder(RuntimeConfig(container[0], NAME)))
    old = time.monotonic() - 61
    job = Job("old", b"x", None, {}, f"{OUTPUT}old.out", f"{FAILURES}old-error.out", 60, 5, old)
    queue.process(job)
    queue.close()
    failure = s3.get_object(Bucket=BUCKET, Key="failed/old-error.out")["Body"].read()
    assert b"the request expired" in failure and container[1].seen == []


# --- invoke --async: upload, call, poll -----------------------------------------------------


@pytest.fixture()
def async_cli(endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """``tritonship invoke --async`` pointed at the runtime (S3 stays on moto)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.meta.endpoint_url)
    return ["invoke", "--endpoint", NAME, "--async", "--async-input", f"s3://{BUCKET}/in/"]


def test_invoke_async_uploads_calls_and_prints_the_answer(async_cli, s3, tmp_path, capsys) -> None:
    from tritonship.cli import main

    body = tmp_path / "big.bin"
    body.write_bytes(b"b" * 7_000_000)  # over InvokeEndpoint's 6 MB: fine asynchronously
    assert main([*async_cli, "--body", str(body), "--poll", "0.05"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"bytes": 7_000_000}
    assert f"at s3://{BUCKET}/in/" in captured.err and f"output at {OUTPUT}" in captured.err
    uploaded = s3.list_objects_v2(Bucket=BUCKET, Prefix="in/")["Contents"]
    assert [item["Size"] for item in uploaded] == [7_000_000]


def test_invoke_async_of_a_poisoned_input_says_where_the_failure_is(
    async_cli, tmp_path, capsys
) -> None:
    from tritonship.cli import main

    body = tmp_path / "poison.bin"
    body.write_bytes(b"poison")
    assert main([*async_cli, "--body", str(body), "--poll", "0.05"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'failed: {"error":"cannot decode image 3"}' in err
    assert f"the failure is at {FAILURES}" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--async"], "--async needs --endpoint"),
        (["--endpoint", NAME, "--async"], "--async needs --async-input"),
        (["--endpoint", NAME, "--async-input", "s3://b/"], "add --async"),
        (
            ["--endpoint", NAME, "--async", "--async-input", "s3://b/", "--target-variant", "x"],
            "InvokeEndpointAsync takes neither",
        ),
    ],
)
def test_invoke_async_options_are_checked(tmp_path, capsys, extra: list[str], message: str) -> None:
    from tritonship.cli import main

    body = tmp_path / "b.json"
    body.write_text("{}")
    assert main(["invoke", "--body", str(body), *extra]) == 2
    assert message in capsys.readouterr().err


# --- serve --async-output ---------------------------------------------------------------------


def test_serve_options_make_the_async_config() -> None:
    from tritonship.local.endpoint import ServeOptions, async_config
    from tritonship.sagemaker.settings import SageMakerEnv

    single = SageMakerEnv({})
    assert async_config(ServeOptions(), single) is None
    config = async_config(ServeOptions(async_output=OUTPUT, async_max_concurrent=3), single)
    assert config == AsyncConfig(OUTPUT, f"{OUTPUT}failures/", 3)


@pytest.mark.parametrize(
    ("options", "env", "match"),
    [
        ({"async_output": OUTPUT}, {"SAGEMAKER_MULTI_MODEL": "true"}, "cannot be a multi-model"),
        ({"async_output": OUTPUT, "runtime_port": 0}, {}, "needs the local runtime"),
        ({"async_output": "out/"}, {}, "is not an s3://bucket/key URI"),
        ({"async_failure": FAILURES}, {}, "--async-failure needs --async-output"),
    ],
)
def test_serve_refuses_an_async_endpoint_it_cannot_run(
    options: dict, env: dict, match: str
) -> None:
    from tritonship.errors import UsageError
    from tritonship.local.endpoint import ServeOptions, async_config
    from tritonship.sagemaker.settings import SageMakerEnv

    with pytest.raises(UsageError, match=match):
        async_config(ServeOptions(**options), SageMakerEnv(env))
