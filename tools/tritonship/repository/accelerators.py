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
- TensorFlow backend (tensorflow_backend r24.09 ``src/tensorflow.cc`` L790-892): GPU
  ``tensorrt`` (TF-TRT: ``precision_mode`` FP32 or FP16, ``minimum_segment_size``,
  ``max_workspace_size_bytes``, ``max_cached_engines`` parsed as integers, any other
  parameter refused, L812-858), ``gpu_io`` (L866-871) and ``auto_mixed_precision``, never
  with ``tensorrt`` (L888-892); any CPU accelerator is refused (L790-796).
- Every other backend ignores the block.

What ``add_tensorrt`` writes for ONNX Runtime, beyond the precision, and why:

- an explicit shape profile (``trt_profile_min_shapes`` / ``opt`` / ``max``, r24.09
  L632-643) from batch 1 to ``max_batch_size``: without one ONNX Runtime builds the engine
  for the shapes it has seen and builds it again when a larger batch arrives;
- the engine cache (``trt_engine_cache_enable`` / ``trt_engine_cache_path``, L516-527) in
  a folder of the container's own disk: the model folder (``/opt/ml/model`` on SageMaker,
  mounted read-only here too) cannot take it. ONNX Runtime creates the folder with one
  ``create_directory`` call (microsoft/onnxruntime ``tensorrt_execution_provider.cc``,
  "Failed to create directory"), so its parent must exist: ``/tmp`` does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from tritonclient.grpc import model_config_pb2 as mc

from tritonship.errors import UsageError
from tritonship.repository.manifest import Classifier

TENSORRT = "tensorrt"
GPU_IO = "gpu_io"
AUTO_MIXED_PRECISION = "auto_mixed_precision"
PRECISIONS = ("FP32", "FP16", "INT8")
#: What ``--accelerator`` offers: INT8 needs a calibration table, so it is not offered.
OFFERED = {"tensorrt": "FP32", "tensorrt:fp32": "FP32", "tensorrt:fp16": "FP16"}
#: TensorRT's scratch memory: the value of the ONNX Runtime backend README's example (1 GiB).
WORKSPACE_BYTES = 1 << 30
#: Where ONNX Runtime keeps the TensorRT engines it builds: the container's own disk, since
#: the model folder is read-only. One level under /tmp (ONNX Runtime makes one folder only).
ENGINE_CACHE_PATH = "/tmp/tritonship-trt-engines"
#: Where SageMaker (and docker-compose.yml) mounts the model repository, read-only.
MODEL_MOUNT = "/opt/ml/model"
#: The batch size the TensorRT profile is tuned for ("opt"): TensorRT picks its kernels for
#: it and runs every other batch of the profile with them. The classifier's dynamic batcher
#: forms batches of about the number of requests in flight; 16 sits among the concurrencies
#: docs/benchmarking.md measures (1 to 16). Capped at max_batch_size.
OPT_BATCH = 16

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
#: The TensorFlow backend's TF-TRT parameters (r24.09 ``src/tensorflow.cc`` L820-858).
TF_TRT_PARAMETERS: Mapping[str, str] = {
    "precision_mode": "precision",
    "minimum_segment_size": _INT,
    "max_workspace_size_bytes": _INT,
    "max_cached_engines": _INT,
}
#: TF-TRT's precisions (L823-832): no INT8.
TF_PRECISIONS = ("FP32", "FP16")
#: The three sizes of a TensorRT shape profile.
PROFILE = ("min", "opt", "max")
Accelerator: TypeAlias = mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator
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

    With the precision: the workspace, the engine cache and, for a batching model, the
    shape profile of :func:`profile_shapes`. A TensorRT entry already there is replaced;
    the others (e.g. ``cuda``) are kept after it.
    """
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    kept = [mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator()]
    kept[0].name = TENSORRT
    kept[0].parameters["precision_mode"] = precision
    kept[0].parameters["max_workspace_size_bytes"] = str(WORKSPACE_BYTES)
    kept[0].parameters["trt_engine_cache_enable"] = "1"  # as the backend README writes it
    kept[0].parameters["trt_engine_cache_path"] = ENGINE_CACHE_PATH
    kept[0].parameters.update(profile_shapes(config))
    kept += [a for a in accelerators if a.name != TENSORRT]
    del accelerators[:]
    accelerators.extend(kept)


def profile_shapes(config: mc.ModelConfig) -> dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes`` from batch 1 to ``max_batch_size``.

    In the format ONNX Runtime reads (``name:d0xd1x...``, comma-separated per input;
    onnxruntime_backend r24.09 README, "trt_profile_min_shapes"). Empty for a model
    without batching or with a variable-size dimension besides the batch.
    """
    batch = config.max_batch_size
    if batch <= 0 or not config.input or any(d < 0 for i in config.input for d in i.dims):
        return {}
    sizes = {"min": 1, "opt": min(OPT_BATCH, batch), "max": batch}
    return {
        f"trt_profile_{which}_shapes": ",".join(
            f"{tensor.name}:{'x'.join(str(d) for d in (size, *tensor.dims))}"
            for tensor in config.input
        )
        for which, size in sizes.items()
    }


def add_gpu_io(config: mc.ModelConfig) -> None:
    """Ask the TensorFlow backend to take its inputs in GPU memory (``gpu_io``).

    On a GPU instance the backend then creates its input tensors on the instance's GPU
    (tensorflow_backend r24.09 ``src/tensorflow.cc`` L866-871, L2098-2105): the DALI step's
    output, already in GPU memory, is not copied to the host and back. A CPU instance
    ignores the GPU list ("GPU Execution Accelerator will be ignored", L798-803).
    """
    accelerators = config.optimization.execution_accelerators.gpu_execution_accelerator
    if not any(a.name == GPU_IO for a in accelerators):
        accelerators.add(name=GPU_IO)


#: What a TensorRT engine build is known to cost: builds of other models took 35-108 s
#: (microsoft/onnxruntime PR #14767); SageMaker answers an invocation within 60 s.
ENGINE_BUILD_COST = "35-108 s per build for other models (onnxruntime PR #14767)"


def startup_notes(classifier: Classifier | None) -> list[str]:
    """What delays /ping after each start of a packaged repository (for promote's dry run)."""
    accelerator = (classifier.accelerator if classifier else None) or ""
    if classifier is None or TENSORRT not in accelerator:
        return []
    return [
        f"{classifier.model}: each GPU instance builds its TensorRT engine "
        f"({accelerator}) during its warmup, before /ping turns ready, on every new "
        f"endpoint instance: not measured for Inception V3 ({ENGINE_BUILD_COST}); the "
        f"engine cache ({ENGINE_CACHE_PATH}) serves later loads in the same container only"
    ]


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
    if backend == "tensorflow":
        return list(tensorflow_problems(entries))
    found = []
    for kind, accelerator in entries:
        if accelerator.name not in names[kind]:
            found.append(_unknown(accelerator.name, kind, backend, names[kind]))
        elif backend == "onnxruntime" and accelerator.name == TENSORRT:
            found += tensorrt_problems(accelerator.parameters)
            found += engine_cache_problems(accelerator.parameters)
            found += profile_problems(accelerator.parameters, config)
    return found


def _unknown(name: str, kind: str, backend: str, known: frozenset[str]) -> Problem:
    """The backends' "unknown Execution Accelerator" refusal, with what they know."""
    return Problem(
        f"unknown Execution Accelerator {name!r} is requested in {kind}_execution_accelerator "
        f"of a {backend} model (known: {', '.join(sorted(known)) or 'none'})",
        "name",
        name,
    )


def tensorflow_problems(entries: list[tuple[str, Accelerator]]) -> Iterator[Problem]:
    """The TensorFlow backend's refusals (tensorflow_backend r24.09 ``src/tensorflow.cc``)."""
    cpu = [a for kind, a in entries if kind == "cpu"]
    if cpu:  # L790-796: any CPU accelerator, whatever its name
        yield Problem(
            "CPU Execution Accelerator is not supported in TensorFlow backend", "name", cpu[0].name
        )
    gpu = [a for kind, a in entries if kind == "gpu"]
    for accelerator in gpu:
        if accelerator.name not in ACCELERATOR_NAMES["tensorflow"]["gpu"]:  # L874-879
            yield _unknown(
                accelerator.name, "gpu", "tensorflow", ACCELERATOR_NAMES["tensorflow"]["gpu"]
            )
        elif accelerator.name == TENSORRT:  # L812-858
            yield from tensorrt_problems(accelerator.parameters, TF_TRT_PARAMETERS, TF_PRECISIONS)
    used = {a.name for a in gpu}
    if {TENSORRT, AUTO_MIXED_PRECISION} <= used:  # L888-892
        yield Problem(
            "Auto mixed precision can not be set with TFTRT optimization",
            "name",
            AUTO_MIXED_PRECISION,
        )


def tensorrt_problems(
    parameters: Mapping[str, str],
    known: Mapping[str, str] = TENSORRT_PARAMETERS,
    precisions: tuple[str, ...] = PRECISIONS,
) -> Iterator[Problem]:
    """A backend's checks of each TensorRT parameter, in its words (ONNX Runtime's default)."""
    for key, value in parameters.items():
        kind = known.get(key)
        if kind is None:
            yield Problem(
                f"unknown parameter {key!r} is provided for TensorRT Execution Accelerator",
                "key",
                key,
            )
        elif kind == "precision" and value not in precisions:
            yield Problem(
                f"unsupported precision mode {value!r} is requested "
                f"(precision_mode: {', '.join(precisions)})",
                "value",
                value,
            )
        elif not _parses(kind, value):
            yield Problem(
                f"TensorRT parameter {key!r}: {value!r} is not a valid {kind}", "key", key
            )


def engine_cache_problems(parameters: Mapping[str, str]) -> Iterator[Problem]:
    """An engine cache ONNX Runtime could not write: no folder, a relative one, the model's."""
    if parameters.get("trt_engine_cache_enable", "0").lower() not in ("1", "true", "on"):
        return
    path = parameters.get("trt_engine_cache_path", "")
    if not path.startswith("/"):
        yield Problem(
            "trt_engine_cache_enable needs an absolute, writable trt_engine_cache_path "
            f"(got {path!r}: ONNX Runtime would write into the server's working folder), "
            f"e.g. {ENGINE_CACHE_PATH}",
            "key",
            "trt_engine_cache_enable",
        )
    elif path.rstrip("/") == MODEL_MOUNT or path.startswith(MODEL_MOUNT + "/"):
        yield Problem(
            f"trt_engine_cache_path {path!r} is inside {MODEL_MOUNT}, which SageMaker mounts "
            f"read-only: the engines cannot be written there (use e.g. {ENGINE_CACHE_PATH})",
            "value",
            path,
        )


def profile_problems(parameters: Mapping[str, str], config: mc.ModelConfig) -> Iterator[Problem]:
    """A TensorRT shape profile that does not fit the model's inputs and batch size."""
    given = {
        w: parameters[f"trt_profile_{w}_shapes"]
        for w in PROFILE
        if f"trt_profile_{w}_shapes" in parameters
    }
    if not given:
        return
    if len(given) < len(PROFILE):
        missing = ", ".join(f"trt_profile_{w}_shapes" for w in PROFILE if w not in given)
        first = f"trt_profile_{next(iter(given))}_shapes"
        yield Problem(
            f"a TensorRT shape profile needs min, opt and max: {missing} missing", "key", first
        )
        return
    try:
        shapes = {w: _parse_profile(text, config) for w, text in given.items()}
    except ValueError as err:
        yield Problem(f"TensorRT shape profile: {err}", "key", "trt_profile_min_shapes")
        return
    for name, low in shapes["min"].items():
        mid, high = shapes["opt"].get(name), shapes["max"].get(name)
        if (
            mid is None
            or high is None
            or not all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True))
        ):
            yield Problem(
                f"TensorRT shape profile of {name!r}: min <= opt <= max does not hold",
                "key",
                "trt_profile_opt_shapes",
            )


def _parse_profile(text: str, config: mc.ModelConfig) -> dict[str, tuple[int, ...]]:
    """``name:1x299x299x3,...`` -> shapes by input, checked against the config (ValueError)."""
    inputs = {tensor.name: tensor for tensor in config.input}
    shapes = {}
    for part in text.split(","):
        name, _, dims = part.strip().rpartition(":")
        if name not in inputs:
            raise ValueError(f"{name or part!r} is not an input of the model ({', '.join(inputs)})")
        shape = tuple(int(d) for d in dims.split("x") if d.isdigit())
        if len(shape) != len(dims.split("x")):
            raise ValueError(f"{part!r} is not name:d0xd1x... with whole numbers")
        batch, *rest = shape if config.max_batch_size > 0 else (1, *shape)
        declared = list(inputs[name].dims)
        if not 1 <= batch <= max(config.max_batch_size, 1):
            raise ValueError(f"{part!r}: batch {batch} is outside 1..{config.max_batch_size}")
        if len(rest) != len(declared) or any(
            d not in (r, -1) for r, d in zip(rest, declared, strict=True)
        ):
            raise ValueError(f"{part!r} does not match the input's dims {declared}")
        shapes[name] = shape
    return shapes


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
