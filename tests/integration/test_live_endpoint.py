"""Acceptance tests through boto3 InvokeEndpoint only: for the endpoint ``promote`` made.

``TRITONSHIP_ENDPOINT=NAME make test-endpoint`` runs them against that SageMaker endpoint
(the usual AWS variables choose the account and region), and skips every test that needs
the container port, saying why. ``TRITONSHIP_REPO`` names the repository that was promoted:
with it the answers are also compared with the in-process pipeline, and, for official
weights, the labels are checked. Without TRITONSHIP_ENDPOINT they skip; test_endpoint_mode.py
runs them against the local runtime, which stands in for the live endpoint.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tritonship.bench.hostile import corpus
from tritonship.repository.labels import inception_labels
from tritonship.repository.manifest import read_manifest
from tritonship.sagemaker.wire import (
    FORMATS,
    MAX_PAYLOAD_BYTES,
    decode_response,
    encode_as,
    encode_request,
)
from tritonship.samples import PHOTOS, encode, photo_array, photo_jpeg

pytestmark = pytest.mark.live_endpoint

#: Top-5 labels a correctly deployed Inception V3 (official weights) gives the photos.
EXPECTED = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug", "eggnog"},
    "rocket": {"missile", "projectile", "space shuttle"},
}
#: Median latency allowed for one photo, client to client (TRITONSHIP_LATENCY_BUDGET_MS).
LATENCY_BUDGET_MS = float(os.environ.get("TRITONSHIP_LATENCY_BUDGET_MS", "5000"))
ATOL = 1e-5


@dataclass(frozen=True)
class Live:
    """The endpoint under test: its name, a boto3 client, the promoted repository if known."""

    name: str
    client: Any
    repository: Path | None

    def invoke(self, body: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
        """InvokeEndpoint; the answer with its body read into ``Data``."""
        response = self.client.invoke_endpoint(
            EndpointName=self.name, Body=body, ContentType=content_type, **extra
        )
        return {**response, "Data": response["Body"].read()}

    def classify(self, images: list[bytes], fmt: str = "binary") -> np.ndarray:
        """The probability rows of ``images`` sent in one request of format ``fmt``."""
        request = encode_as(images, fmt)
        answer = self.invoke(request.body, request.content_type)
        return decode_response(answer["Data"], answer["ContentType"])


@pytest.fixture(scope="module")
def live() -> Live:
    """The endpoint TRITONSHIP_ENDPOINT names (skip without it)."""
    import boto3
    from botocore.config import Config

    name = os.environ.get("TRITONSHIP_ENDPOINT")
    if not name:
        pytest.skip("set TRITONSHIP_ENDPOINT=NAME to invoke an endpoint (make test-endpoint)")
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, read_timeout=70, connect_timeout=10
    )
    repo = os.environ.get("TRITONSHIP_REPO")
    return Live(name, session.client("sagemaker-runtime", config=config), repo and Path(repo))


@pytest.fixture(scope="module")
def answers(live: Live) -> dict[tuple[str, str], np.ndarray]:
    """Every sample photo in every request format (binary, json, raw), one request each."""
    return {
        (photo, fmt): live.classify([photo_jpeg(photo)], fmt) for photo in PHOTOS for fmt in FORMATS
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("photo", PHOTOS)
def test_every_photo_in_every_format_gives_a_softmax_row(answers, photo: str, fmt: str):
    row = answers[photo, fmt]
    assert row.shape == (1, 1001) and row.dtype == np.float32
    assert row.sum() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("photo", PHOTOS)
def test_the_formats_agree(answers, photo: str):
    binary = answers[photo, "binary"]
    for fmt in FORMATS:
        np.testing.assert_allclose(answers[photo, fmt], binary, atol=1e-6, err_msg=fmt)


def test_the_photos_are_told_apart(answers):
    rows = [answers[photo, "binary"] for photo in PHOTOS]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            assert np.abs(rows[i] - rows[j]).max() > 1e-7, f"{PHOTOS[i]} == {PHOTOS[j]}"


@pytest.mark.parametrize("image_format", ["PNG", "JPEG-grayscale"])
def test_other_image_encodings_are_classified(live: Live, image_format: str):
    array = photo_array("chelsea")
    image = (
        encode(array, "PNG")
        if image_format == "PNG"
        else encode(array.mean(axis=2).astype(np.uint8), "JPEG")
    )
    row = live.classify([image])
    assert row.shape == (1, 1001) and row.sum() == pytest.approx(1.0, abs=1e-4)


def test_a_batch_gives_the_rows_of_its_photos_one_by_one(live: Live, answers):
    batch = live.classify([photo_jpeg(photo) for photo in PHOTOS])
    singles = np.concatenate([answers[photo, "binary"] for photo in PHOTOS])
    np.testing.assert_allclose(batch, singles, atol=ATOL)


def test_answers_match_the_promoted_repository_in_process(live: Live, answers):
    graph = live.repository and live.repository / "inception_graphdef/1/model.graphdef"
    if not graph or not graph.is_file():
        pytest.skip("set TRITONSHIP_REPO to the built repository that was promoted")
    import tensorflow as tf

    from tritonship.repository.dali import load_pipeline_module, run_pipeline
    from tritonship.repository.inception import run_graph

    module = load_pipeline_module(live.repository / "dali/1/dali.py")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph.read_bytes())
    arrays = [np.frombuffer(photo_jpeg(photo), np.uint8) for photo in PHOTOS]
    expected = run_graph(graph_def, np.stack(run_pipeline(module, arrays, device_id=None)))
    served = np.concatenate([answers[photo, "binary"] for photo in PHOTOS])
    np.testing.assert_allclose(served, expected, atol=ATOL)


@pytest.mark.parametrize("photo", sorted(EXPECTED))
def test_official_weights_name_the_photos(live: Live, answers, photo: str):
    manifest = read_manifest(live.repository) if live.repository else None
    source = manifest.weights.source if manifest else None
    if source in (None, "random"):
        pytest.skip(f"labels are meaningless without official weights (weights: {source})")
    labels = inception_labels()
    top5 = {labels[i] for i in np.argsort(answers[photo, "binary"][0])[::-1][:5]}
    assert top5 & EXPECTED[photo], f"{photo}: top-5 {sorted(top5)}"


# --- error shapes -------------------------------------------------------------------------


def test_not_an_image_is_a_model_error_with_the_container_status(live: Live):
    request = encode_request([b"this is not an image" * 20])
    with pytest.raises(live.client.exceptions.ModelError) as info:
        live.invoke(request.body, request.content_type)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["Error"]["Message"].startswith("Received client error (400) from primary")
    assert response["OriginalMessage"]
    assert f"/aws/sagemaker/Endpoints/{live.name}" in response["LogStreamArn"]


REFUSED = [case for case in corpus() if not case.accept]


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_hostile_requests_get_a_model_error(live: Live, case):
    with pytest.raises(live.client.exceptions.ModelError) as info:
        live.invoke(case.body, case.content_type)
    response = info.value.response
    assert 400 <= response["OriginalStatusCode"] < 600
    assert response["Error"]["Message"].startswith("Received ")


def test_an_unknown_endpoint_is_a_validation_error(live: Live):
    with pytest.raises(ClientError) as info:
        live.client.invoke_endpoint(
            EndpointName=f"{live.name}-missing", Body=b"{}", ContentType="application/json"
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_the_answer_names_the_variant(live: Live):
    request = encode_request([photo_jpeg("coffee")])
    assert live.invoke(request.body, request.content_type)["InvokedProductionVariant"]


# --- the payload limit --------------------------------------------------------------------


def test_a_request_near_the_limit_is_answered(live: Live):
    png = encode(photo_array("astronaut"), "PNG", compress_level=0)  # about 790 KB
    count = (MAX_PAYLOAD_BYTES - 100_000) // len(png)
    request = encode_request([png] * count)
    assert MAX_PAYLOAD_BYTES - len(png) - 100_000 < len(request.body) <= MAX_PAYLOAD_BYTES
    answer = live.invoke(request.body, request.content_type)
    rows = decode_response(answer["Data"], answer["ContentType"])
    assert rows.shape == (count, 1001)
    np.testing.assert_allclose(rows, np.repeat(rows[:1], count, axis=0), atol=ATOL)


def test_a_request_over_the_limit_is_refused_and_the_endpoint_stays_up(live: Live):
    with pytest.raises(ClientError) as info:
        live.invoke(bytes(MAX_PAYLOAD_BYTES + 1), "application/json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert live.classify([photo_jpeg("chelsea")]).shape == (1, 1001)


# --- latency ------------------------------------------------------------------------------


def test_latency_of_one_photo(live: Live, record_property):
    request = encode_request([photo_jpeg("chelsea")])
    live.invoke(request.body, request.content_type)  # warm
    seconds = []
    for _ in range(10):
        started = time.perf_counter()
        live.invoke(request.body, request.content_type)
        seconds.append(time.perf_counter() - started)
    median_ms = statistics.median(seconds) * 1000
    record_property("median_ms", round(median_ms, 1))
    print(f"latency over 10 requests: median {median_ms:.0f} ms, max {max(seconds) * 1000:.0f} ms")
    assert median_ms < LATENCY_BUDGET_MS, f"median {median_ms:.0f} ms"
    assert max(seconds) < 60, "over SageMaker's 60 s"
