"""A repository tritonship did not build: NVIDIA's ``sm_model``, an ONNX add/sub model.

Shaped as server ``qa/L0_sagemaker/test.sh`` (r24.10 L73-75) makes it from
``qa/common/gen_qa_models.py`` ``create_onnx_modelfile`` for int32 (L1270-1330): inputs
INPUT0 and INPUT1, INT32 ``[16]``, batching up to 8; OUTPUT0 is their sum, OUTPUT1 their
difference. Built here with onnx's helper API in milliseconds; no build manifest.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

NAME = "sm_model"
DIMS = 16
MAX_BATCH = 8
CONFIG = f"""name: "{NAME}"
platform: "onnxruntime_onnx"
max_batch_size: {MAX_BATCH}
input [
  {{ name: "INPUT0" data_type: TYPE_INT32 dims: [ {DIMS} ] }},
  {{ name: "INPUT1" data_type: TYPE_INT32 dims: [ {DIMS} ] }}
]
output [
  {{ name: "OUTPUT0" data_type: TYPE_INT32 dims: [ {DIMS} ] }},
  {{ name: "OUTPUT1" data_type: TYPE_INT32 dims: [ {DIMS} ] }}
]
"""


def add_sub_model() -> onnx.ModelProto:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 on INT32 ``[batch, 16]``."""
    shape = ["batch", DIMS]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT32, shape) for n in ("INPUT0", "INPUT1")
    ]
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.INT32, shape) for n in ("OUTPUT0", "OUTPUT1")
    ]
    nodes = [
        helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
        helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"]),
    ]
    graph = helper.make_graph(nodes, NAME, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what ONNX Runtime 1.19 (Triton 24.09/24.10) reads
    onnx.checker.check_model(model)
    return model


def _int32(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT32, shape)


def write_model(folder: Path, name: str = NAME) -> Path:
    """``folder/<name>/config.pbtxt`` and ``1/model.onnx``; return the model folder."""
    model_dir = folder / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(CONFIG.replace(f'"{NAME}"', f'"{name}"'))
    onnx.save(add_sub_model(), model_dir / "1" / "model.onnx")
    return model_dir


def add_sub_repository(dest: Path, names: tuple[str, ...] = (NAME,)) -> Path:
    """A repository of add/sub models (one per name), with no build manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_model(dest, name)
    return dest


def _ensemble_config(name: str, steps: list[tuple[str, dict, dict]], outputs: tuple) -> str:
    """An ensemble over add/sub steps: (model, input_map, output_map) each."""
    text = [f'name: "{name}"', 'platform: "ensemble"', f"max_batch_size: {MAX_BATCH}"]
    for kind, names in (("input", ("INPUT0", "INPUT1")), ("output", outputs)):
        text += [f'{kind} {{ name: "{n}" data_type: TYPE_INT32 dims: [ {DIMS} ] }}' for n in names]
    text.append("ensemble_scheduling {")
    for model, inputs, outs in steps:
        text.append(f'  step {{ model_name: "{model}" model_version: -1')
        text += [f'    input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items()]
        text += [f'    output_map {{ key: "{k}" value: "{v}" }}' for k, v in outs.items()]
        text.append("  }")
    return "\n".join([*text, "}"]) + "\n"


def _step(model: str, in0: str, in1: str, out0: str, out1: str) -> tuple[str, dict, dict]:
    return model, {"INPUT0": in0, "INPUT1": in1}, {"OUTPUT0": out0, "OUTPUT1": out1}


def write_ensemble(folder: Path, name: str, steps: list[tuple[str, dict, dict]], outputs) -> None:
    """``folder/<name>``: an ensemble config and its empty version folder."""
    (folder / name / "1").mkdir(parents=True, exist_ok=True)
    (folder / name / "config.pbtxt").write_text(_ensemble_config(name, steps, outputs))


def ensembles_repository(dest: Path) -> Path:
    """Two top-level ensembles sharing a model, and a model no ensemble uses.

    ``single`` runs ``add_a``; ``chain`` runs ``add_a`` then ``add_b`` on its sum and
    difference; ``lone`` stands alone. A README sits at the root, as Triton ignores it.
    """
    add_sub_repository(dest, ("add_a", "add_b", "lone"))
    write_ensemble(
        dest, "single", [_step("add_a", "INPUT0", "INPUT1", "SUM", "DIFF")], ("SUM", "DIFF")
    )
    chain = [
        _step("add_a", "INPUT0", "INPUT1", "s", "d"),
        _step("add_b", "s", "d", "OUT0", "OUT1"),
    ]
    write_ensemble(dest, "chain", chain, ("OUT0", "OUT1"))
    (dest / "README.txt").write_text("add/sub models for the multi-model tests\n")
    return dest
