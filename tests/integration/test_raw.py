"""Raw JPEG requests end to end: curl, ``invoke --format raw``, the local runtime, the bench.

Hostile raw bodies (empty, truncated, random bytes, a bomb header) are in the hostile corpus
(tritonship.bench.hostile.raw_cases), sent by tests/integration/test_hostile.py to the
container port and through the local runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config

from tests.integration.conftest import RUNTIME_ENDPOINT, Endpoint
from tritonship import cli
from tritonship.bench.runner import BenchConfig, run_bench
from tritonship.sagemaker.client import SageMakerTransport, classify
from tritonship.sagemaker.wire import RAW_CONTENT_TYPE, decode_response, encode_request
from tritonship.samples import photo_jpeg


def binary_answer(endpoint: Endpoint, image: bytes) -> np.ndarray:
    request = encode_request([image])
    answer = requests.post(
        f"{endpoint.url}/invocations",
        data=request.body,
        headers={"Content-Type": request.content_type},
        timeout=120,
    )
    return decode_response(answer.content, answer.headers["Content-Type"])


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_docs_curl_one_liner(endpoint: Endpoint, tmp_path: Path):
    """docs/invoking.md: curl --data-binary @cat.jpg with json-header-size=0."""
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(photo_jpeg("chelsea"))
    headers = tmp_path / "headers.txt"
    body = subprocess.run(
        [
            *["curl", "-s", "--fail", "--data-binary", f"@{photo}"],
            *["-H", f"Content-Type: {RAW_CONTENT_TYPE}", "-D", str(headers)],
            f"{endpoint.url}/invocations",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    content_type = next(
        line.split(":", 1)[1].strip()
        for line in headers.read_text().splitlines()
        if line.lower().startswith("content-type:")
    )
    output = decode_response(body, content_type)
    assert output.shape == (1, 1001)
    np.testing.assert_allclose(output, binary_answer(endpoint, photo.read_bytes()), atol=1e-6)


def test_invoke_format_raw(endpoint: Endpoint, tmp_path: Path, capsys):
    paths = []
    for name in ("chelsea", "coffee"):
        paths.append(tmp_path / f"{name}.jpg")
        paths[-1].write_bytes(photo_jpeg(name))
    args = ["invoke", *map(str, paths), "--url", endpoint.url, "--json", "--top-k", "3"]
    assert cli.main([*args, "--repo", str(endpoint.repository), "--format", "raw"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert cli.main([*args, "--repo", str(endpoint.repository)]) == 0
    binary = json.loads(capsys.readouterr().out)
    assert [r["top"][0]["index"] for r in raw] == [b["top"][0]["index"] for b in binary]
    sizes = [r["request_bytes"] for r in raw]
    assert sizes == [p.stat().st_size for p in paths], "each image alone, as the whole body"


def test_the_local_runtime_passes_raw_requests_through(runtime: str, endpoint: Endpoint):
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=runtime,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
        config=Config(retries={"max_attempts": 1}),
    )
    photo = photo_jpeg("rocket")
    [result] = classify(SageMakerTransport(RUNTIME_ENDPOINT, client=client), {"r": photo}, raw=True)
    expected = binary_answer(endpoint, photo)[0]
    assert result.predictions[0].index == int(np.argmax(expected))
    assert result.predictions[0].probability == pytest.approx(float(expected.max()), abs=1e-6)


def test_bench_format_raw(endpoint: Endpoint):
    config = BenchConfig(
        url=endpoint.url,
        concurrency=[2],
        duration=2.0,
        warmup=0.5,
        formats=("raw",),
        repository=endpoint.repository,
        ceiling=False,
        progress=False,
    )
    [level] = run_bench(config).levels
    assert level.format == "raw" and level.requests > 0 and level.errors == 0
    assert level.request_bytes < 200_000, "the JPEG alone, no JSON header"
