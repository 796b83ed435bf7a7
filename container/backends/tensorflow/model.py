"""CPU stand-in for Triton's TensorFlow backend (``platform: "tensorflow_graphdef"``).

Used only by the native engine: the tritonserver of the ``nvidia-pytriton`` wheel has no
TensorFlow backend, and Triton maps that platform to ``<backend-dir>/tensorflow/model.py``.
The rule: it does what the real backend (tensorflow_backend r24.09 ``src/tensorflow.cc``)
does, no more and no less; docs/standins.md lists each imitated behaviour with its test.

- It imports ``<version>/model.graphdef`` (or ``default_model_filename``) into a TF1-style
  graph session; tensor names come from the model config (a node name means ``:0``).
- ``TF_NUM_INTRA_THREADS`` / ``TF_NUM_INTER_THREADS`` size the session's pools
  (``tf_helpers.thread_counts``).
- All requests of one execute call are concatenated into one batch and run once
  (``ProcessRequests``, L1919-2346); a failed run sends TensorFlow's message with code
  INTERNAL (HTTP 500) to every request of the batch (L2328-2342).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402 - after quieting TF's C++ logging

# The stub loads this file by path: make its sibling helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tf_helpers import error_message, load_graph, tensor_name, thread_counts  # noqa: E402

DEFAULT_FILENAME = "model.graphdef"


class TritonPythonModel:
    """Serve a frozen TensorFlow GraphDef with a CPU session."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the graph and open a session with the configured thread pools."""
        config = json.loads(args["model_config"])
        intra, inter = thread_counts(config)
        filename = config.get("default_model_filename") or DEFAULT_FILENAME
        graph = load_graph(Path(args["model_repository"]) / args["model_version"] / filename)
        self._batching = int(config.get("max_batch_size", 0)) > 0
        self._inputs = [self._binding(graph, spec) for spec in config["input"]]
        self._outputs = [self._binding(graph, spec) for spec in config["output"]]
        session_config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter
        )
        self._session = tf.compat.v1.Session(graph=graph, config=session_config)

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run all requests as one batch; a failure fails every request of it."""
        arrays = [
            [self._input(request, name) for name, _, _ in self._inputs] for request in requests
        ]
        try:
            results = self._run([np.concatenate(column) for column in zip(*arrays, strict=True)])
        except Exception as error:  # L2328-2342: one INTERNAL error for the whole batch
            message = error_message(error)
            pb_utils.Logger.log_error(message)
            failure = pb_utils.TritonError(message, pb_utils.TritonError.INTERNAL)
            return [pb_utils.InferenceResponse(error=failure) for _ in requests]
        responses, start = [], 0
        for request_arrays in arrays:
            count = len(request_arrays[0])
            responses.append(self._response([r[start : start + count] for r in results]))
            start += count
        return responses

    def finalize(self) -> None:
        """Close the session."""
        self._session.close()

    @staticmethod
    def _binding(graph: tf.Graph, spec: dict[str, Any]) -> tuple[str, tf.Tensor, np.dtype]:
        """Return ``(config name, graph tensor, numpy dtype)`` for a config input/output."""
        try:
            tensor = graph.get_tensor_by_name(tensor_name(spec["name"]))
        except KeyError as error:
            raise ValueError(
                f"the graph has no tensor {spec['name']!r} named in config.pbtxt"
            ) from error
        return spec["name"], tensor, pb_utils.triton_string_to_numpy(spec["data_type"])

    def _input(self, request: Any, name: str) -> np.ndarray:
        """Return one input of a request, with a batch dimension."""
        array = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
        return array if self._batching else array[np.newaxis]

    def _run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the session on batched inputs, one array per config output."""
        feed = {
            tensor: array.astype(dtype, copy=False)
            for (_, tensor, dtype), array in zip(self._inputs, inputs, strict=True)
        }
        results = self._session.run([tensor for _, tensor, _ in self._outputs], feed_dict=feed)
        return [
            np.asarray(r, dtype=dtype)
            for r, (_, _, dtype) in zip(results, self._outputs, strict=True)
        ]

    def _response(self, results: list[np.ndarray]) -> Any:
        """Wrap output arrays (batch dimension kept only for batching models)."""
        tensors = [
            pb_utils.Tensor(name, result if self._batching else result[0])
            for (name, _, _), result in zip(self._outputs, results, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)
