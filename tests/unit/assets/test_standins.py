"""The CPU stand-in backends fail the way the real ones do (docs/standins.md).

Their helpers are imported by file path; their ``model.py`` runs here with a fake
``triton_python_backend_utils`` (tests/support/fake_pb_utils.py), so a batch of requests
goes through ``execute`` exactly as the Python backend would hand it over. If a stand-in
grew lenient again (screening images, retrying request by request), these tests fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.support import fake_pb_utils as pb
from tests.support.modules import import_file
from tritonship.samples import photo_jpeg

BACKENDS = ROOT / "container" / "backends"


def load(path: Path) -> ModuleType:
    """Import a stand-in helper module by path, writing no ``__pycache__`` beside it."""
    return import_file(path, f"standin_{path.stem}")


dali = load(BACKENDS / "dali" / "dali_helpers.py")
tf_helpers = load(BACKENDS / "tensorflow" / "tf_helpers.py")


# --- TensorFlow stand-in: helpers -----------------------------------------------------------


@pytest.mark.parametrize(("name", "tensor"), [("input", "input:0"), ("a/b:1", "a/b:1")])
def test_tensor_name_adds_the_output_index_only_when_missing(name: str, tensor: str):
    assert tf_helpers.tensor_name(name) == tensor


def _params(**values: str) -> dict:
    return {"name": "m", "parameters": {k: {"string_value": v} for k, v in values.items()}}


@pytest.mark.parametrize(
    ("cores", "config", "expected"),
    [
        (8, _params(), (8, 8)),  # 0 / absent: TensorFlow uses one thread per core
        (8, _params(TF_NUM_INTRA_THREADS="2"), (2, 8)),
        (8, _params(TF_NUM_INTER_THREADS="1"), (8, 1)),
        (2, _params(TF_NUM_INTRA_THREADS="0", TF_NUM_INTER_THREADS="0"), (2, 2)),
        (2, _params(TF_NUM_INTRA_THREADS="4"), (4, 2)),  # as configured, even above the cores
        (8, {"name": "m", "instance_group": [{"count": 4}]}, (8, 8)),  # not split by instances
    ],
)
def test_thread_counts_follow_the_parameters(monkeypatch, cores, config, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert tf_helpers.thread_counts(config) == expected


def test_a_negative_intra_thread_count_refuses_the_model():
    with pytest.raises(tf_helpers.ConfigError, match="must be non-negative number"):
        tf_helpers.thread_counts(_params(TF_NUM_INTRA_THREADS="-1"))
    with pytest.raises(tf_helpers.ConfigError, match="not an integer"):
        tf_helpers.thread_counts(_params(TF_NUM_INTER_THREADS="many"))


def test_load_graph_keeps_node_names(tmp_path: Path):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="input")
        tf.identity(x * 2.0, name="out")
    path = tmp_path / "model.graphdef"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    loaded = tf_helpers.load_graph(path)
    assert loaded.get_tensor_by_name(tf_helpers.tensor_name("out")) is not None
    assert loaded.get_operation_by_name("input").type == "Placeholder"


def test_load_graph_without_the_file_says_to_build(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="run tritonship build"):
        tf_helpers.load_graph(tmp_path / "model.graphdef")


# --- TensorFlow stand-in: a batch of requests -----------------------------------------------

TF_CONFIG = {
    "name": "checked",
    "max_batch_size": 8,
    "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["2"]}],
    "output": [{"name": "out", "data_type": "TYPE_FP32", "dims": ["2"]}],
}


@pytest.fixture()
def tf_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The TensorFlow stand-in serving ``out = check_numerics(input) * 2``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="input")
        tf.identity(tf.debugging.check_numerics(x, "input holds NaN") * 2.0, name="out")
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "model.graphdef").write_bytes(graph.as_graph_def().SerializeToString())
    module = pb.load_model(BACKENDS / "tensorflow" / "model.py", monkeypatch)
    model = module.TritonPythonModel()
    args = {"model_config": json.dumps(TF_CONFIG), "model_repository": str(tmp_path)}
    model.initialize({**args, "model_version": "1"})
    yield model
    model.finalize()


def test_tf_runs_the_requests_as_one_batch_and_splits_the_answers(tf_model):
    first = pb.InferenceRequest(input=np.array([[1, 2]], np.float32))
    second = pb.InferenceRequest(input=np.array([[3, 4], [5, 6]], np.float32))
    responses = tf_model.execute([first, second])
    assert not any(r.has_error() for r in responses)
    np.testing.assert_array_equal(responses[0].output("out"), [[2, 4]])
    np.testing.assert_array_equal(responses[1].output("out"), [[6, 8], [10, 12]])


def test_tf_one_failing_request_fails_the_whole_batch(tf_model):
    good = pb.InferenceRequest(input=np.array([[1, 2]], np.float32))
    bad = pb.InferenceRequest(input=np.array([[np.nan, 0]], np.float32))
    responses = tf_model.execute([good, bad])
    assert all(r.has_error() for r in responses), "tensorflow.cc L2328-2342: all of the batch"
    errors = [r.error for r in responses]
    assert {e.code() for e in errors} == {pb.TritonError.INTERNAL}
    assert len({e.message() for e in errors}) == 1
    assert "input holds NaN" in errors[0].message()
    assert not errors[0].message().startswith("tensorflow:"), "TensorFlow's own message"
    answer = tf_model.execute([good])[0]  # the next batch is served normally
    np.testing.assert_array_equal(answer.output("out"), [[2, 4]])


# --- DALI stand-in: helpers -----------------------------------------------------------------


def test_pipeline_overrides_are_the_backends():
    config = {"max_batch_size": 256, "parameters": {"num_threads": {"string_value": "12"}}}
    assert dali.pipeline_overrides(config) == {"batch_size": 256, "num_threads": 12}
    assert dali.pipeline_overrides({"max_batch_size": 0}) == {}  # the pipeline's own values
    unset = {"max_batch_size": 8, "parameters": {"num_threads": {"string_value": "-1"}}}
    assert dali.pipeline_overrides(unset) == {"batch_size": 8}


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (RuntimeError("Critical error in pipeline:\nboom"), "Runtime error: Critical error"),
        (ValueError("bad value"), "Exception: bad value"),
    ],
)
def test_backend_error_text_takes_error_handlers_branches(error: Exception, text: str):
    assert dali.backend_error_text(error).startswith(text)


def test_split_rows():
    padded = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert [r.tolist() for r in dali.split_rows(padded, batching=True)] == [[0, 1, 2], [3, 4, 5]]
    assert [r.tolist() for r in dali.split_rows(padded, batching=False)] == [[0, 1, 2, 3, 4, 5]]
    ragged = np.arange(4, dtype=np.uint8)
    assert [r.tolist() for r in dali.split_rows(ragged, batching=True)] == [[0, 1, 2, 3]]
    assert all(r.flags.c_contiguous for r in dali.split_rows(padded.T, batching=True))


def test_join_and_split_keep_the_request_order():
    a, b, c = (np.full(2, v, np.uint8) for v in (1, 2, 3))
    joined, counts = dali.join_requests([{"x": [a]}, {"x": [b, c]}], ["x"])
    assert [s.tolist() for s in joined["x"]] == [[1, 1], [2, 2], [3, 3]] and counts == [1, 2]
    outputs = [np.arange(3)]
    assert [[o.tolist() for o in s] for s in dali.split_outputs(outputs, counts)] == [
        [[0]],
        [[1, 2]],
    ]


def test_load_pipeline_factory_takes_the_autoserialize_pipeline(monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    factory = dali.load_pipeline_factory(ROOT / "dali" / "pipeline.py")
    assert getattr(factory, "_is_autoserialize", False) is True
    assert sys.dont_write_bytecode is True, "no __pycache__ in the model repository"


def test_load_pipeline_factory_falls_back_to_pipeline(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", sys.dont_write_bytecode)
    source = tmp_path / "1" / "dali.py"
    source.parent.mkdir()
    source.write_text("def helper():\n    pass\n\n\ndef pipeline():\n    return 'built'\n")
    assert dali.load_pipeline_factory(source)() == "built"


def test_load_pipeline_factory_refuses_a_file_without_a_pipeline(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", sys.dont_write_bytecode)
    source = tmp_path / "dali.py"
    source.write_text("pipeline = 3\n")
    with pytest.raises(ValueError, match="exactly one @autoserialize"):
        dali.load_pipeline_factory(source)
    with pytest.raises(FileNotFoundError, match="run tritonship build"):
        dali.load_pipeline_factory(tmp_path / "missing.py")


def test_the_helpers_screen_nothing():
    """No screening, no Pillow: protections live in the repository's guard step."""
    source = (BACKENDS / "dali" / "dali_helpers.py").read_text()
    model = (BACKENDS / "dali" / "model.py").read_text()
    for text in (source, model):
        assert "from PIL" not in text and "import PIL" not in text
        assert "screen_" not in text and "MAX_PIXELS" not in text and "_respond_alone" not in text


# --- DALI stand-in: a batch of requests -----------------------------------------------------

DALI_INPUT, DALI_OUTPUT = "DALI_INPUT_0", "DALI_OUTPUT_0"


def dali_config(max_batch_size: int) -> dict:
    return {
        "name": "dali",
        "max_batch_size": max_batch_size,
        "input": [{"name": DALI_INPUT, "data_type": "TYPE_UINT8", "dims": ["-1"]}],
        "output": [{"name": DALI_OUTPUT, "data_type": "TYPE_FP32", "dims": ["299", "299", "3"]}],
        "parameters": {"num_threads": {"string_value": "2"}},
    }


def dali_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_batch_size: int = 4):
    """The DALI stand-in serving the checkout's pipeline."""
    (tmp_path / "1").mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "dali" / "pipeline.py", tmp_path / "1" / "dali.py")
    module = pb.load_model(BACKENDS / "dali" / "model.py", monkeypatch)
    model = module.TritonPythonModel()
    config = json.dumps(dali_config(max_batch_size))
    model.initialize(
        {"model_config": config, "model_repository": str(tmp_path), "model_version": "1"}
    )
    return model


PHOTO = photo_jpeg("chelsea")
CORRUPT = PHOTO[:600] + bytes(range(256)) * 8  # a valid header, then garbage


def request(*images: bytes) -> pb.InferenceRequest:
    width = max(len(i) for i in images)
    batch = np.zeros((len(images), width), np.uint8)
    for line, image in zip(batch, images, strict=True):
        line[: len(image)] = np.frombuffer(image, np.uint8)
    return pb.InferenceRequest(**{DALI_INPUT: batch})


def test_dali_one_bad_image_fails_every_request_of_the_batch(tmp_path, monkeypatch):
    model = dali_model(tmp_path, monkeypatch)
    responses = model.execute([request(PHOTO), request(CORRUPT)])
    assert all(r.has_error() for r in responses), "ExecuteBatched: one error for all"
    errors = [r.error for r in responses]
    assert {e.code() for e in errors} == {pb.TritonError.UNKNOWN}, "HTTP 400, as the real one"
    assert len({e.message() for e in errors}) == 1
    assert errors[0].message().startswith("Runtime error: Critical error in pipeline:")
    assert "decoders.image" in errors[0].message()


def test_dali_rebuilds_the_pipeline_after_a_failure(tmp_path, monkeypatch):
    model = dali_model(tmp_path, monkeypatch)
    assert model.execute([request(CORRUPT)])[0].has_error()
    [answer] = model.execute([request(PHOTO)])
    assert not answer.has_error() and answer.output(DALI_OUTPUT).shape == (1, 299, 299, 3)


def test_dali_answers_each_request_with_its_own_rows(tmp_path, monkeypatch):
    model = dali_model(tmp_path, monkeypatch)
    other = photo_jpeg("astronaut")
    together = model.execute([request(PHOTO), request(other, PHOTO)])
    alone = [model.execute([request(PHOTO)])[0], model.execute([request(other, PHOTO)])[0]]
    for joint, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(joint.output(DALI_OUTPUT), single.output(DALI_OUTPUT))
    assert together[1].output(DALI_OUTPUT).shape == (2, 299, 299, 3)


@pytest.mark.parametrize(
    "images", [np.zeros((1, 0), np.uint8), np.zeros((1, 64), np.uint8)], ids=["no bytes", "zeros"]
)
def test_dali_screens_nothing_empty_images_reach_the_decoder(tmp_path, monkeypatch, images):
    model = dali_model(tmp_path, monkeypatch)
    [answer] = model.execute([pb.InferenceRequest(**{DALI_INPUT: images})])
    assert answer.has_error(), "the decoder, not the stand-in, refuses it"
    assert answer.error.message().startswith("Runtime error: Critical error in pipeline:")


def test_dali_without_batching_fails_only_the_bad_request(tmp_path, monkeypatch):
    model = dali_model(tmp_path, monkeypatch, max_batch_size=0)
    one = pb.InferenceRequest(**{DALI_INPUT: np.frombuffer(PHOTO, np.uint8)})
    bad = pb.InferenceRequest(**{DALI_INPUT: np.frombuffer(CORRUPT, np.uint8)})
    good, failed = model.execute([one, bad])  # ExecuteUnbatched: request by request
    assert not good.has_error() and good.output(DALI_OUTPUT).shape == (299, 299, 3)
    assert failed.has_error() and failed.error.code() == pb.TritonError.UNKNOWN
