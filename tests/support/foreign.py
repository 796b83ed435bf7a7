"""A foreign repository: NVIDIA's ``sm_model``, the ONNX add/sub model of their SageMaker tests.

NVIDIA's ``qa/L0_sagemaker/test.sh`` (server v2.51.0, L73-75) serves
``qa_model_repository/onnx_int32_int32_int32`` renamed to ``sm_model``: two INT32 inputs
``INPUT0`` and ``INPUT1`` of shape [16] (batched, ``max_batch_size`` 8), ``OUTPUT0`` their
sum and ``OUTPUT1`` their difference, ``platform: "onnxruntime_onnx"``. The graph is built
as ``create_onnx_modelfile`` builds it (``qa/common/gen_qa_models.py`` L1239-1348:
Identity, Add, Sub, Cast nodes) and the config as ``create_onnx_modelconfig`` writes it
(L1351-1400), here with ``model_config_pb2`` and protobuf text format. tritonship built
none of it: no build manifest, no ensemble, no labels of ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf import text_format
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2 as mc

NAME = "sm_model"
#: The tensors' shape without the batch dimension, and the largest batch.
DIMS = 16
MAX_BATCH = 8
INPUTS = ("INPUT0", "INPUT1")
OUTPUTS = ("OUTPUT0", "OUTPUT1")


def add_sub_graph() -> onnx.ModelProto:
    """``OUTPUT0 = INPUT0 + INPUT1``, ``OUTPUT1 = INPUT0 - INPUT1``, INT32 [-1, 16]."""
    dims = [None, DIMS]  # None: a dynamic batch dimension, as gen_qa_models writes it
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT32, dims) for name in INPUTS]
    outputs = [helper.make_tensor_value_info(name, TensorProto.INT32, dims) for name in OUTPUTS]
    nodes = [
        helper.make_node("Identity", ["INPUT0"], ["_INPUT0"]),
        helper.make_node("Identity", ["INPUT1"], ["_INPUT1"]),
        helper.make_node("Add", ["_INPUT0", "_INPUT1"], ["CAST0"]),
        helper.make_node("Sub", ["_INPUT0", "_INPUT1"], ["CAST1"]),
        helper.make_node("Cast", ["CAST0"], ["OUTPUT0"], to=TensorProto.INT32),
        helper.make_node("Cast", ["CAST1"], ["OUTPUT1"], to=TensorProto.INT32),
    ]
    graph = helper.make_graph(nodes, "onnx_int32_int32_int32", inputs, outputs)
    model = helper.make_model(
        graph, producer_name="triton", opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 8  # readable by every ONNX Runtime the images ship
    onnx.checker.check_model(model)
    return model


def add_sub_config(name: str) -> mc.ModelConfig:
    """The model's ``config.pbtxt`` as a typed config."""
    config = mc.ModelConfig(name=name, platform="onnxruntime_onnx", max_batch_size=MAX_BATCH)
    for tensor in INPUTS:
        config.input.add(name=tensor, data_type=mc.TYPE_INT32, dims=[DIMS])
    for tensor in OUTPUTS:
        config.output.add(name=tensor, data_type=mc.TYPE_INT32, dims=[DIMS])
    config.output[0].label_filename = "output0_labels.txt"
    return config


def _write_config(folder: Path, config: mc.ModelConfig) -> None:
    (folder / "1").mkdir(parents=True, exist_ok=True)
    text = text_format.MessageToString(config)
    (folder / "config.pbtxt").write_text(text, encoding="utf-8")


def make_add_sub_repository(root: Path, name: str = NAME) -> Path:
    """Write a one-model repository under ``root`` (``root/<name>/...``); return ``root``."""
    return add_sub_repository(root, (name,))


def add_sub_repository(root: Path, names: tuple[str, ...] = (NAME,)) -> Path:
    """A repository of add/sub models (one per name), with no build manifest; ``root``."""
    for name in names:
        model_dir = root / name
        _write_config(model_dir, add_sub_config(name))
        onnx.save(add_sub_graph(), model_dir / "1" / "model.onnx")
        labels = "".join(f"label{i}\n" for i in range(DIMS))
        (model_dir / "output0_labels.txt").write_text(labels, encoding="utf-8")
    return root


Step = tuple[str, dict[str, str], dict[str, str]]


def step(model: str, in0: str, in1: str, out0: str, out1: str) -> Step:
    """An ensemble step over an add/sub model: (model, input_map, output_map)."""
    return model, {"INPUT0": in0, "INPUT1": in1}, {"OUTPUT0": out0, "OUTPUT1": out1}


def write_ensemble(root: Path, name: str, steps: list[Step], outputs: tuple[str, ...]) -> None:
    """``root/<name>``: an ensemble of add/sub steps (INT32 [16] inputs INPUT0, INPUT1)."""
    config = mc.ModelConfig(name=name, platform="ensemble", max_batch_size=MAX_BATCH)
    for tensor in INPUTS:
        config.input.add(name=tensor, data_type=mc.TYPE_INT32, dims=[DIMS])
    for tensor in outputs:
        config.output.add(name=tensor, data_type=mc.TYPE_INT32, dims=[DIMS])
    for model, inputs, outs in steps:
        added = config.ensemble_scheduling.step.add(model_name=model, model_version=-1)
        added.input_map.update(inputs)
        added.output_map.update(outs)
    _write_config(root / name, config)


def ensembles_repository(root: Path) -> Path:
    """Two top-level ensembles sharing a model, and a model no ensemble uses.

    ``single`` runs ``add_a``; ``chain`` runs ``add_a`` then ``add_b`` on its sum and
    difference; ``lone`` stands alone. A README sits at the root, which Triton ignores.
    """
    add_sub_repository(root, ("add_a", "add_b", "lone"))
    write_ensemble(
        root, "single", [step("add_a", "INPUT0", "INPUT1", "SUM", "DIFF")], ("SUM", "DIFF")
    )
    chain = [step("add_a", "INPUT0", "INPUT1", "s", "d"), step("add_b", "s", "d", "OUT0", "OUT1")]
    write_ensemble(root, "chain", chain, ("OUT0", "OUT1"))
    (root / "README.txt").write_text("add/sub models for the multi-model tests\n")
    return root


def add_sub_inputs(batch: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two INT32 ``[batch, 16]`` arrays of small random values (sums stay in range)."""
    rng = np.random.default_rng(seed)
    shape = (batch, DIMS)
    return (
        rng.integers(-1000, 1000, shape, dtype=np.int32),
        rng.integers(-1000, 1000, shape, dtype=np.int32),
    )
