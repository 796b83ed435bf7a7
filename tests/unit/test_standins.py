"""The CPU stand-in backends' pure helpers, imported by file path (no Triton stub needed).

``container/backends/*/model.py`` import ``triton_python_backend_utils``, which exists only
inside the Python backend stub; their helpers live in sibling modules tested here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import ROOT
from tritonship.bench.hostile import jpeg_bomb
from tritonship.samples import photo_jpeg

BACKENDS = ROOT / "container" / "backends"


def load(path: Path) -> ModuleType:
    """Import a stand-in helper module by path, writing no ``__pycache__`` beside it."""
    spec = importlib.util.spec_from_file_location(f"standin_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


dali = load(BACKENDS / "dali" / "dali_helpers.py")
tf_helpers = load(BACKENDS / "tensorflow" / "tf_helpers.py")


def image(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)


# --- TensorFlow stand-in --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "tensor"), [("input", "input:0"), ("a/b:1", "a/b:1")])
def test_tensor_name_adds_the_output_index_only_when_missing(name: str, tensor: str):
    assert tf_helpers.tensor_name(name) == tensor


@pytest.mark.parametrize(
    ("cores", "groups", "expected"),
    [
        (8, [{"count": 2, "kind": "KIND_CPU"}], (4, 2)),  # cores shared among instances
        (16, [{"count": 2}, {"count": 2}], (4, 2)),  # every group's instances count
        (8, None, (8, 2)),  # no instance_group: one instance
        (8, [{"kind": "KIND_CPU"}], (8, 2)),  # a group without count holds one instance
        (2, [{"count": 2}], (2, 2)),  # at least 2 threads each
        (8, [{"count": 8}], (2, 2)),
        (1, [{"count": 2}], (1, 1)),  # never more than the cores
    ],
)
def test_thread_counts_share_the_cores(monkeypatch, cores, groups, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    config = {"name": "inception_graphdef"}
    if groups is not None:
        config["instance_group"] = groups
    assert tf_helpers.thread_counts(config) == expected


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


# --- DALI stand-in: errors ------------------------------------------------------------------

#: What DALI 2.4 raises for bytes that are no image (captured from a real run).
DALI_ERROR = (
    "Critical error in pipeline:\n"
    "Error in CPU operator `nvidia.dali.fn.decoders.image`,\n"
    "which was used in the pipeline definition with the following traceback:\n\n"
    '  File "/work/main/dali/pipeline.py", line 50, in inception_preprocess\n'
    "    images = fn.decoders.image(encoded, device=device, output_type=types.RGB)\n\n"
    "encountered:\n\n"
    "nvImageCodec failure: '#4'\n"
    "Current pipeline object is no longer valid."
)


def test_describe_dali_error_keeps_the_operator_and_the_cause():
    described = dali.describe_dali_error(RuntimeError(DALI_ERROR))
    assert described == (
        "Error in CPU operator `nvidia.dali.fn.decoders.image`: nvImageCodec failure: '#4'"
    )


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (RuntimeError("one line"), "one line"),
        (RuntimeError("first\n\n  second  \n"), "second"),
        (RuntimeError(""), "RuntimeError"),
        (ValueError("encountered:\nCurrent pipeline object is no longer valid."), "ValueError"),
    ],
)
def test_describe_dali_error_without_an_operator(error: Exception, described: str):
    assert dali.describe_dali_error(error) == described


def test_decode_failure_counts_from_one_and_names_the_formats():
    message = dali.decode_failure(1, 3, RuntimeError(DALI_ERROR))
    assert message.startswith("dali: image 2 of 3 cannot be decoded (corrupt, truncated or not ")
    assert dali.SUPPORTED_FORMATS in message
    assert message.endswith("nvImageCodec failure: '#4'")


def test_a_real_dali_failure_is_described(monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", sys.dont_write_bytecode)  # it sets it
    factory = dali.load_pipeline_factory(ROOT / "dali" / "pipeline.py")
    pipe = factory(batch_size=1, num_threads=1, device_id=None, exec_async=False)
    pipe.build()
    pipe.feed_input("DALI_INPUT_0", [image(b"not an image" * 10)])
    with pytest.raises(RuntimeError) as raised:
        pipe.run()
    described = dali.describe_dali_error(raised.value)
    assert described.startswith("Error in CPU operator `nvidia.dali.fn.decoders.image`: ")
    assert "\n" not in described and "no longer valid" not in described


# --- DALI stand-in: loading the pipeline ----------------------------------------------------


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


# --- DALI stand-in: splitting and screening requests ----------------------------------------


def test_split_rows():
    padded = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert [r.tolist() for r in dali.split_rows(padded, batching=True)] == [[0, 1, 2], [3, 4, 5]]
    assert [r.tolist() for r in dali.split_rows(padded, batching=False)] == [[0, 1, 2, 3, 4, 5]]
    ragged = np.arange(4, dtype=np.uint8)
    assert [r.tolist() for r in dali.split_rows(ragged, batching=True)] == [[0, 1, 2, 3]]
    assert all(r.flags.c_contiguous for r in dali.split_rows(padded.T, batching=True))


def test_a_valid_photo_passes_the_screen():
    assert dali.screen_request({"DALI_INPUT_0": [image(photo_jpeg("chelsea"))]}) is None


@pytest.mark.parametrize("empty", [b"", bytes(64)], ids=["no bytes", "zero padding"])
def test_an_empty_image_is_refused(empty: bytes):
    samples = {"DALI_INPUT_0": [image(photo_jpeg("chelsea")), image(empty)]}
    assert dali.screen_request(samples) == "dali: image 2 of 2 is empty (no bytes)"


def test_a_bomb_header_is_refused_without_decoding():
    refusal = dali.screen_request({"DALI_INPUT_0": [image(jpeg_bomb())]})
    assert refusal == (
        "dali: image 1 of 1 declares 65500x65500 pixels, more than the limit of 40 megapixels "
        "(a decompression bomb?)"
    )


def test_the_pixel_limit_is_inclusive(monkeypatch):
    photo = photo_jpeg("chelsea")
    width, height = dali.declared_size(photo)
    assert width * height > 0
    monkeypatch.setattr(dali, "MAX_PIXELS", width * height)
    assert dali.screen_request({"x": [image(photo)]}) is None
    monkeypatch.setattr(dali, "MAX_PIXELS", width * height - 1)
    assert "declares" in dali.screen_request({"x": [image(photo)]})


def test_an_unreadable_header_is_left_to_dali():
    assert dali.declared_size(b"not an image at all") == (0, 0)
    assert dali.screen_request({"x": [image(b"not an image at all")]}) is None
