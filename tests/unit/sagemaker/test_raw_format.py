"""Raw requests (json-header-size=0): the JPEG is the whole body, one image per request."""

from __future__ import annotations

import pytest

from tritonship import cli
from tritonship.bench.runner import FORMATS
from tritonship.errors import UsageError
from tritonship.sagemaker import client
from tritonship.sagemaker.client import Answer, classify
from tritonship.sagemaker.wire import (
    BINARY_CONTENT_TYPE,
    RAW_CONTENT_TYPE,
    EncodedRequest,
    encode_as,
    encode_raw,
    encode_request,
    header_size,
)
from tritonship.samples import photo_jpeg


def test_a_raw_request_is_the_image_itself():
    photo = photo_jpeg("chelsea")
    request = encode_raw(photo)
    assert request.body == photo
    assert request.content_type == f"{BINARY_CONTENT_TYPE};json-header-size=0"
    assert header_size(request.content_type) == 0
    assert encode_as([photo], "raw") == request


def test_a_raw_request_carries_exactly_one_image():
    with pytest.raises(UsageError, match="exactly one image, not 2"):
        encode_as([b"a", b"b"], "raw")
    with pytest.raises(UsageError, match="unknown request format 'xml'"):
        encode_as([b"a"], "xml")


def test_the_other_formats_are_unchanged():
    images = [b"\xff\xd8abc"]
    assert encode_as(images, "binary") == encode_request(images)
    assert encode_as(images, "json") == encode_request(images, binary=False)


class Recorder:
    """A transport that records requests and answers one softmax row per request."""

    target = "recorder"

    def __init__(self) -> None:
        self.sent: list[EncodedRequest] = []

    def send(self, request: EncodedRequest) -> Answer:
        self.sent.append(request)
        return Answer(b"", "application/json", 0.01)


def test_classify_raw_sends_each_image_alone(monkeypatch):
    import numpy as np

    monkeypatch.setattr(client, "decode_response", lambda body, ctype: np.eye(1, 1001))
    transport = Recorder()
    images = {"a.jpg": b"\xff\xd8first", "b.jpg": b"\xff\xd8second"}
    results = classify(transport, images, raw=True, k=1)
    assert [r.body for r in transport.sent] == list(images.values())
    assert {r.content_type for r in transport.sent} == {RAW_CONTENT_TYPE}
    assert [r.image for r in results] == ["a.jpg", "b.jpg"]
    assert [r.request_bytes for r in results] == [len(b) for b in images.values()]


def test_the_cli_offers_raw_to_invoke_and_bench():
    parse = cli.build_parser().parse_args
    assert parse(["invoke", "a.jpg", "--format", "raw"]).format == "raw"
    assert parse(["bench", "--format", "raw"]).format == "raw"
    assert FORMATS["raw"] == ("raw",) and FORMATS["all"] == ("binary", "json", "raw")
    with pytest.raises(SystemExit):
        parse(["invoke", "a.jpg", "--format", "xml"])
