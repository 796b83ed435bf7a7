"""``serve --capture DIR`` and ``serve --mirror URL``: the local runtime's tap, through boto3.

The runtime runs in-process in front of a stand-in of the ensemble's ``/invocations``
(tests/support/triton_stub.py); unmodified boto3 reaches it through
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. What is captured must read back as SageMaker's
records do (tests/unit/replay/test_capture_decode.py checks that format against AWS's guide).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.servers import serving
from tests.support.triton_stub import triton_stub
from tritonship.errors import UsageError
from tritonship.local.capture import CaptureSettings, CaptureWriter, Sampler
from tritonship.local.endpoint import LocalEndpoint, ServeOptions
from tritonship.local.mirror import Mirror, MirrorSettings
from tritonship.local.runtime import RuntimeConfig, RuntimeServer
from tritonship.local.traffic_tap import Tap, TrafficOptions, check_runtime
from tritonship.sagemaker.capture import read_folder
from tritonship.sagemaker.wire import encode_raw, encode_request
from tritonship.samples import photo_jpeg

NAME = "capture-demo"
VARIANT = "Blue"


@pytest.fixture()
def client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


@contextmanager
def runtime(upstream: str, tap: Tap) -> Iterator[tuple[Any, RuntimeServer]]:
    """The runtime before ``upstream`` with ``tap``, and a boto3 client for it."""
    server = RuntimeServer(("127.0.0.1", 0), RuntimeConfig(upstream, NAME, variant_name=VARIANT))
    server.tap = tap
    with ExitStack() as stack:
        url = stack.enter_context(serving(server))
        stack.callback(tap.close)
        client = boto3.client(
            "sagemaker-runtime", endpoint_url=url, config=Config(retries={"max_attempts": 1})
        )
        yield client, server


def invoke(client: Any, body: bytes, content_type: str, **extra: Any) -> Any:
    return client.invoke_endpoint(EndpointName=NAME, Body=body, ContentType=content_type, **extra)


def test_captured_calls_read_back_in_sagemaker_s_layout(tmp_path: Path, client_env) -> None:
    photos = [photo_jpeg("chelsea"), photo_jpeg("coffee")]
    writer = CaptureWriter(CaptureSettings(tmp_path / "capture", NAME, VARIANT))
    with triton_stub() as stub, runtime(stub.url, Tap(writer)) as (client, _):
        binary = encode_request(photos, binary=True)
        answered = invoke(client, binary.body, binary.content_type, InferenceId="req-7")
        answer = answered["Body"].read()
        plain = encode_request(photos[:1], binary=False)
        invoke(client, plain.body, plain.content_type)
        raw = encode_raw(photos[1])
        invoke(client, raw.body, raw.content_type)
    relative = writer.path.relative_to(tmp_path / "capture").parts
    assert relative[:2] == (NAME, VARIANT) and len(relative) == 7
    assert relative[-1].endswith(".jsonl")
    first, second, third = read_folder(tmp_path / "capture").records
    assert first.variant == VARIANT and first.inference_id == "req-7"
    assert (first.request.encoding, first.request.content_type) == ("BASE64", binary.content_type)
    assert first.request.body() == binary.body and first.answer.body() == answer
    assert (second.request.encoding, second.request.body()) == ("JSON", plain.body)
    assert third.request.body() == photos[1]
    assert len({first.event_id, second.event_id, third.event_id}) == 3


def test_container_errors_are_not_captured(tmp_path: Path, client_env) -> None:
    writer = CaptureWriter(CaptureSettings(tmp_path / "capture", NAME, VARIANT))
    with triton_stub(fail=True) as stub, runtime(stub.url, Tap(writer)) as (client, _):
        request = encode_request([photo_jpeg("rocket")])
        with pytest.raises(client.exceptions.ModelError):
            invoke(client, request.body, request.content_type)
    assert writer.written == 0 and not (tmp_path / "capture").exists()


def test_the_sampler_takes_an_exact_evenly_spread_share() -> None:
    sampler = Sampler(25)
    taken = [sampler.take() for _ in range(12)]
    assert taken == [False, False, False, True] * 3
    assert all(Sampler(100).take() for _ in range(5))


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a mirror log: one JSON object per line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_mirror_logs_agreement_and_disagreement(tmp_path: Path, client_env) -> None:
    photo = photo_jpeg("astronaut")
    request = encode_request([photo], binary=True)
    for shift, verdict in ((0.0, True), (0.01, False)):
        log = tmp_path / f"mirror-{shift}.jsonl"
        with ExitStack() as stack:
            live = stack.enter_context(triton_stub())
            second = stack.enter_context(triton_stub(shift=shift))
            mirror = Mirror(MirrorSettings(second.url, log))
            client, server = stack.enter_context(runtime(live.url, Tap(mirror=mirror)))
            invoke(client, request.body, request.content_type)
            mirror.close()  # after the copies already queued
        (entry,) = read_log(log)
        assert entry["agree"] is verdict
        assert entry["mirror"]["status"] == 200 and entry["mirror"]["url"].endswith("/invocations")
        assert entry["agreement"]["kind"] == "classifier"
        assert second.seen == [(request.body, request.content_type)]
    assert "probabilities differ beyond rtol" in entry["agreement"]["detail"]


def test_a_failing_mirror_never_reaches_the_caller(tmp_path: Path, client_env) -> None:
    log = tmp_path / "mirror.jsonl"
    with ExitStack() as stack:
        live = stack.enter_context(triton_stub())
        broken = stack.enter_context(triton_stub(fail=True))
        mirror = Mirror(MirrorSettings(broken.url, log))
        client, _ = stack.enter_context(runtime(live.url, Tap(mirror=mirror)))
        request = encode_request([photo_jpeg("coffee")])
        assert invoke(client, request.body, request.content_type)["Body"].read()
        mirror.close()  # after the copies already queued
    (entry,) = read_log(log)
    assert entry["agree"] is None and entry["mirror"]["status"] == 500
    assert (mirror.counts.sent, mirror.counts.failed) == (1, 1)


def test_traffic_options_go_to_the_runtime_s_command_line(tmp_path: Path) -> None:
    options = TrafficOptions(tmp_path / "c", 50, "http://127.0.0.1:9090", 10)
    args = options.runtime_args(tmp_path / "run")
    assert args == [
        "--capture-dir",
        str((tmp_path / "c").resolve()),
        "--capture-percent",
        "50",
        "--mirror",
        "http://127.0.0.1:9090",
        "--mirror-percent",
        "10",
        "--mirror-log",
        str((tmp_path / "run" / "mirror.jsonl").resolve()),
    ]
    with pytest.raises(UsageError, match="not a share"):
        TrafficOptions(tmp_path, capture_percent=0)
    with pytest.raises(UsageError, match="not a URL"):
        TrafficOptions(mirror_url="127.0.0.1:9090")


def test_capture_without_the_runtime_is_refused_before_anything_starts(tmp_path: Path) -> None:
    check_runtime(TrafficOptions(tmp_path), 8081)
    options = ServeOptions(runtime_port=0, traffic=TrafficOptions(tmp_path))

    def no_engine(*_: Any) -> Any:
        raise AssertionError("no engine may start")

    with pytest.raises(UsageError, match="--runtime-port 0 starts no local runtime"):
        LocalEndpoint.open(options, engines=no_engine)


def test_serve_parses_capture_and_mirror() -> None:
    from tritonship.cli import build_parser
    from tritonship.cli.traffic_loop import traffic_options

    args = build_parser().parse_args(
        ["serve", "--capture", "cap", "--mirror", "http://127.0.0.1:9", "--mirror-percent", "5"]
    )
    options = traffic_options(args)
    assert (options.capture_dir, options.mirror_url, options.mirror_percent) == (
        Path("cap"),
        "http://127.0.0.1:9",
        5.0,
    )
    assert traffic_options(build_parser().parse_args(["serve"])) is None


def test_the_runtime_process_takes_the_options(tmp_path: Path) -> None:
    import argparse

    from tritonship.local.traffic_tap import add_runtime_options, tap_from_args

    parser = argparse.ArgumentParser()
    add_runtime_options(parser)
    with triton_stub() as stub:
        args = parser.parse_args(
            ["--capture-dir", str(tmp_path), "--mirror", stub.url, "--mirror-log", "m.jsonl"]
        )
        tap = tap_from_args(args, NAME, VARIANT)
        try:
            assert tap.capture.settings.folder == tmp_path
            assert (tap.capture.settings.endpoint, tap.capture.settings.variant) == (NAME, VARIANT)
            assert tap.mirror.settings.url == stub.url
        finally:
            tap.close()
    assert json.loads(json.dumps(tap.mirror.counts.__dict__))["sent"] == 0
