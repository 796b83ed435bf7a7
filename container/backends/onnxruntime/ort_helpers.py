"""The ONNX Runtime stand-in's pure helpers: no ``triton_python_backend_utils``, so tests load them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/assets/test_ort_standin.py). Each helper does what the real
backend does, in its words. Sources: onnxruntime_backend r24.10 ``src/onnxruntime.cc``
(the backend of tritonserver 2.51, the native engine's server) and
``src/onnxruntime_utils.{h,cc}``, and backend r24.10 ``src/backend_common.cc``, cited per
function; docs/standins.md lists each imitated behaviour with its test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_FILENAME = "model.onnx"

#: Model config data types and ONNX Runtime's element type names (the Python API's
#: ``NodeArg.type``), as ``ModelConfigDataTypeToOnnxDataType`` pairs them (onnxruntime_utils.cc).
ONNX_TYPES: Mapping[str, str] = {
    "TYPE_BOOL": "tensor(bool)",
    "TYPE_UINT8": "tensor(uint8)",
    "TYPE_UINT16": "tensor(uint16)",
    "TYPE_UINT32": "tensor(uint32)",
    "TYPE_UINT64": "tensor(uint64)",
    "TYPE_INT8": "tensor(int8)",
    "TYPE_INT16": "tensor(int16)",
    "TYPE_INT32": "tensor(int32)",
    "TYPE_INT64": "tensor(int64)",
    "TYPE_FP16": "tensor(float16)",
    "TYPE_FP32": "tensor(float)",
    "TYPE_FP64": "tensor(double)",
    "TYPE_STRING": "tensor(string)",
}
_TRITON_TYPES = {onnx: name.removeprefix("TYPE_") for name, onnx in ONNX_TYPES.items()}
#: ``optimization { graph { level } }`` -> ONNX Runtime's GraphOptimizationLevel name
#: (L216-236); any other value keeps the default, every optimization.
GRAPH_LEVELS: Mapping[int, str] = {
    -1: "ORT_ENABLE_BASIC",
    1: "ORT_ENABLE_EXTENDED",
    2: "ORT_DISABLE_ALL",
}
DEFAULT_GRAPH_LEVEL = "ORT_ENABLE_ALL"
#: The CPU accelerators the backend knows (L886-916; only with OpenVINO built in).
CPU_ACCELERATORS = frozenset({"openvino"})
#: ``[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : message`` (the Python API's exception text).
_ORT_ERROR = re.compile(r"^\[ONNXRuntimeError\] : (\d+) : \w+ : (.*)$", re.DOTALL)
#: ``std::stoi`` accepts leading blanks, a sign and digits, ignoring what follows them.
_STOI = re.compile(r"^\s*([+-]?\d+)")


class ConfigError(ValueError):
    """A model the real backend refuses to load (its message is the backend's)."""


def model_path(repository: str, version: str, config: Mapping[str, Any]) -> Path:
    """The ONNX file of one version (``LoadModel``, L374-402).

    ``default_model_filename`` or ``model.onnx``; a directory means ``<dir>/model.onnx``;
    a missing file refuses the instance: "unable to find '<path>' for model instance ...".
    """
    path = Path(repository) / version / (config.get("default_model_filename") or DEFAULT_FILENAME)
    if path.is_dir():
        path = path / DEFAULT_FILENAME
    if not path.is_file():
        raise ConfigError(f"unable to find '{path}' for model instance '{config.get('name', '')}'")
    return path


def parse_int(text: str) -> int:
    """``ParseIntValue`` (backend_common.cc L994-1007): ``std::stoi``, its error text."""
    match = _STOI.match(text)
    if match is None:
        raise ConfigError(f"failed to convert '{text}' to integral number")
    return int(match.group(1))


def parse_bool(text: str) -> bool:
    """``ParseBoolValue`` (backend_common.cc L972-991): true/on/1, false/off/0."""
    value = text.lower()
    if value in ("true", "on", "1"):
        return True
    if value in ("false", "off", "0"):
        return False
    raise ConfigError(f"failed to convert '{text}' to boolean")


def _parameter(config: Mapping[str, Any], key: str) -> str | None:
    """A model parameter's string value, None when absent."""
    value = (config.get("parameters") or {}).get(key)
    return None if value is None else str(value.get("string_value", ""))


def session_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The session options the backend derives from the config (``ModelState``, L200-350).

    ``intra_op_thread_count`` / ``inter_op_thread_count``: set only when above 0 (0, the
    default, lets ONNX Runtime use one thread per physical core), L270-301;
    ``execution_mode`` 0 (sequential, default) or 1 (parallel), anything else refused,
    L240-263; ``optimization.graph.level``, L216-236; ``enable_mem_arena`` and
    ``enable_mem_pattern``, L305-358.
    """
    settings: dict[str, Any] = {"graph_level": graph_level(config)}
    mode = _parameter(config, "execution_mode")
    execution_mode = parse_int(mode) if mode is not None else 0
    if execution_mode not in (0, 1):
        raise ConfigError(
            "Invalid configuration value provided. Expected values for  execution_mode are "
            f"0 or 1 but got {execution_mode} ."
        )
    settings["execution_mode"] = execution_mode
    for key in ("intra_op_thread_count", "inter_op_thread_count"):
        text = _parameter(config, key)
        count = parse_int(text) if text is not None else 0
        if count > 0:
            settings[key] = count
    for key in ("enable_mem_arena", "enable_mem_pattern"):
        text = _parameter(config, key)
        if text is not None:
            settings[key] = parse_bool(text)
    return settings


def graph_level(config: Mapping[str, Any]) -> str:
    """The graph optimization level's name (``optimization { graph { level } }``)."""
    graph = (config.get("optimization") or {}).get("graph") or {}
    return GRAPH_LEVELS.get(int(graph.get("level", 0) or 0), DEFAULT_GRAPH_LEVEL)


def accelerators(config: Mapping[str, Any], instance_kind: str) -> list[str]:
    """Accelerator notes for the log; refuse the ones the backend refuses on this instance.

    GPU accelerators are read only by GPU (and AUTO) instances (L420-421), so a CPU instance
    ignores them. CPU accelerators other than ``openvino`` are refused: "unknown Execution
    Accelerator '<name>' is requested" (L911-915). The stand-in has no OpenVINO: it runs
    ONNX Runtime's CPU provider instead, as the note says.
    """
    lists = (config.get("optimization") or {}).get("execution_accelerators") or {}
    notes = []
    gpu = [entry.get("name", "") for entry in lists.get("gpu_execution_accelerator") or []]
    if gpu and instance_kind.upper() not in ("GPU", "AUTO"):
        notes.append(f"{instance_kind} instance: GPU accelerators {', '.join(gpu)} not used")
    for entry in lists.get("cpu_execution_accelerator") or []:
        name = entry.get("name", "")
        if name not in CPU_ACCELERATORS:
            raise ConfigError(f"unknown Execution Accelerator '{name}' is requested")
        notes.append(f"{name}: the stand-in has no OpenVINO; it runs the CPU provider")
    return notes


def shape_to_string(shape: Sequence[int]) -> str:
    """``ShapeToString`` (backend_common.cc L137-153): ``[-1,299,299,3]``."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def model_dims(shape: Sequence[Any]) -> list[int]:
    """ONNX Runtime's ``NodeArg.shape`` as the backend sees it: a free dimension is -1."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def compare_dims(
    model: str,
    tensor: str,
    model_shape: Sequence[int],
    dims: Sequence[int],
    max_batch_size: int,
    compare_exact: bool,
) -> None:
    """``CompareDimsSupported`` (onnxruntime_utils.cc L484-551), its messages."""
    where = f"model '{model}', tensor '{tensor}'"
    full = list(dims)
    if max_batch_size > 0:
        if not model_shape or model_shape[0] != -1:
            raise ConfigError(
                f"{where}: for the model to support batching the shape should have at least 1 "
                "dimension and the first dimension must be -1; but shape expected by the "
                f"model is {shape_to_string(model_shape)}"
            )
        full = [-1, *dims]
    same = len(model_shape) == len(full) and all(
        m == d for m, d in zip(model_shape, full, strict=True) if compare_exact or m != -1
    )
    if same:
        return
    if max_batch_size > 0:
        specified = (
            f"{len(full)} dimensions (an initial batch dimension because max_batch_size > 0 "
            f"followed by the explicit tensor shape, making complete shape "
            f"{shape_to_string(full)})"
        )
    else:
        specified = f"{len(full)} dimensions (shape {shape_to_string(full)})"
    raise ConfigError(
        f"{where}: the model expects {len(model_shape)} dimensions (shape "
        f"{shape_to_string(model_shape)}) but the model configuration specifies {specified}"
    )


def check_tensors(
    config: Mapping[str, Any],
    kind: str,
    model_tensors: Mapping[str, tuple[str, Sequence[Any]]],
) -> None:
    """``ValidateInputs`` / ``ValidateOutputs`` (L1614-1759, L1761-1883) for config tensors.

    ``model_tensors`` maps each of the model's tensors to (ONNX type, shape). Inputs: the
    counts must match; each config tensor must exist ("unexpected inference input", backend
    ``CheckAllowedModelInput``), with the same type and compatible dims (-1 in the model
    matches anything); outputs must match their dims exactly.
    """
    name = config.get("name", "")
    specs = config.get(kind) or []
    if kind == "input" and len(model_tensors) != len(specs):
        raise ConfigError(
            f"unable to load model '{name}', configuration expects {len(specs)} inputs, "
            f"model provides {len(model_tensors)}"
        )
    for spec in specs:
        tensor = spec["name"]
        if tensor not in model_tensors:
            allowed = ", ".join(sorted(model_tensors))
            raise ConfigError(
                f"unexpected inference {kind} '{tensor}', allowed {kind}s are: {allowed}"
            )
        onnx_type, shape = model_tensors[tensor]
        if ONNX_TYPES.get(spec.get("data_type", "")) != onnx_type:
            provides = _TRITON_TYPES.get(onnx_type, onnx_type)
            raise ConfigError(
                f"unable to load model '{name}', configuration expects datatype "
                f"{spec.get('data_type')} for {kind} '{tensor}', model provides TYPE_{provides}"
            )
        reshape = (spec.get("reshape") or {}).get("shape")
        dims = [int(d) for d in (reshape if reshape is not None else spec.get("dims", []))]
        if shape:
            compare_dims(
                name,
                tensor,
                model_dims(shape),
                dims,
                int(config.get("max_batch_size", 0)),
                compare_exact=kind == "output",
            )


def batch_error(total: int, max_batch_size: int, model: str) -> str | None:
    """The batch-size refusal of ``ProcessRequests`` (L1947-1960), or None.

    A model without batching takes one request per run; a batching one up to
    ``max_batch_size`` images in all.
    """
    if total != 1 and total > max_batch_size:
        return f"batch size {total} for '{model}', max allowed is {max_batch_size}"
    return None


def error_message(error: BaseException) -> str:
    """``RETURN_IF_ORT_ERROR``'s text (onnxruntime_utils.h L60-72): "onnx runtime error N: ...".

    The Python API raises ``[ONNXRuntimeError] : N : NAME : message``; the backend's C API
    call gets the same code and message and sends them to every response of the batch
    with TRITONSERVER_ERROR_INTERNAL (HTTP 500).
    """
    text = str(error)
    match = _ORT_ERROR.match(text)
    if match:
        return f"onnx runtime error {match.group(1)}: {match.group(2)}"
    return f"onnx runtime error 1: {text}"  # ORT_FAIL: an error without ONNX Runtime's code
