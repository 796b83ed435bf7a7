"""Request/response encoding, top-k, payload batching and the local runtime's refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton_http

from tritonship.errors import UsageError
from tritonship.local.runtime import RuntimeConfig, check_request, model_error
from tritonship.sagemaker.client import request_batches, top_k
from tritonship.sagemaker.wire import (
    BINARY_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    MAX_PAYLOAD_BYTES,
    ResponseError,
    decode_response,
    encode_request,
    header_size,
    image_batch,
)


def response_body(output: np.ndarray, binary: bool) -> tuple[bytes, str]:
    """A server-side answer built the way Triton builds it."""
    if not binary:
        payload = {
            "model_name": "ensemble",
            "outputs": [
                {
                    "name": "OUTPUT",
                    "datatype": "FP32",
                    "shape": list(output.shape),
                    "data": output.ravel().tolist(),
                }
            ],
        }
        return json.dumps(payload).encode(), "application/json"
    header = json.dumps(
        {
            "model_name": "ensemble",
            "outputs": [
                {
                    "name": "OUTPUT",
                    "datatype": "FP32",
                    "shape": list(output.shape),
                    "parameters": {"binary_data_size": output.nbytes},
                }
            ],
        }
    ).encode()
    return header + output.tobytes(), f"{BINARY_CONTENT_TYPE};json-header-size={len(header)}"


def test_binary_request_declares_its_json_header_size():
    request = encode_request([b"\xff\xd8abc", b"\xff\xd8de"])
    assert request.content_type.startswith(f"{BINARY_CONTENT_TYPE};json-header-size=")
    size = header_size(request.content_type)
    header = json.loads(request.body[:size])
    assert header["inputs"][0]["shape"] == [2, 5]
    assert header["inputs"][0]["parameters"]["binary_data_size"] == 10
    assert request.body[size:] == b"\xff\xd8abc" + b"\xff\xd8de\x00"


def test_json_request_when_the_header_size_is_none():
    request = encode_request([b"\x01\x02"], binary=False)
    assert request.content_type == JSON_CONTENT_TYPE
    body = json.loads(request.body)
    assert body["inputs"][0]["data"] == [1, 2]
    assert header_size(request.content_type) is None


def test_tritonclient_gives_none_for_all_json_inputs():
    tensor = triton_http.InferInput("INPUT", [1, 2], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 2), np.uint8), binary_data=False)
    _, json_size = triton_http.InferenceServerClient.generate_request_body([tensor])
    assert json_size is None


def test_images_are_zero_padded_rows():
    batch = image_batch([b"abc", b"a"])
    assert batch.dtype == np.uint8 and batch.tolist() == [[97, 98, 99], [97, 0, 0]]
    with pytest.raises(UsageError):
        image_batch([])


@pytest.mark.parametrize("binary", [True, False])
def test_decode_either_answer(binary: bool):
    output = np.random.default_rng(0).random((2, 1001)).astype(np.float32)
    body, content_type = response_body(output, binary)
    np.testing.assert_allclose(decode_response(body, content_type), output, rtol=1e-6)


@pytest.mark.parametrize(
    "content_type",
    [
        f"{BINARY_CONTENT_TYPE};json-header-size=abc",
        f"{BINARY_CONTENT_TYPE};json-header-size=-3",
        f"{BINARY_CONTENT_TYPE}",
    ],
)
def test_malformed_content_type_is_a_clear_error(content_type: str):
    body, _ = response_body(np.ones((1, 1001), np.float32), binary=True)
    with pytest.raises(ResponseError, match="malformed Content-Type"):
        decode_response(body, content_type)


def test_header_size_beyond_the_body_is_refused():
    body, _ = response_body(np.ones((1, 1001), np.float32), binary=True)
    with pytest.raises(ResponseError, match="exceeds"):
        decode_response(body, f"{BINARY_CONTENT_TYPE};json-header-size={len(body) + 1}")


def test_body_that_is_not_a_response_is_refused():
    with pytest.raises(ResponseError, match="cannot decode"):
        decode_response(b"<html>oops</html>", "text/html")
    with pytest.raises(ResponseError, match="no OUTPUT"):
        decode_response(b'{"outputs": []}', "application/json")


def test_top_k_is_sorted_and_labelled():
    probabilities = np.array([0.1, 0.6, 0.3], np.float32)
    top = top_k(probabilities, ["background", "cat", "dog"], 2)
    assert [(p.index, p.label) for p in top] == [(1, "cat"), (2, "dog")]
    assert top[0].probability == pytest.approx(0.6)
    assert top_k(probabilities, ["background"], 1)[0].label == "#1"


def test_large_sets_are_split_to_stay_under_the_payload_limit():
    images = [bytes(2_000_000) for _ in range(7)]
    groups = request_batches(images, binary=True)
    assert [len(g) for g in groups] == [3, 3, 1]
    assert sum(groups, []) == list(range(7))
    for group in groups:
        assert len(encode_request([images[i] for i in group]).body) <= MAX_PAYLOAD_BYTES


CONFIG = RuntimeConfig("http://127.0.0.1:9", endpoint_name="local")


@pytest.mark.parametrize(
    ("path", "length", "status", "error"),
    [
        ("/endpoints/local/invocations", 10, None, None),
        ("/endpoints/other/invocations", 10, 400, "ValidationError"),
        ("/invocations", 10, 404, "UnknownOperationException"),
        ("/endpoints/local/invocations", MAX_PAYLOAD_BYTES, None, None),  # the limit is allowed
        ("/endpoints/local/invocations", MAX_PAYLOAD_BYTES + 1, 413, None),
    ],
)
def test_runtime_refuses_what_sagemaker_refuses(path, length, status, error):
    reply = check_request(CONFIG, path, length)
    if status is None:
        assert reply is None
        return
    assert reply is not None and reply.status == status
    assert reply.headers.get("x-amzn-ErrorType") == error


def test_model_error_keeps_the_container_status_and_message():
    reply = model_error(CONFIG, 400, '{"error":"bad image"}')
    payload = json.loads(reply.body)
    assert reply.status == 424 and reply.headers["x-amzn-ErrorType"] == "ModelError"
    assert payload["OriginalStatusCode"] == 400
    assert payload["OriginalMessage"] == '{"error":"bad image"}'
    assert payload["Message"].startswith("Received client error (400) from primary")
    assert json.loads(model_error(CONFIG, 503, "x").body)["ErrorCode"] == "SERVER_ERROR_FROM_MODEL"
