"""A loopback stand-in of the ensemble's ``/invocations`` for tests that need no Triton.

It answers as Triton's SageMaker frontend does for our ensemble (server r24.09
``src/sagemaker_server.cc``: binary+json requests get a binary+json answer with
``json-header-size``, JSON requests a JSON answer, ``json-header-size=0`` a raw body of one
image): ``OUTPUT`` FP32 ``[N, 1001]``, one softmax row per image. Each row is a function of
the image's bytes, so two stubs agree exactly unless one is told to ``shift`` its rows (a
"broken build") or to fail.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

import numpy as np

from tests.support.servers import QuietHandler
from tritonship.sagemaker.request_body import decode_request, images_in
from tritonship.sagemaker.wire import content_type_for

CLASSES = 1001


def rows_for(images: list[bytes], shift: float = 0.0) -> np.ndarray:
    """One softmax row per image, seeded by its bytes; ``shift`` moves every logit of class 0."""
    rows = []
    for image in images:
        seed = int.from_bytes(hashlib.sha256(image).digest()[:8], "little")
        logits = np.random.default_rng(seed).normal(size=CLASSES)
        logits[0] += shift
        exp = np.exp(logits - logits.max())
        rows.append(exp / exp.sum())
    return np.array(rows, dtype=np.float32)


def answer(rows: np.ndarray, binary: bool) -> tuple[bytes, str]:
    """Triton's answer carrying ``rows`` as OUTPUT."""
    output = {"name": "OUTPUT", "datatype": "FP32", "shape": list(rows.shape)}
    if not binary:
        body = {"model_name": "ensemble_dali_inception", "model_version": "1"}
        body["outputs"] = [{**output, "data": [float(v) for v in rows.ravel()]}]
        return json.dumps(body).encode(), "application/json"
    data = rows.astype("<f4").tobytes()
    output["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps({"model_name": "ensemble_dali_inception", "outputs": [output]}).encode()
    return header + data, content_type_for(len(header))


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"
    server: TritonStub

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.reply(200, b"", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type")
        self.server.seen.append((body, content_type))
        if self.server.fail:
            self.reply(500, b'{"error":"the stub fails on purpose"}', "application/json")
            return
        decoded = decode_request(body, content_type)
        images = [data for tensor in decoded.inputs for data, _ in images_in(tensor) or []]
        binary = decoded.kind != "json"
        self.reply(200, *answer(rows_for(images, self.server.shift), binary))


class TritonStub(ThreadingHTTPServer):
    """The stand-in; ``seen`` lists every (body, Content-Type) it was sent."""

    daemon_threads = True

    def __init__(self, shift: float = 0.0, fail: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.shift, self.fail = shift, fail
        self.seen: list[tuple[bytes, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def triton_stub(shift: float = 0.0, fail: bool = False) -> Iterator[TritonStub]:
    """A running stand-in; always shut down."""
    server = TritonStub(shift, fail)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
