"""A batch of photos over 6 MB through asynchronous inference, end to end and offline.

``tritonship invoke --async`` uploads one binary+json request of ~100 photos (over 20 MB:
three times InvokeEndpoint's limit) to a local moto S3, calls InvokeEndpointAsync on the
local runtime, which reads it from S3, invokes the real tritonserver (the ``endpoint``
fixture) and writes the answer to the output path; ``invoke`` reads it back and prints
the classes. A batch with a corrupt JPEG lands in the failure path with DALI's error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.integration.conftest import Endpoint
from tritonship.bench.hostile import corrupt_jpeg
from tritonship.cli import main
from tritonship.local.async_inference import AsyncConfig
from tritonship.local.engine import free_port
from tritonship.local.runtime_proxy import RuntimeProxy
from tritonship.sagemaker.client import HttpTransport, classify
from tritonship.samples import PHOTOS, photo_jpeg

NAME = "tritonship-async"
BUCKET = "async-photos"
OUTPUT = f"s3://{BUCKET}/out/"
FAILURES = f"s3://{BUCKET}/failed/"
#: Quality-100 JPEGs of scikit-image's photos (100-215 KB each), padded to the longest.
BATCH = 100
MIN_BYTES = 20 << 20


@pytest.fixture()
def async_endpoint(
    endpoint: Endpoint, aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator:
    """The local runtime of an asynchronous endpoint before the server; S3 on moto."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    proxy = RuntimeProxy(
        endpoint.url,
        free_port(),
        endpoint_name=NAME,
        run_dir=tmp_path / "runtime",
        asynchronous=AsyncConfig(OUTPUT, FAILURES),
    )
    proxy.start()
    try:
        proxy.wait_ready()
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", proxy.url)
        yield s3
    finally:
        proxy.stop()


def photos(folder: Path, count: int, extra: dict[str, bytes] | None = None) -> list[Path]:
    """``count`` photo files, the four sample photos over and over (and ``extra``)."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = {name: photo_jpeg(name, quality=100) for name in PHOTOS}
    paths = []
    for index in range(count):
        name = PHOTOS[index % len(PHOTOS)]
        path = folder / f"{index:03d}-{name}.jpg"
        path.write_bytes(blobs[name])
        paths.append(path)
    for name, data in (extra or {}).items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def invoke(endpoint: Endpoint, files: list[Path], *extra: str) -> int:
    argv = ["invoke", *map(str, files), "--endpoint", NAME, "--async"]
    argv += ["--async-input", f"s3://{BUCKET}/in/", "--repo", str(endpoint.repository)]
    return main([*argv, "--poll", "0.2", *extra])


def test_a_20_mb_batch_is_classified_through_s3(
    endpoint: Endpoint, async_endpoint, tmp_path: Path, capsys
) -> None:
    files = photos(tmp_path / "photos", BATCH)
    assert invoke(endpoint, files, "--json") == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert len(results) == BATCH
    (size,) = {result["request_bytes"] for result in results}  # one request for all
    assert size > MIN_BYTES
    s3 = async_endpoint
    (uploaded,) = s3.list_objects_v2(Bucket=BUCKET, Prefix="in/")["Contents"]
    (output,) = s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]
    assert uploaded["Size"] == size and output["Key"].endswith(".out")
    assert f"output at {OUTPUT}" in captured.err
    # The same classes as the real-time path gives the same photo.
    (realtime,) = classify(HttpTransport(endpoint.url), {"rocket": photo_jpeg("rocket", 100)})
    rocket = next(r for r in results if r["image"].endswith("-rocket.jpg"))
    assert [p["index"] for p in rocket["top"]] == [p.index for p in realtime.predictions]


def test_a_poisoned_batch_lands_in_the_failure_path(
    endpoint: Endpoint, async_endpoint, tmp_path: Path, capsys
) -> None:
    files = photos(tmp_path / "poisoned", 3, {"corrupt.jpg": corrupt_jpeg()})
    assert invoke(endpoint, files) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the failure is at {FAILURES}" in err
    (failure,) = async_endpoint.list_objects_v2(Bucket=BUCKET, Prefix="failed/")["Contents"]
    assert failure["Key"].endswith("-error.out")
    body = async_endpoint.get_object(Bucket=BUCKET, Key=failure["Key"])["Body"].read()
    assert b"decoders.image" in body  # DALI's own error, as the container answered it
    assert async_endpoint.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("KeyCount") == 0
