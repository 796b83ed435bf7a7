"""The Inception V3 graph: contract, official download and its failures.

The random-weight export is tested in tests/integration/test_inception_export.py.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.support.servers import QuietHandler
from tritonship.errors import ChecksumError, ContractError, NetworkError
from tritonship.repository import inception
from tritonship.repository.manifest import Weights

RANDOM = Weights(source="random", graph_sha256="")


def load_graph_def(path: Path) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def small_graph(
    input_name: str = "input",
    output_name: str = inception.OUTPUT_NAME,
    size: int = 299,
    classes: int = 1001,
    softmax: bool = True,
) -> bytes:
    """A tiny graph with a configurable contract, to exercise check_contract."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], name=input_name)
        pooled = tf.reduce_mean(x, axis=[1, 2])
        logits = tf.matmul(pooled, tf.ones([3, classes]))
        (tf.nn.softmax if softmax else tf.identity)(logits, name=output_name)
    return graph.as_graph_def().SerializeToString()


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (lambda: small_graph(input_name="images"), "no placeholder named 'input'"),
        (lambda: small_graph(output_name="logits"), "no output node"),
        (lambda: b"definitely not a protobuf \xff\xfe", "not a TensorFlow GraphDef"),
        (lambda: small_graph(size=224), r"has shape \[-1, 224, 224, 3\], expected"),
        (lambda: small_graph(softmax=False), "not rows of a softmax"),
        (lambda: small_graph(classes=1000), r"gave shape \(2, 1000\)"),
    ],
)
def test_contract_violations_are_refused(graph, message, tmp_path: Path):
    dest = tmp_path / "model.graphdef"
    with pytest.raises(ContractError, match=message):
        inception.install_graph(graph(), dest, RANDOM)
    assert not dest.exists(), "nothing is written when the contract fails"


def test_a_conforming_graph_is_installed_with_its_digest(tmp_path: Path):
    data = small_graph()
    record = inception.install_graph(data, tmp_path / "g", RANDOM)
    assert record.graph_sha256 == hashlib.sha256(data).hexdigest()
    assert record.size == len(data) and record.source == "random"


@pytest.fixture()
def fake_storage(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server that serves a tarball that is NOT the official one."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = small_graph()
        info = tarfile.TarInfo(inception.OFFICIAL_MEMBER)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    body = buffer.getvalue()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            self.reply(200, body, content_type=None)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{inception.OFFICIAL_MEMBER}.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


def test_download_with_a_wrong_checksum_is_refused_and_not_kept(fake_storage, tmp_path: Path):
    with pytest.raises(ChecksumError, match="SHA-256"):
        inception.download_official(tmp_path, progress=False, url=fake_storage)
    assert list(tmp_path.iterdir()) == [], "no partial or corrupt archive is left behind"


def test_no_network_is_one_line_suggesting_random_weights(tmp_path: Path):
    with pytest.raises(NetworkError) as info:
        inception.download_official(tmp_path, progress=False, url="http://127.0.0.1:9/x.tar.gz")
    assert "--weights random" in str(info.value)
    assert "make artifacts WEIGHTS=random" in str(info.value), "the make form too"
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.network
def test_official_graph_downloads_verifies_and_classifies_a_cat(tmp_path: Path):
    from tritonship.paths import DALI_PIPELINE_SOURCE
    from tritonship.repository.dali import load_pipeline_module, run_pipeline
    from tritonship.repository.labels import inception_labels
    from tritonship.samples import photo_jpeg

    dest = tmp_path / "model.graphdef"
    record = inception.build_graph(dest, "official", tmp_path / "cache", progress=False)
    assert record.source == "official"
    assert record.archive_sha256 == inception.OFFICIAL_SHA256
    module = load_pipeline_module(DALI_PIPELINE_SOURCE)
    jpeg = np.frombuffer(photo_jpeg("chelsea"), np.uint8)
    (image,) = run_pipeline(module, [jpeg], device_id=None)
    out = inception.run_graph(load_graph_def(dest), image[None])
    top5 = [inception_labels()[i].lower() for i in np.argsort(out[0])[::-1][:5]]
    assert any("cat" in label or "tabby" in label for label in top5), top5
