"""Faults: a backend stub killed while serving, the server killed mid-request."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.support.load import cpu_ticks, send_in_background, until
from tritonship.local.endpoint import LocalEndpoint
from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine, stub_processes
from tritonship.sagemaker.client import InvocationError
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import photo_jpeg


@pytest.fixture()
def local(built_repository: Path, tmp_path: Path) -> Iterator[LocalEndpoint]:
    """A private native endpoint (these tests break it), always stopped."""
    endpoint = LocalEndpoint(
        NativeEngine(built_repository, port=free_port(), run_dir=tmp_path / "run"),
        runtime_port=None,
    )
    endpoint.start(timeout=180)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def answer(url: str) -> tuple[int, np.ndarray | None]:
    request = encode_request([photo_jpeg("chelsea")])
    response = requests.post(
        f"{url}/invocations",
        data=request.body,
        timeout=120,
        headers={"Content-Type": request.content_type},
    )
    if response.status_code != 200:
        return response.status_code, None
    return 200, decode_response(response.content, response.headers["Content-Type"])


def dali_stub(engine: NativeEngine) -> int:
    [pid] = [p for p in engine.stub_pids() if b"/dali/" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pid


def test_killed_stub_never_gives_a_wrong_answer_and_the_endpoint_recovers(local):
    engine = local.engine
    status, baseline = answer(engine.url)
    assert status == 200 and local.heal() is None
    os.kill(dali_stub(engine), signal.SIGKILL)
    until(lambda: engine.health_problem() is not None)
    status, output = answer(engine.url)
    assert status >= 500 or np.allclose(output, baseline, atol=1e-5), "never a wrong answer"
    assert local.heal() == "1 backend stub process(es) died"
    assert requests.get(f"{engine.url}/ping", timeout=10).status_code == 200
    status, output = answer(engine.url)
    assert status == 200
    np.testing.assert_allclose(output, baseline, atol=1e-5)
    assert local.heal() is None


def test_server_killed_mid_request_is_a_clear_error_not_a_retry(local):
    engine = local.engine
    stub = dali_stub(engine)
    idle = cpu_ticks(stub)
    request = encode_request([photo_jpeg("astronaut")] * 64)
    thread, outcome = send_in_background(engine.url, request)
    until(lambda: cpu_ticks(stub) > idle + 5)  # the server is working on the request
    os.kill(engine.pid, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    [error] = outcome
    assert isinstance(error, InvocationError), error
    assert "lost during the request" in str(error) and "not retried" in str(error)
    local.stop()
    assert stub_processes(engine.shm_prefix) == [], "a killed server's stubs are stopped too"
