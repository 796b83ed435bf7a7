"""The served ensemble answers SageMaker-style requests like the in-process pipeline."""

from __future__ import annotations

import re

import numpy as np
import pytest
import requests

from tests.integration.conftest import Endpoint
from tests.support.load import invoke as invoke_url
from tritonship.repository.dali import load_pipeline_module, run_pipeline
from tritonship.repository.inception import run_graph
from tritonship.sagemaker.wire import encode_request
from tritonship.samples import PHOTOS, photo_jpeg

#: float32 softmax over 1001 classes; server and reference run the same ops on the same
#: bytes, so differences are TF thread-scheduling rounding only.
ATOL = 1e-5


def invoke(endpoint: Endpoint, images: list[bytes], binary: bool = True) -> np.ndarray:
    """One request to the endpoint under test (tests/support/load.py)."""
    return invoke_url(endpoint.url, images, binary)


@pytest.fixture(scope="module")
def reference(endpoint: Endpoint):
    """In-process ceiling: the repository's own dali.py and model.graphdef, no server."""
    import tensorflow as tf

    module = load_pipeline_module(endpoint.repository / "dali/1/dali.py")
    graph_def = tf.compat.v1.GraphDef()
    graph = endpoint.repository / "inception_graphdef/1/model.graphdef"
    graph_def.ParseFromString(graph.read_bytes())

    def classify(images: list[bytes]) -> np.ndarray:
        arrays = [np.frombuffer(image, np.uint8) for image in images]
        return run_graph(graph_def, np.stack(run_pipeline(module, arrays, device_id=None)))

    return classify


def test_ping_is_200(endpoint: Endpoint):
    assert requests.get(f"{endpoint.url}/ping", timeout=10).status_code == 200


def test_binary_json_photo_gives_one_softmax_row(endpoint: Endpoint):
    out = invoke(endpoint, [photo_jpeg("astronaut")])
    assert out.shape == (1, 1001) and out.dtype == np.float32
    assert out.sum() == pytest.approx(1.0, abs=1e-4)


def test_binary_response_uses_the_sagemaker_content_type(endpoint: Endpoint):
    request = encode_request([photo_jpeg("coffee")])
    response = requests.post(
        f"{endpoint.url}/invocations",
        data=request.body,
        headers={"Content-Type": request.content_type},
        timeout=120,
    )
    assert re.fullmatch(
        r"application/vnd\.sagemaker-triton\.binary\+json;json-header-size=\d+",
        response.headers["Content-Type"],
    )


def test_json_gives_the_same_numbers_as_binary(endpoint: Endpoint):
    photo = photo_jpeg("chelsea")
    binary, as_json = invoke(endpoint, [photo]), invoke(endpoint, [photo], binary=False)
    np.testing.assert_allclose(as_json, binary, atol=1e-6)


def test_served_output_equals_in_process_reference(endpoint: Endpoint, reference):
    photos = [photo_jpeg(name) for name in PHOTOS[:2]]
    served = np.concatenate([invoke(endpoint, [photo]) for photo in photos])
    np.testing.assert_allclose(served, reference(photos), atol=ATOL)


def test_four_photos_in_one_request(endpoint: Endpoint, reference):
    photos = [photo_jpeg(name) for name in PHOTOS]
    assert len({len(p) for p in photos}) == 4, "different lengths: rows are zero-padded"
    out = invoke(endpoint, photos)
    assert out.shape == (4, 1001)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(out, reference(photos), atol=ATOL)


def inference_counts(metrics_url: str) -> dict[str, float]:
    """Successful inference requests per model from Triton's Prometheus metrics."""
    text = requests.get(metrics_url, timeout=10).text
    counts: dict[str, float] = {}
    for labels, value in re.findall(r"^nv_inference_request_success\{([^}]*)\} (\S+)$", text, re.M):
        model = re.search(r'model="([^"]+)"', labels).group(1)
        counts[model] = counts.get(model, 0.0) + float(value)
    return counts


def test_statistics_show_both_ensemble_steps_executed(endpoint: Endpoint):
    if not endpoint.metrics_url:
        pytest.skip("TRITONSHIP_METRICS_URL is not set for this endpoint")
    before = inference_counts(endpoint.metrics_url)
    invoke(endpoint, [photo_jpeg("rocket")])
    after = inference_counts(endpoint.metrics_url)
    for model in ("ensemble_dali_inception", "dali", "inception_graphdef"):
        assert after.get(model, 0) - before.get(model, 0) == 1, (model, before, after)
