"""The loop with production traffic, offline: capture, decode, replay against two builds.

``serve --capture`` on the TensorFlow build (native engine, with the local runtime) records
the sample photos sent through InvokeEndpoint; ``capture decode`` gives back the JPEGs;
``replay`` sends the captured requests to the TensorFlow build and to its ONNX build
(``onnx_repository``), which agree, then to a deliberately broken build (the DALI
pipeline scaling pixels to [0, 1] instead of [-1, 1]), which is caught with every
disagreeing request listed. Reports go to tmp_path, never to docs/results/.

The graphs have random weights: their rows are near-uniform (about 1/1001 each) and the
broken preprocessing moves them by about 1e-6 absolute, 1e-3 relative, without changing
the top-1 class; replay's default tolerance (rtol 1e-5) is what catches it, while the ONNX
build stays within 3.5e-7 relative of TensorFlow (tests/integration/test_onnx.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tritonship.cli import main
from tritonship.local.endpoint import LocalEndpoint, ServeOptions
from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine
from tritonship.local.traffic_tap import TrafficOptions
from tritonship.sagemaker.wire import encode_raw, encode_request
from tritonship.samples import PHOTOS, photo_jpeg

ENDPOINT = "traffic-loop"
#: The AWS example's normalisation step as tritonship's pipeline writes it, and a wrong one.
RIGHT_SCALING = "return resized / 127.5 - 1.0"
WRONG_SCALING = "return resized / 255.0"


@pytest.fixture(scope="module")
def broken_repository(built_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built repository with the wrong pixel scaling in its DALI pipeline."""
    repo = tmp_path_factory.mktemp("broken") / "model_repository"
    shutil.copytree(built_repository, repo, copy_function=os.link)
    pipeline = repo / "dali" / "1" / "dali.py"
    text = pipeline.read_text()
    assert RIGHT_SCALING in text, "the pipeline's scaling step moved: update this test"
    pipeline.unlink()  # a hard link: never write through to the session's repository
    pipeline.write_text(text.replace(RIGHT_SCALING, WRONG_SCALING))
    return repo


@pytest.fixture()
def tensorflow_endpoint(
    built_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalEndpoint]:
    """serve --capture DIR: the TensorFlow build, natively, behind the local runtime."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    options = ServeOptions(
        repo=built_repository,
        port=free_port(),
        runtime_port=free_port(),
        endpoint_name=ENDPOINT,
        traffic=TrafficOptions(tmp_path / "capture"),
    )
    endpoint = LocalEndpoint.open(options)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def send_production_traffic(runtime_url: str) -> list[bytes]:
    """The photos through InvokeEndpoint: one binary batch, each alone as JSON, one raw."""
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=runtime_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )
    photos = [photo_jpeg(name) for name in PHOTOS]
    requests = [encode_request(photos, binary=True)]
    requests += [encode_request([photo], binary=False) for photo in photos]
    requests.append(encode_raw(photos[2]))
    for request in requests:
        client.invoke_endpoint(
            EndpointName=ENDPOINT, Body=request.body, ContentType=request.content_type
        )
    return photos


def replay(capture: Path, out: Path, *targets: str) -> tuple[int, dict, str]:
    code = main(["replay", str(capture), "--out", str(out), "--no-results", "--quiet", *targets])
    report = json.loads((out / "replay.json").read_text())
    return code, report, (out / "replay.md").read_text()


def test_capture_decode_and_replay_against_the_onnx_build_and_a_broken_one(
    tensorflow_endpoint: LocalEndpoint,
    onnx_repository: Path,
    broken_repository: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    assert tensorflow_endpoint.runtime is not None
    photos = send_production_traffic(tensorflow_endpoint.runtime.url)
    capture = tmp_path / "capture"
    (captured,) = capture.glob(f"{ENDPOINT}/AllTraffic/*/*/*/*/*.jsonl")
    assert len(captured.read_text().splitlines()) == 6

    assert main(["capture", "decode", str(capture), "--out", str(tmp_path / "decoded")]) == 0
    assert "6 record(s)" in capsys.readouterr().out
    recovered = sorted(p.read_bytes() for p in (tmp_path / "decoded").glob("*/INPUT-*.jpg"))
    assert recovered == sorted([*photos, *photos, photos[2]])

    tensorflow = tensorflow_endpoint.engine.url
    code, report, _ = replay(capture, tmp_path / "same", "--url", tensorflow)
    assert code == 0 and report["summary"]["agreeing"] == 6, report["summary"]

    with NativeEngine(onnx_repository, port=free_port(), run_dir=tmp_path / "onnx-run") as onnx:
        code, report, markdown = replay(
            capture, tmp_path / "onnx", "--url", tensorflow, "--against", onnx.url,
            "--labels", "TensorFlow,ONNX",
        )  # fmt: skip
    summary = report["summary"]
    assert code == 0, markdown
    assert (summary["compared"], summary["agreeing"], summary["images"]) == (6, 6, 9)
    assert summary["top1_equal_rows"] == summary["rows"] == 9
    assert summary["mean_top5_overlap"] == 5.0 and summary["max_abs_diff"] < 1e-8
    assert "## Agreement: all agree" in markdown and "| TensorFlow | 6 | 0 |" in markdown

    with NativeEngine(broken_repository, port=free_port(), run_dir=tmp_path / "b-run") as broken:
        code, report, markdown = replay(
            capture, tmp_path / "broken", "--url", tensorflow, "--against", broken.url,
            "--labels", "TensorFlow,broken",
        )  # fmt: skip
    assert code == 1
    assert report["summary"]["disagreeing"] == 6, report["summary"]
    assert "## Requests that disagree (6)" in markdown
    for request in report["requests"]:
        assert request["agree"] is False
        assert f"| {request['eventId']} |" in markdown
        assert "probabilities differ beyond" in request["agreement"]["detail"]
