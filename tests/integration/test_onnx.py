"""The ONNX build of the real Inception graph: parity with TensorFlow, served by the stand-in.

``onnx_repository`` (tests/conftest.py) converts the session's random-weight build once
(tf2onnx, about 20 s). The classification and parity tests run against both formats: the
TensorFlow repository on the session's ``endpoint``, the ONNX one on its own native server.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import Endpoint
from tests.support.load import invoke as invoke_url
from tritonship.artifact.package import package_repository
from tritonship.local.engine import EngineError, free_port
from tritonship.local.native import NativeEngine
from tritonship.repository import onnx as onnx_build
from tritonship.repository.config import load_repository
from tritonship.repository.dali import load_pipeline_module, run_pipeline
from tritonship.repository.inception import GraphSession
from tritonship.repository.manifest import read_manifest
from tritonship.repository.validate import validate_repository
from tritonship.samples import PHOTOS, photo_jpeg

#: ONNX Runtime against TensorFlow on the same preprocessed photos. Both compute the same
#: float32 network with different kernels and summation orders; measured here: 3.5e-10
#: absolute, 3.5e-7 relative (a few float32 ulps on rows near 1/1001). rtol 1e-5 leaves a
#: factor of 30 for other CPUs' SIMD paths; a wrong layout or op moves rows by far more.
RTOL, ATOL = 1e-5, 1e-9
#: Served against in-process for the same repository (as tests/integration/test_endpoint.py).
SERVED_ATOL = 1e-5


def photos() -> list[bytes]:
    return [photo_jpeg(name) for name in PHOTOS]


@pytest.fixture(scope="module")
def preprocessed(built_repository: Path) -> np.ndarray:
    """The four photos through the repository's own DALI pipeline (CPU), as one batch."""
    module = load_pipeline_module(built_repository / "dali/1/dali.py")
    arrays = [np.frombuffer(p, np.uint8) for p in photos()]
    return np.stack(run_pipeline(module, arrays, device_id=None))


@pytest.fixture(scope="module")
def tensorflow_rows(built_repository: Path, preprocessed: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(
        (built_repository / "inception_graphdef/1/model.graphdef").read_bytes()
    )
    with GraphSession(graph_def) as session:
        return session.run(preprocessed)


@pytest.fixture(scope="module")
def onnx_rows(onnx_repository: Path, preprocessed: np.ndarray) -> np.ndarray:
    session = onnx_build.session(onnx_repository / "inception_onnx/1/model.onnx")
    (rows,) = session.run(["probabilities"], {"input": preprocessed})
    return rows


def test_onnx_matches_tensorflow_on_real_photos(tensorflow_rows, onnx_rows):
    np.testing.assert_allclose(onnx_rows, tensorflow_rows, rtol=RTOL, atol=ATOL)
    top2 = np.sort(tensorflow_rows, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    bound = RTOL * tensorflow_rows.max(axis=1) + ATOL
    assert (margin > 2 * bound).all(), "top-1 decided within the tolerance: not comparable"
    assert (onnx_rows.argmax(axis=1) == tensorflow_rows.argmax(axis=1)).all()


def test_the_manifest_records_the_real_conversion(onnx_repository: Path):
    built = read_manifest(onnx_repository)
    assert built is not None and built.classifier is not None
    record = built.classifier.to_json()
    assert record["format"] == "onnx" and record["opset"] == 17
    assert record["converter"] == onnx_build.converter_versions()["converter"]
    assert record["parity"]["max_abs_diff"] < 1e-8
    assert record["bytes"] > 90_000_000


def test_built_for_26_05_it_validates_and_packages(onnx_repository: Path, tmp_path: Path):
    assert validate_repository(load_repository(onnx_repository), image_tag="26.05-py3") == []
    result = package_repository(
        onnx_repository,
        tmp_path / "model.tar.gz",
        image_tag="26.05-py3",
        allow_random_weights=True,
        progress=False,
    )
    assert result.archive.is_file() and result.manifest.image.tag == "26.05-py3"
    assert result.manifest.image.backends_needed == [
        "dali",
        "ensemble",
        "onnxruntime",
        "python",
    ]


# --- served: both formats ----------------------------------------------------------------


def native(repo: Path, run_dir: Path) -> Iterator[Endpoint]:
    with NativeEngine(repo, port=free_port(), run_dir=run_dir) as engine:
        yield Endpoint(engine.url, repo, None, engine)


@pytest.fixture(scope="module")
def onnx_endpoint(onnx_repository: Path, tmp_path_factory) -> Iterator[Endpoint]:
    """The native engine serving the ONNX repository (ONNX Runtime stand-in)."""
    yield from native(onnx_repository, tmp_path_factory.mktemp("onnx-run"))


@pytest.fixture(params=["tf", "onnx"])
def served(request: pytest.FixtureRequest, endpoint: Endpoint) -> Endpoint:
    """The TensorFlow repository's endpoint (each engine), then the ONNX one's (native)."""
    if request.param == "tf":
        return endpoint
    engine = request.node.callspec.params.get("endpoint")
    if engine != "native":
        pytest.skip(f"the ONNX repository is served natively here, not by the {engine} engine")
    return request.getfixturevalue("onnx_endpoint")


def invoke(endpoint: Endpoint, images: list[bytes], binary: bool = True) -> np.ndarray:
    """One request to the endpoint under test (tests/support/load.py)."""
    return invoke_url(endpoint.url, images, binary)


def in_process(repository: Path, preprocessed: np.ndarray) -> np.ndarray:
    """The repository's own classifier on the preprocessed photos, no server."""
    from tritonship.bench.ceiling import GRAPH, ONNX_MODEL, OnnxSession

    if (repository / ONNX_MODEL).is_file():
        return OnnxSession(repository / ONNX_MODEL).run(preprocessed)
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((repository / GRAPH).read_bytes())
    with GraphSession(graph_def) as session:
        return session.run(preprocessed)


def test_served_equals_in_process_for_each_format(served: Endpoint, preprocessed: np.ndarray):
    rows = invoke(served, photos())
    assert rows.shape == (4, 1001) and rows.dtype == np.float32
    np.testing.assert_allclose(rows, in_process(served.repository, preprocessed), atol=SERVED_ATOL)


def test_one_photo_per_request_for_each_format(served: Endpoint, preprocessed: np.ndarray):
    rows = np.concatenate([invoke(served, [photo]) for photo in photos()[:2]])
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-4)
    expected = in_process(served.repository, preprocessed[:2])
    np.testing.assert_allclose(rows, expected, atol=SERVED_ATOL)


def test_onnx_served_top1_equals_tensorflow_served(endpoint: Endpoint, onnx_endpoint: Endpoint):
    tf_rows, onnx_rows = invoke(endpoint, photos()), invoke(onnx_endpoint, photos())
    assert (onnx_rows.argmax(axis=1) == tf_rows.argmax(axis=1)).all()
    np.testing.assert_allclose(onnx_rows, tf_rows, rtol=RTOL, atol=ATOL)


def test_a_config_the_model_does_not_match_fails_to_load(onnx_repository: Path, tmp_path: Path):
    repo = tmp_path / "repo"
    shutil.copytree(onnx_repository, repo, copy_function=os.link)
    config = repo / "inception_onnx/config.pbtxt"
    text = config.read_text()
    config.unlink()  # the copy is a hard link: never write through to the session's
    config.write_text(text.replace("data_type: TYPE_FP32", "data_type: TYPE_FP16", 1))
    engine = NativeEngine(repo, port=free_port(), run_dir=tmp_path / "run")
    with pytest.raises(EngineError) as caught, engine:
        pass
    logs = caught.value.log_tail
    assert (
        "unable to load model 'inception_onnx', configuration expects datatype TYPE_FP16 for "
        "input 'input', model provides TYPE_FP32" in logs
    )
