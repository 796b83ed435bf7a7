"""``invoke`` and ``bench`` for any model, and a multi-model endpoint's TargetModel (no server)."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY

from tests.support.servers import QuietHandler
from tests.support.stubs import Stubs, answer
from tests.unit.bench.test_bench import level
from tritonship import cli
from tritonship.bench import runner
from tritonship.bench.load import Reply, SageMakerSender
from tritonship.bench.report import markdown
from tritonship.bench.runner import BenchConfig, BenchResult
from tritonship.bench.targets import error_check
from tritonship.cli.common import TARGET_MODEL_HINT
from tritonship.errors import UsageError
from tritonship.sagemaker import client
from tritonship.sagemaker.client import SageMakerTransport
from tritonship.sagemaker.tensors import encode_tensors
from tritonship.sagemaker.wire import EncodedRequest, ResponseError

ARCHIVE = "model_tf_dali.tar.gz"
SUM = np.arange(16, dtype=np.int32).reshape(1, 16)
ANSWER = json.dumps(
    {
        "model_name": "sm_model",
        "model_version": "1",
        "outputs": [
            {"name": "OUTPUT0", "datatype": "INT32", "shape": [1, 16], "data": list(range(16))}
        ],
    }
)


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    """An input .npy, a JSON body and an image, in ``tmp_path``."""
    np.save(tmp_path / "a.npy", SUM)
    (tmp_path / "body.json").write_text('{"inputs": []}')
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    return tmp_path


def usage_error(argv: list[str], capsys) -> str:
    """Run the CLI; it must refuse with exit 2 and one line; return that line."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err.strip()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["invoke"], "nothing to send (give IMAGE files, --input NAME=FILE.npy or --body FILE)"),
        (["invoke", "{d}/cat.jpg", "--input", "X={d}/a.npy"], "IMAGE and --input cannot be"),
        (["invoke", "--input", "X={d}/a.npy", "--body", "{d}/body.json"], "--input and --body"),
        (["invoke", "{d}/cat.jpg", "--output", "Y"], "--output does not apply to IMAGE"),
        (["invoke", "--body", "{d}/body.json", "--output", "Y"], "--output goes with --input)"),
        (["invoke", "--input", "X={d}/a.npy", "--content-type", "t"], "--content-type does not"),
        (["invoke", "{d}/cat.jpg", "--save-outputs", "{d}/o"], "--save-outputs does not apply"),
        (["invoke", "--input", "X={d}/a.npy", "--format", "raw"], "--format raw sends one image"),
        (["invoke", "--body", "{d}/body.json", "--format", "json"], "--format does not apply"),
        (["invoke", "--input", "X"], "--input 'X': expected NAME=FILE.npy"),
        (["invoke", "--input", "X={d}/a.npy", "--target-model", ARCHIVE], "--target-model needs"),
        (
            ["invoke", "{d}/cat.jpg", "--url", "http://h:1", "--target-model", ARCHIVE],
            f"--target-model needs --endpoint ({TARGET_MODEL_HINT})",
        ),
        (["invoke", "{d}/cat.jpg", "--target-variant", "B"], "--target-variant needs --endpoint"),
        (["bench", "--url", "http://h:1", "--target-model", ARCHIVE], "--target-model needs"),
        (["bench", "--body", "{d}/body.json", "--format", "json"], "--format does not apply to"),
        (["bench", "--body", "{d}/body.json", "--photo", "{d}/cat.jpg"], "--photo does not apply"),
        (["bench", "--content-type", "application/json"], "--content-type goes with --body"),
        (["bench", "--compare", "a,b", "--body", "{d}/body.json"], "--compare serves our"),
    ],
)
def test_combinations_that_mean_nothing_are_refused_in_one_line(argv, line, files, capsys):
    refused = usage_error([arg.format(d=files) for arg in argv], capsys)
    assert refused.startswith("tritonship: error: ") and line in refused


def test_the_new_options_parse():
    parse = cli.build_parser().parse_args
    args = parse(["invoke", "--input", "A=a.npy", "--input", "B=b.npy", "--output", "C"])
    assert (args.images, args.inputs, args.outputs) == ([], ["A=a.npy", "B=b.npy"], ["C"])
    args = parse(["invoke", "--body", "b", "--content-type", "t", "--save-outputs", "o"])
    assert (args.body, args.content_type, args.save_outputs) == (Path("b"), "t", Path("o"))
    args = parse(["bench", "--endpoint", "e", "--target-model", ARCHIVE, "--body", "b"])
    assert (args.target_model, args.body, args.format) == (ARCHIVE, Path("b"), None)


# --- TargetModel reaches InvokeEndpoint ---------------------------------------------------------


@pytest.fixture()
def runtime(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    """Every SageMakerTransport gets the stubbed sagemaker-runtime client."""
    monkeypatch.setattr(client, "runtime_client", lambda timeout=70.0: stubs.clients.runtime)
    return stubs


def test_invoke_sends_the_target_model_and_prints_the_outputs(runtime: Stubs, files, capsys):
    answer(runtime, ANSWER, variant=None, TargetModel=ARCHIVE)
    argv = ["invoke", "--endpoint", "demo", "--target-model", ARCHIVE, "--format", "json"]
    argv += ["--input", f"INPUT0={files / 'a.npy'}", "--output", "OUTPUT0", "--json"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_name"] == "sm_model"
    assert printed["outputs"] == [
        {"name": "OUTPUT0", "datatype": "INT32", "shape": [1, 16], "data": list(range(16))}
    ]


def test_a_body_goes_to_the_target_model_as_is(runtime: Stubs, files, capsys):
    body = (files / "body.json").read_bytes()
    data = b'{"models": ["a"]}'
    runtime.runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        {
            "EndpointName": "demo",
            "Body": body,
            "ContentType": "text/x-ours",
            "TargetModel": ARCHIVE,
        },
    )
    argv = ["invoke", "--endpoint", "demo", "--target-model", ARCHIVE]
    assert (
        cli.main([*argv, "--body", str(files / "body.json"), "--content-type", "text/x-ours"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {"models": ["a"]}


def test_a_model_error_is_one_line_with_the_servers_message(runtime: Stubs, files, capsys):
    message = (
        'Received client error (400) from primary with message "unexpected inference input '
        "'X' for model 'sm_model'\". See the container log for more information."
    )
    runtime.runtime.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=message,
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 400},
        expected_params={
            "EndpointName": "demo",
            "Body": ANY,
            "ContentType": ANY,
            "TargetModel": ARCHIVE,
        },
    )
    argv = ["invoke", "--endpoint", "demo", "--target-model", ARCHIVE]
    assert cli.main([*argv, "--input", f"X={files / 'a.npy'}"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"tritonship: error: ModelError: {message} (check the input names, datatypes and "
        "shapes against the model's config.pbtxt)\n"
    )


def test_the_transport_names_its_target_model(runtime: Stubs):
    transport = SageMakerTransport("demo", client=runtime.clients.runtime, target_model=ARCHIVE)
    assert transport.target.startswith(f"endpoint demo model {ARCHIVE} (")
    request = encode_tensors({"INPUT0": SUM}, binary=False)
    answer(runtime, ANSWER, variant=None, TargetModel=ARCHIVE)
    assert transport.send(request).body == ANSWER.encode()


def test_the_bench_sender_sends_the_target_model_from_every_thread(runtime: Stubs):
    request = encode_tensors({"INPUT0": SUM}, binary=False)
    sender = SageMakerSender("demo", request, 2, target_model=ARCHIVE)
    assert sender.target == f"endpoint demo model {ARCHIVE}"
    for _ in range(2):
        answer(runtime, ANSWER, variant=None, TargetModel=ARCHIVE)

    async def twice() -> list:
        try:
            return [await sender.send() for _ in range(2)]
        finally:
            await sender.close()

    assert [reply.body for reply in asyncio.run(twice())] == [ANSWER.encode()] * 2


# --- bench with a user's body -------------------------------------------------------------------


def test_a_body_is_benched_as_is_and_named_in_the_report(files: Path):
    config = BenchConfig(body=files / "body.json", content_type="text/x-ours", formats=("json",))
    payload = runner._payload(config)
    assert payload.requests == {"body": EncodedRequest(b'{"inputs": []}', "text/x-ours")}
    assert payload.image is None and payload.meta["unit"] == "requests"
    meta = runner._meta(config, payload.meta)
    assert meta["formats"] == ["body"] and meta["body"]["bytes"] == 14
    levels = [level("body", 1, 40.0)]
    result = BenchResult(meta, levels, [], [error_check(levels)])
    text = markdown(result)
    assert f"; request body {files / 'body.json'} (14 B, text/x-ours); " in text
    assert "| format | clients | requests/s |" in text and "| body | 1 | 40.0 |" in text
    assert "In-process ceiling: none for a request body" in text


def test_the_report_names_the_target_model():
    config = BenchConfig(endpoint="demo", target_model=ARCHIVE)
    meta = runner._meta(config, {"image": "rocket", "body": None, "unit": "images"})
    assert meta["target"] == f"endpoint demo model {ARCHIVE}" and meta["target_model"] == ARCHIVE
    with pytest.raises(UsageError, match="a target model needs an endpoint"):
        runner.make_sender(BenchConfig(target_model=ARCHIVE), EncodedRequest(b"", "t"), 1)


def test_the_probe_of_a_body_wants_an_answer_it_can_read():
    class Once:
        target = "fake"

        def __init__(self, body: bytes, content_type: str) -> None:
            self.reply = Reply(body, content_type)

        async def send(self) -> Reply:
            return self.reply

    asyncio.run(runner._probe(Once(b"anything", "text/plain"), None))
    asyncio.run(runner._probe(Once(ANSWER.encode(), "application/json"), None))
    with pytest.raises(ResponseError, match="cannot decode"):
        asyncio.run(runner._probe(Once(b'{"outputs": 3}', "application/json"), None))


# --- answers that are not tensors, from a container of the user's own -------------------------


class Answers(QuietHandler):
    """``POST /invocations`` answers ``answer`` (body, Content-Type), whatever was sent.

    SageMaker's own-container contract lets ``/invocations`` answer any content type, so
    ``--body`` meets answers that are no inference response at all.
    """

    answer: tuple[bytes, str] = (b"", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        body, content_type = self.answer
        self.reply(200, body, content_type)


@pytest.fixture()
def container() -> Iterator[tuple[str, type[Answers]]]:
    """A loopback container (always stopped); set its handler's ``answer``."""
    handler = type("Handler", (Answers,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_text_answer_is_printed_and_saved(container, files: Path, capsys):
    url, handler = container
    handler.answer = (b"label,score\ncat,0.9\n", "text/csv")
    argv = ["invoke", "--url", url, "--body", str(files / "body.json")]
    assert cli.main([*argv, "--save-outputs", str(files / "out")]) == 0
    captured = capsys.readouterr()
    assert captured.out == "label,score\ncat,0.9\n\n"
    assert (files / "out" / "response.bin").read_bytes() == handler.answer[0]


def test_a_binary_answer_is_kept_only_when_asked(container, files: Path, capsys):
    url, handler = container
    handler.answer = (b"\x89PNG\r\n\x1a\n\xff", "image/png")
    argv = ["invoke", "--url", url, "--body", str(files / "body.json")]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "the answer is 9 bytes of image/png, not text: keep it with --save-outputs" in captured.err
    )
    assert cli.main([*argv, "--save-outputs", str(files / "out")]) == 0
    assert (files / "out" / "response.bin").read_bytes() == handler.answer[0]


def test_tensors_that_come_back_as_something_else_are_an_error(container, files: Path, capsys):
    url, handler = container
    handler.answer = (b"<html>proxy error</html>", "text/html")
    assert cli.main(["invoke", "--url", url, "--input", f"INPUT0={files / 'a.npy'}"]) == 1
    assert capsys.readouterr().err == (
        f"tritonship: error: {url}/invocations answered text/html, not tensors\n"
    )
