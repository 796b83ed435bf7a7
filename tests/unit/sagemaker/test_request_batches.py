"""How ``invoke`` splits a set of images into requests.

Two limits: SageMaker's 6 MB payload and the served model's ``max_batch_size`` (the
ensemble refuses "batch-size must be <= 256" past it). Sizes are computed from N, L and the
JSON header length, never by re-encoding the growing group: the tests check the computed
size against :func:`encode_request`'s real body and count the encodes.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.servers import QuietHandler
from tritonship.cli import main
from tritonship.sagemaker import client as client_module
from tritonship.sagemaker.client import request_batches
from tritonship.sagemaker.wire import MAX_PAYLOAD_BYTES, encode_request


def _images(count: int, seed: int = 0, low: int = 1, high: int = 300) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(low, high)) for _ in range(count)]


def test_more_than_max_batch_size_images_are_split() -> None:
    images = _images(600)
    groups = request_batches(images, binary=True, max_batch=256)
    assert [len(group) for group in groups] == [256, 256, 88]
    assert sum(groups, []) == list(range(600))


@pytest.mark.parametrize("binary", [True, False])
def test_computed_request_sizes_match_the_real_encoding(binary: bool) -> None:
    from tritonship.sagemaker.client import RequestSize

    rng = random.Random(1)
    for _ in range(40):
        images = _images(rng.randint(1, 30), seed=rng.randint(0, 10**6), high=rng.choice([9, 2000]))
        size = RequestSize(binary)
        for image in images:
            size = size.plus(image)
        assert size.bytes == len(encode_request(images, binary=binary).body)


def test_grouping_encodes_nothing_per_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's O(n^2) loop encoded the growing group once per image; now at most once."""
    calls = []
    real = client_module.encode_request

    def counting(images, binary=True):
        calls.append(len(images))
        return real(images, binary=binary)

    monkeypatch.setattr(client_module, "encode_request", counting)
    request_batches(_images(2000), binary=False)
    assert sum(calls) <= 2, calls


@pytest.mark.parametrize(
    ("binary", "size", "count", "expected"),
    [(True, 1_500_000, 7, [4, 3]), (False, 700_000, 5, [2, 2, 1])],  # JSON: 4 chars a byte
)
def test_the_payload_limit_still_splits_and_every_request_fits(
    binary: bool, size: int, count: int, expected: list[int]
) -> None:
    images = [bytes([200]) * size for _ in range(count)]
    groups = request_batches(images, binary=binary, max_batch=256)
    for group in groups:
        body = encode_request([images[i] for i in group], binary=binary).body
        assert len(body) <= MAX_PAYLOAD_BYTES
    assert sum(groups, []) == list(range(count))
    assert [len(g) for g in groups] == expected


def _binary_at(size: int) -> list[bytes]:
    """Two images whose padded binary request is exactly ``size`` bytes long.

    A binary body is the JSON header and N x L raw bytes: it grows in steps of N, so the
    width is searched (the header's digits change with it).
    """
    from tritonship.sagemaker.client import RequestSize

    width = size // 2
    while RequestSize(True, 2, width, 2 * width).bytes > size:
        width -= 1
    assert RequestSize(True, 2, width, 2 * width).bytes == size, "no width gives that size"
    return [b"\x01" * width] * 2


def _json_at(size: int) -> list[bytes]:
    """Two images whose padded JSON request is exactly ``size`` bytes long.

    JSON writes each byte as a decimal number: 1 is one character, 10 two, so turning ones
    into tens grows the body one byte at a time.
    """
    from tritonship.sagemaker.client import RequestSize

    width = size // 4
    while (body := RequestSize(False, 2, width, 2 * width, 2 * width).bytes) > size:
        width -= 1
    tens = size - body
    return [b"\x0a" * tens + b"\x01" * (width - tens), b"\x01" * width]


@pytest.mark.parametrize("binary", [True, False])
def test_a_batch_of_exactly_the_payload_limit_is_one_request(binary: bool) -> None:
    images = (_binary_at if binary else _json_at)(6_291_456)
    assert len(encode_request(images, binary=binary).body) == MAX_PAYLOAD_BYTES == 6_291_456
    assert request_batches(images, binary=binary) == [[0, 1]]


def test_one_byte_over_the_payload_limit_splits_the_batch() -> None:
    images = _json_at(MAX_PAYLOAD_BYTES + 1)
    assert len(encode_request(images, binary=False).body) == MAX_PAYLOAD_BYTES + 1
    assert request_batches(images, binary=False) == [[0], [1]]


def test_the_next_binary_size_over_the_payload_limit_splits_the_batch() -> None:
    exact = _binary_at(MAX_PAYLOAD_BYTES)
    wider = [image + b"\x01" for image in exact]  # one more column: N = 2 bytes more
    assert len(encode_request(wider, binary=True).body) == MAX_PAYLOAD_BYTES + 2
    assert request_batches(wider, binary=True) == [[0], [1]]


def test_the_batch_limit_comes_from_the_repository(repo_copy: Path) -> None:
    from tritonship.repository.config import load_repository
    from tritonship.repository.limits import DEFAULT_MAX_BATCH, request_batch_limit

    limit = request_batch_limit(load_repository(repo_copy))
    assert limit == (256, f"{repo_copy}/ensemble_dali_inception")
    config = repo_copy / "ensemble_dali_inception" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 256", "max_batch_size: 8"))
    assert request_batch_limit(load_repository(repo_copy))[0] == 8
    assert request_batch_limit(None) == (DEFAULT_MAX_BATCH, "the shipped ensemble's default")


class _Ensemble(QuietHandler):
    """/invocations that refuses a batch above 256 as Triton does, else answers N rows."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        header = body[: int(self.headers["Content-Type"].rsplit("=", 1)[1])]
        rows = json.loads(header)["inputs"][0]["shape"][0]
        self.server.batches.append(rows)
        if rows > 256:
            answer, status = {"error": f"batch-size must be <= 256, got {rows}"}, 400
        else:
            output = {"name": "OUTPUT", "datatype": "FP32", "shape": [rows, 3]}
            answer, status = {"outputs": [{**output, "data": [0.2, 0.5, 0.3] * rows}]}, 200
        self.reply(status, json.dumps(answer).encode())


@pytest.fixture()
def ensemble_url() -> Iterator[tuple[str, list[int]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ensemble)
    server.batches = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", server.batches
    server.shutdown()
    server.server_close()
    thread.join()


def test_invoke_of_600_images_sends_requests_the_ensemble_accepts(
    ensemble_url: tuple[str, list[int]], staged_repository: Path, tmp_path: Path
) -> None:
    url, batches = ensemble_url
    paths = []
    for index, image in enumerate(_images(600, high=40)):
        paths.append(tmp_path / f"{index}.jpg")
        paths[-1].write_bytes(image)
    argv = ["invoke", *map(str, paths), "--url", url, "--repo", str(staged_repository), "--json"]
    assert main(argv) == 0
    assert batches == [256, 256, 88]
