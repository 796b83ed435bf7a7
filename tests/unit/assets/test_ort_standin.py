"""The ONNX Runtime stand-in: its pure helpers, and model.py under a fake Python backend.

The helpers (container/backends/onnxruntime/ort_helpers.py) are loaded by file path. The
stand-in's model.py imports ``triton_python_backend_utils``, which exists only inside the
Python backend stub: here a small fake module stands in for it, so initialize/execute run
on tiny ONNX models made with ``onnx.helper`` (no server, no Keras).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import ROOT
from tests.unit.assets.test_standins import load

BACKEND = ROOT / "container" / "backends" / "onnxruntime"
ort_helpers = load(BACKEND / "ort_helpers.py")
ConfigError = ort_helpers.ConfigError


def tiny_model(path: Path, batch: bool = True, classes: int = 3, dtype: int = TensorProto.FLOAT):
    """``input`` [N, 2] -> ``probabilities`` = softmax(input @ W) [N, classes]."""
    lead = ["batch"] if batch else []
    x = helper.make_tensor_value_info("input", dtype, [*lead, 2])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [*lead, classes])
    weights = helper.make_tensor("W", TensorProto.FLOAT, [2, classes], [1.0] * 2 * classes)
    nodes = [helper.make_node("MatMul", ["input", "W"], ["logits"])]
    if dtype != TensorProto.FLOAT:
        nodes = [
            helper.make_node("Cast", ["input"], ["x32"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["x32", "W"], ["logits"]),
        ]
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def config(**overrides: Any) -> dict[str, Any]:
    """A model config as the Python backend receives it (JSON of the ModelConfig)."""
    base = {
        "name": "tiny",
        "max_batch_size": 8,
        "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["2"]}],
        "output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["3"]}],
        "parameters": {},
    }
    return {**base, **overrides}


def model_tensors(session) -> tuple[dict, dict]:
    def table(args):
        return {a.name: (a.type, list(a.shape)) for a in args}

    return table(session.get_inputs()), table(session.get_outputs())


# --- helpers ---------------------------------------------------------------------------------


def test_model_path_default_custom_directory_and_missing(tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx")
    assert ort_helpers.model_path(str(tmp_path), "1", config()) == tmp_path / "1" / "model.onnx"
    tiny_model(tmp_path / "1" / "net.onnx" / "model.onnx")
    custom = config(default_model_filename="net.onnx")
    assert ort_helpers.model_path(str(tmp_path), "1", custom).parent.name == "net.onnx"
    with pytest.raises(
        ConfigError, match=r"unable to find '.*2/model.onnx' for model instance 'tiny'"
    ):
        ort_helpers.model_path(str(tmp_path), "2", config())


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, {"execution_mode": 0}),
        (
            {"intra_op_thread_count": "2", "inter_op_thread_count": "0"},
            {"execution_mode": 0, "intra_op_thread_count": 2},  # 0: ONNX Runtime decides
        ),
        (
            {"execution_mode": "1", "enable_mem_arena": "off"},
            {"execution_mode": 1, "enable_mem_arena": False},
        ),
        ({"intra_op_thread_count": " 3threads"}, {"execution_mode": 0, "intra_op_thread_count": 3}),
    ],
)
def test_session_settings(parameters: dict, expected: dict):
    settings = ort_helpers.session_settings(
        config(parameters={k: {"string_value": v} for k, v in parameters.items()})
    )
    assert settings == {"graph_level": "ORT_ENABLE_ALL", **expected}


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"execution_mode": "2"}, "execution_mode are 0 or 1 but got 2 ."),
        ({"intra_op_thread_count": "two"}, "failed to convert 'two' to integral number"),
        ({"enable_mem_pattern": "maybe"}, "failed to convert 'maybe' to boolean"),
    ],
)
def test_session_settings_refusals_use_the_backend_words(parameters: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        ort_helpers.session_settings(
            config(parameters={k: {"string_value": v} for k, v in parameters.items()})
        )


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (-1, "ORT_ENABLE_BASIC"),
        (1, "ORT_ENABLE_EXTENDED"),
        (2, "ORT_DISABLE_ALL"),
        (7, "ORT_ENABLE_ALL"),
    ],
)
def test_graph_level(level: int, name: str):
    assert ort_helpers.graph_level(config(optimization={"graph": {"level": str(level)}})) == name


def test_gpu_accelerators_are_ignored_on_a_cpu_instance_unknown_cpu_ones_refused():
    gpu = {"gpu_execution_accelerator": [{"name": "tensorrt", "parameters": {}}]}
    notes = ort_helpers.accelerators(config(optimization={"execution_accelerators": gpu}), "CPU")
    assert notes == ["CPU instance: GPU accelerators tensorrt not used"]
    assert (
        ort_helpers.accelerators(config(optimization={"execution_accelerators": gpu}), "GPU") == []
    )
    cpu = {"cpu_execution_accelerator": [{"name": "mkl"}]}
    with pytest.raises(ConfigError, match="unknown Execution Accelerator 'mkl' is requested"):
        ort_helpers.accelerators(config(optimization={"execution_accelerators": cpu}), "CPU")
    openvino = {"cpu_execution_accelerator": [{"name": "openvino"}]}
    [note] = ort_helpers.accelerators(
        config(optimization={"execution_accelerators": openvino}), "CPU"
    )
    assert "no OpenVINO" in note


@pytest.fixture(scope="module")
def tiny_session(tmp_path_factory: pytest.TempPathFactory):
    import onnxruntime as ort

    path = tiny_model(tmp_path_factory.mktemp("ort") / "model.onnx")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_matching_config_passes(tiny_session):
    inputs, outputs = model_tensors(tiny_session)
    ort_helpers.check_tensors(config(), "input", inputs)
    ort_helpers.check_tensors(config(), "output", outputs)


@pytest.mark.parametrize(
    ("change", "kind", "message"),
    [
        (
            {"input": [{"name": "image", "data_type": "TYPE_FP32", "dims": ["2"]}]},
            "input",
            "unexpected inference input 'image', allowed inputs are: input",
        ),
        (
            {"input": [{"name": "input", "data_type": "TYPE_FP16", "dims": ["2"]}]},
            "input",
            "unable to load model 'tiny', configuration expects datatype TYPE_FP16 for input "
            "'input', model provides TYPE_FP32",
        ),
        (
            {"input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["2"]}] * 2},
            "input",
            "configuration expects 2 inputs, model provides 1",
        ),
        (
            {"input": [{"name": "input", "data_type": "TYPE_FP32", "dims": ["4"]}]},
            "input",
            r"model 'tiny', tensor 'input': the model expects 2 dimensions \(shape \[-1,2\]\) but "
            r"the model configuration specifies 2 dimensions \(an initial batch dimension because "
            r"max_batch_size > 0 followed by the explicit tensor shape, making complete shape "
            r"\[-1,4\]\)",
        ),
        (
            {"output": [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["-1"]}]},
            "output",
            r"the model expects 2 dimensions \(shape \[-1,3\]\)",  # outputs compare exactly
        ),
        (
            {"output": [{"name": "softmax", "data_type": "TYPE_FP32", "dims": ["3"]}]},
            "output",
            "unexpected inference output 'softmax', allowed outputs are: probabilities",
        ),
    ],
)
def test_config_mismatches_refuse_the_model(tiny_session, change: dict, kind: str, message: str):
    inputs, outputs = model_tensors(tiny_session)
    with pytest.raises(ConfigError, match=message):
        ort_helpers.check_tensors(config(**change), kind, inputs if kind == "input" else outputs)


def test_batching_needs_a_free_first_dimension():
    with pytest.raises(
        ConfigError,
        match="the first dimension must be -1; but shape expected by "
        r"the model is \[2\]",
    ):
        ort_helpers.compare_dims("m", "input", [2], [2], 8, False)
    ort_helpers.compare_dims("m", "input", [2], [2], 0, False)  # no batching: as declared


@pytest.mark.parametrize(
    ("total", "max_batch", "error"),
    [
        (1, 0, None),
        (2, 0, "batch size 2 for 'm', max allowed is 0"),
        (8, 8, None),
        (9, 8, "batch size 9 for 'm', max allowed is 8"),
    ],
)
def test_batch_error(total: int, max_batch: int, error: str | None):
    assert ort_helpers.batch_error(total, max_batch, "m") == error


def test_error_message_keeps_onnx_runtimes_code_and_text(tiny_session):
    with pytest.raises(Exception) as caught:
        tiny_session.run(None, {"input": np.zeros((1, 5), np.float32)})
    message = ort_helpers.error_message(caught.value)
    assert message.startswith("onnx runtime error 2: Got invalid dimensions for input: input")
    assert ort_helpers.error_message(RuntimeError("boom")) == "onnx runtime error 1: boom"


# --- model.py under a fake Python backend ------------------------------------------------------


class FakeError:
    INTERNAL = 13

    def __init__(self, message: str, code: int = 13) -> None:
        self.message, self.code = message, code


class FakeResponse:
    def __init__(self, output_tensors=None, error=None) -> None:
        self.tensors = {t.name: t.array for t in output_tensors or []}
        self.error = error


class FakeTensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


@pytest.fixture()
def standin(monkeypatch: pytest.MonkeyPatch):
    """The stand-in's TritonPythonModel class, with a fake triton_python_backend_utils."""
    fake = types.ModuleType("triton_python_backend_utils")
    fake.Tensor = FakeTensor
    fake.InferenceResponse = FakeResponse
    fake.TritonError = FakeError
    fake.Logger = types.SimpleNamespace(log_warn=lambda m: None, log_error=lambda m: None)
    fake.get_input_tensor_by_name = lambda request, name: request[name]
    fake.triton_string_to_numpy = lambda t: {"TYPE_FP32": np.float32, "TYPE_INT32": np.int32}[t]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    monkeypatch.delitem(sys.modules, "ort_helpers", raising=False)
    module = load(BACKEND / "model.py")
    monkeypatch.delitem(sys.modules, "ort_helpers", raising=False)
    return module.TritonPythonModel


def start(standin, tmp_path: Path, cfg: dict[str, Any]):
    model = standin()
    model.initialize(
        {
            "model_config": json.dumps(cfg),
            "model_repository": str(tmp_path),
            "model_version": "1",
            "model_instance_kind": "CPU",
        }
    )
    return model


def request(rows: list[list[float]]) -> dict:
    return {"input": FakeTensor("input", np.array(rows, np.float32))}


def test_requests_of_one_call_run_as_one_batch_and_split_back(standin, tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx")
    model = start(standin, tmp_path, config())
    responses = model.execute([request([[0, 1]]), request([[1, 0], [2, 2]])])
    assert [r.error for r in responses] == [None, None]
    assert [r.tensors["probabilities"].shape for r in responses] == [(1, 3), (2, 3)]
    np.testing.assert_allclose(responses[1].tensors["probabilities"].sum(axis=1), 1.0, rtol=1e-6)


def test_a_batch_above_max_batch_size_fails_every_request(standin, tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx")
    model = start(standin, tmp_path, config(max_batch_size=2))
    responses = model.execute([request([[0, 1], [1, 1]]), request([[1, 0]])])
    assert {r.error.message for r in responses} == {"batch size 3 for 'tiny', max allowed is 2"}
    assert {r.error.code for r in responses} == {FakeError.INTERNAL}


def test_a_failed_run_fails_every_request_of_the_batch(standin, tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx")
    model = start(standin, tmp_path, config())
    good, bad = request([[0, 1]]), {"input": FakeTensor("input", np.zeros((1, 2, 2), np.float32))}
    responses = model.execute([good, bad])
    assert all(r.error is not None for r in responses)
    assert responses[0].error.message == responses[1].error.message
    assert responses[0].error.message.startswith("onnx runtime error")


def test_a_model_without_batching_takes_requests_as_they_are(standin, tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx", batch=False)
    cfg = config(max_batch_size=0)
    model = start(standin, tmp_path, cfg)
    [response] = model.execute([{"input": FakeTensor("input", np.array([1, 0], np.float32))}])
    assert response.tensors["probabilities"].shape == (3,)


def test_loading_refuses_a_config_that_does_not_match_the_model(standin, tmp_path: Path):
    tiny_model(tmp_path / "1" / "model.onnx", dtype=TensorProto.INT32)
    # model.py imports its own copy of ort_helpers: its ConfigError is a ValueError too
    with pytest.raises(ValueError, match="model provides TYPE_INT32"):
        start(standin, tmp_path, config())
