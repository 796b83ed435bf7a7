"""``invoke`` and ``bench`` for any model, and a multi-model endpoint's TargetModel (no server)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY

from tests.support.stubs import Stubs, answer
from tritonship import cli
from tritonship.bench.load import SageMakerSender
from tritonship.cli.common import TARGET_MODEL_HINT
from tritonship.sagemaker import client
from tritonship.sagemaker.client import SageMakerTransport
from tritonship.sagemaker.tensors import encode_tensors

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
        (["bench", "--body", "{d}/body.json", "--image", "{d}/cat.jpg"], "--image does not apply"),
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
    answer(runtime, ANSWER, TargetModel=ARCHIVE)
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
    answer(runtime, ANSWER, TargetModel=ARCHIVE)
    assert transport.send(request).body == ANSWER.encode()


def test_the_bench_sender_sends_the_target_model_from_every_thread(runtime: Stubs):
    request = encode_tensors({"INPUT0": SUM}, binary=False)
    sender = SageMakerSender("demo", request, 2, target_model=ARCHIVE)
    assert sender.target == f"endpoint demo model {ARCHIVE}"
    for _ in range(2):
        answer(runtime, ANSWER, TargetModel=ARCHIVE)

    async def twice() -> list:
        try:
            return [await sender.send() for _ in range(2)]
        finally:
            await sender.close()

    assert [reply.body for reply in asyncio.run(twice())] == [ANSWER.encode()] * 2
