"""CPU stand-in for Triton's ONNX Runtime backend (``platform: "onnxruntime_onnx"``).

Used only by the native engine: the tritonserver of the ``nvidia-pytriton`` wheel has no
ONNX Runtime backend, and Triton maps that platform to the backend ``onnxruntime`` (core
r24.10 ``src/model_config_utils.cc`` L1118-1141), so it picks
``<backend-dir>/onnxruntime/model.py`` when no ``libtriton_onnxruntime.so`` is there.
The rule: it does what the real backend (onnxruntime_backend r24.10 ``src/onnxruntime.cc``)
does, no more and no less; docs/standins.md lists each imitated behaviour with its test.

- One ONNX Runtime session per instance (each Python backend instance is a process), on
  the CPU provider, with the config's session options (``ort_helpers.session_settings``);
  GPU accelerators are ignored on a CPU instance, unknown CPU ones refuse the model.
- Loading checks the config's inputs and outputs against the model's, with the real
  backend's messages (``ort_helpers.check_tensors``).
- All requests of one execute call are concatenated into one batch and run once
  (``ProcessRequests``, L1886-2157); a batch above ``max_batch_size`` or a failed run
  sends one INTERNAL error (HTTP 500) to every request of the batch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

# The stub loads this file by path: make its sibling helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ort_helpers import (  # noqa: E402
    accelerators,
    batch_error,
    check_tensors,
    error_message,
    model_path,
    session_settings,
)


class TritonPythonModel:
    """Serve an ONNX model with an ONNX Runtime CPU session."""

    def initialize(self, args: dict[str, str]) -> None:
        """Open the session with the config's options and check the config against it."""
        config = json.loads(args["model_config"])
        self._name = config.get("name", "")
        self._max_batch = int(config.get("max_batch_size", 0))
        for note in accelerators(config, args.get("model_instance_kind", "CPU")):
            pb_utils.Logger.log_warn(f"onnxruntime stand-in, model '{self._name}': {note}")
        path = model_path(args["model_repository"], args["model_version"], config)
        self._session = ort.InferenceSession(
            str(path), self._options(session_settings(config)), providers=["CPUExecutionProvider"]
        )
        check_tensors(config, "input", _tensors(self._session.get_inputs()))
        check_tensors(config, "output", _tensors(self._session.get_outputs()))
        self._inputs = [
            (spec["name"], pb_utils.triton_string_to_numpy(spec["data_type"]))
            for spec in config["input"]
        ]
        self._outputs = [spec["name"] for spec in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run all requests as one batch; a failure fails every request of it."""
        arrays = [[self._input(request, name) for name, _ in self._inputs] for request in requests]
        sizes = [len(columns[0]) if self._max_batch > 0 else 1 for columns in arrays]
        refused = batch_error(sum(sizes), self._max_batch, self._name)
        if refused:
            return self._fail(requests, refused)
        try:
            feed = {
                name: (np.concatenate(column) if self._max_batch > 0 else column[0]).astype(
                    dtype, copy=False
                )
                for (name, dtype), column in zip(
                    self._inputs, zip(*arrays, strict=True), strict=True
                )
            }
            results = self._session.run(self._outputs, feed)
        except Exception as error:  # RETURN_IF_ORT_ERROR: one INTERNAL error for the batch
            return self._fail(requests, error_message(error))
        responses, start = [], 0
        for size in sizes:
            tensors = [
                pb_utils.Tensor(
                    name, result[start : start + size] if self._max_batch > 0 else result
                )
                for name, result in zip(self._outputs, results, strict=True)
            ]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

    def finalize(self) -> None:
        """Release the session."""
        self._session = None

    @staticmethod
    def _options(settings: dict[str, Any]) -> ort.SessionOptions:
        """ONNX Runtime session options from ``session_settings``."""
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, settings["graph_level"]
        )
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if settings["execution_mode"] == 1
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        if "intra_op_thread_count" in settings:
            options.intra_op_num_threads = settings["intra_op_thread_count"]
        if "inter_op_thread_count" in settings:
            options.inter_op_num_threads = settings["inter_op_thread_count"]
        if "enable_mem_arena" in settings:
            options.enable_cpu_mem_arena = settings["enable_mem_arena"]
        if "enable_mem_pattern" in settings:
            options.enable_mem_pattern = settings["enable_mem_pattern"]
        return options

    def _input(self, request: Any, name: str) -> np.ndarray:
        """One input of a request as an array."""
        return pb_utils.get_input_tensor_by_name(request, name).as_numpy()

    @staticmethod
    def _fail(requests: list[Any], message: str) -> list[Any]:
        """The same INTERNAL error for every request of the batch (HTTP 500)."""
        pb_utils.Logger.log_error(message)
        failure = pb_utils.TritonError(message, pb_utils.TritonError.INTERNAL)
        return [pb_utils.InferenceResponse(error=failure) for _ in requests]


def _tensors(args: list[Any]) -> dict[str, tuple[str, list[Any]]]:
    """``{name: (type, shape)}`` of a session's inputs or outputs."""
    return {arg.name: (arg.type, list(arg.shape)) for arg in args}
