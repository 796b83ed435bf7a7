"""Execution accelerators in a model config: ``--accelerator tensorrt[:fp16]`` and their rules.

``optimization { execution_accelerators { gpu_execution_accelerator: [...] } }`` is read by
the backend, not by Triton's core, so a wrong name or parameter only shows when the model
loads on a GPU instance. These rules are the backends' own, checked statically:

- ONNX Runtime backend (onnxruntime_backend r24.10 ``src/onnxruntime.cc``): GPU accelerators
  ``tensorrt`` (parameters L444-683: "unsupported precision mode" L466, "unknown parameter
  '<key>' is provided for TensorRT Execution Accelerator" L678) and ``cuda`` (L716-741, any
  parameter is passed on), else "unknown Execution Accelerator '<name>' is requested"
  (L745); CPU: ``openvino`` only (L886-916). The GPU list is read only on GPU (or AUTO)
  instances (L420): a CPU instance ignores it. Names and parameters are the same from
  r24.09 to r26.04.
- TensorFlow backend (tensorflow_backend r24.09 ``src/tensorflow.cc`` L812-877): GPU
  ``tensorrt``, ``gpu_io`` and ``auto_mixed_precision``.
- Every other backend ignores the block.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.errors import UsageError

TENSORRT = "tensorrt"
PRECISIONS = ("FP32", "FP16", "INT8")
#: What ``--accelerator`` offers: INT8 needs a calibration table, so it is not offered.
OFFERED = {"tensorrt": "FP32", "tensorrt:fp32": "FP32", "tensorrt:fp16": "FP16"}
#: TensorRT's scratch memory: the value of the ONNX Runtime backend README's example (1 GiB).
WORKSPACE_BYTES = 1 << 30

#: Accelerator names each backend accepts, per list.
ACCELERATOR_NAMES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "onnxruntime": {
        "gpu": frozenset({"tensorrt", "cuda"}),
        "cpu": frozenset({"openvino"}),
    },
    "tensorflow": {
        "gpu": frozenset({"tensorrt", "gpu_io", "auto_mixed_precision"}),
        "cpu": frozenset(),
    },
}

_BOOL = "bool"
_INT = "int"
_UINT = "unsigned int"
_TEXT = "string"
#: The ONNX Runtime backend's TensorRT parameters and how it parses each value.
TENSORRT_PARAMETERS: Mapping[str, str] = {
    "precision_mode": "precision",
    "max_workspace_size_bytes": _UINT,
    **dict.fromkeys(
        (
            "trt_max_partition_iterations",
            "trt_min_subgraph_size",
            "trt_dla_core",
            "trt_builder_optimization_level",
            "trt_auxiliary_streams",
            "trt_ep_context_embed_mode",
        ),
        _INT,
    ),
    **dict.fromkeys(
        (
            "int8_use_native_calibration_table",
            "trt_dla_enable",
            "trt_engine_cache_enable",
            "trt_dump_subgraphs",
            "trt_force_sequential_engine_build",
            "trt_context_memory_sharing_enable",
            "trt_layer_norm_fp32_fallback",
            "trt_timing_cache_enable",
            "trt_force_timing_cache",
            "trt_detailed_build_log",
            "trt_build_heuristics_enable",
            "trt_sparsity_enable",
            "trt_cuda_graph_enable",
            "trt_dump_ep_context_model",
        ),
        _BOOL,
    ),
    **dict.fromkeys(
        (
            "int8_calibration_table_name",
            "trt_engine_cache_path",
            "trt_engine_cache_prefix",
            "trt_timing_cache_path",
            "trt_tactic_sources",
            "trt_extra_plugin_lib_paths",
            "trt_profile_min_shapes",
            "trt_profile_max_shapes",
            "trt_profile_opt_shapes",
            "trt_ep_context_file_path",
        ),
        _TEXT,
    ),
}
#: ``ParseBoolValue`` (backend r24.10 ``src/backend_common.cc`` L972-991), case-insensitive.
_BOOLEANS = frozenset({"true", "on", "1", "false", "off", "0"})


@dataclass(frozen=True)
class Problem:
    """One accelerator problem: the message, and the text-format field that shows it."""

    message: str
    field: str
    value: str


def parse_accelerator(spec: str) -> str:
    """``tensorrt``, ``tensorrt:fp32`` or ``tensorrt:fp16`` -> the TensorRT precision mode."""
    precision = OFFERED.get(spec.strip().lower())
    if precision is None:
        raise UsageError(
            f"--accelerator {spec!r} is not offered",
            hint=f"use one of: {', '.join(OFFERED)}",
        )
    return precision


def add_tensorrt(config: mc.ModelConfig, precision: str) -> None:
    """Put ONNX Runtime's TensorRT execution accelerator first in the config's GPU list.

    A TensorRT entry already there is replaced; the others (e.g. ``cuda``) are kept after it.
    """
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    kept = [mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator()]
    kept[0].name = TENSORRT
    kept[0].parameters["precision_mode"] = precision
    kept[0].parameters["max_workspace_size_bytes"] = str(WORKSPACE_BYTES)
    kept += [a for a in accelerators if a.name != TENSORRT]
    del accelerators[:]
    accelerators.extend(kept)


def describe(config: mc.ModelConfig) -> str | None:
    """``tensorrt (FP16)``-style summary of the GPU accelerators, or None without any."""
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    if not accelerators:
        return None
    parts = []
    for accelerator in accelerators:
        precision = accelerator.parameters.get("precision_mode")
        parts.append(f"{accelerator.name} ({precision})" if precision else accelerator.name)
    return ", ".join(parts)


def problems(backend: str, config: mc.ModelConfig) -> list[Problem]:
    """What the model's backend would refuse (or silently ignore) in its accelerators."""
    lists = config.optimization.execution_accelerators
    entries = [("gpu", a) for a in lists.gpu_execution_accelerator]
    entries += [("cpu", a) for a in lists.cpu_execution_accelerator]
    if not entries:
        return []
    names = ACCELERATOR_NAMES.get(backend)
    if names is None:
        return [
            Problem(
                f"backend {backend!r} ignores execution_accelerators "
                "(only onnxruntime and tensorflow models read them)",
                "name",
                entries[0][1].name,
            )
        ]
    found = []
    for kind, accelerator in entries:
        if accelerator.name not in names[kind]:
            known = ", ".join(sorted(names[kind])) or "none"
            found.append(
                Problem(
                    f"unknown Execution Accelerator {accelerator.name!r} is requested in "
                    f"{kind}_execution_accelerator of a {backend} model (known: {known})",
                    "name",
                    accelerator.name,
                )
            )
        elif backend == "onnxruntime" and accelerator.name == TENSORRT:
            found += tensorrt_problems(accelerator.parameters)
    return found


def tensorrt_problems(parameters: Mapping[str, str]) -> Iterator[Problem]:
    """The ONNX Runtime backend's checks of each TensorRT parameter, in its words."""
    for key, value in parameters.items():
        kind = TENSORRT_PARAMETERS.get(key)
        if kind is None:
            yield Problem(
                f"unknown parameter {key!r} is provided for TensorRT Execution Accelerator",
                "key",
                key,
            )
        elif kind == "precision" and value not in PRECISIONS:
            yield Problem(
                f"unsupported precision mode {value!r} is requested "
                f"(precision_mode: {', '.join(PRECISIONS)})",
                "value",
                value,
            )
        elif not _parses(kind, value):
            yield Problem(f"TensorRT parameter {key!r}: {value!r} is not a {kind}", "key", key)


def _parses(kind: str, value: str) -> bool:
    """Whether ``value`` parses as the backend parses a parameter of ``kind``."""
    if kind == _BOOL:
        return value.lower() in _BOOLEANS
    if kind in (_INT, _UINT):
        try:
            number = int(value)
        except ValueError:
            return False
        return number >= 0 or kind == _INT
    return True
