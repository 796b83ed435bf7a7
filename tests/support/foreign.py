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


def make_add_sub_repository(root: Path, name: str = "sm_model") -> Path:
    """Write a one-model repository under ``root`` (``root/<name>/...``); return ``root``."""
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(add_sub_graph(), model_dir / "1" / "model.onnx")
    config = text_format.MessageToString(add_sub_config(name))
    (model_dir / "config.pbtxt").write_text(config, encoding="utf-8")
    labels = "".join(f"label{i}\n" for i in range(DIMS))
    (model_dir / "output0_labels.txt").write_text(labels, encoding="utf-8")
    return root


def add_sub_inputs(batch: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two INT32 ``[batch, 16]`` arrays of small random values (sums stay in range)."""
    rng = np.random.default_rng(seed)
    shape = (batch, DIMS)
    return (
        rng.integers(-1000, 1000, shape, dtype=np.int32),
        rng.integers(-1000, 1000, shape, dtype=np.int32),
    )
