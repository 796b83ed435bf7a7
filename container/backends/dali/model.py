"""CPU stand-in for Triton's DALI backend, as a Python-based backend (``backend: "dali"``).

Used only by the native engine (the tritonserver of the ``nvidia-pytriton`` wheel has no
DALI backend). The rule: it does what the real backend (dali_backend r24.09) does, no more
and no less; docs/standins.md lists each imitated behaviour, its source and its test.

- Like the real backend's autoserialization, it loads ``<version>/dali.py``, takes the
  ``@autoserialize`` pipeline and overrides its batch size and thread count
  (``dali_helpers.pipeline_overrides``); the device is the CPU here.
- A batching model (``max_batch_size`` > 0) runs all requests of one execute call as ONE
  pipeline batch inside one try/catch, and an error goes to EVERY request of that batch,
  with the real backend's text and code UNKNOWN (HTTP 400)
  (``ExecuteBatched``, ``src/dali_model_instance.cc`` L90-111).
- A non-batching model runs request by request, each with its own error
  (``ExecuteUnbatched``, L113-134).
- After a failed run the pipeline is rebuilt, as ``DaliExecutor::Run`` resets it
  (``src/dali_executor/dali_executor.cc`` L171-174).

It screens nothing and retries nothing: protections belong in the model repository (the
ensemble's ``guard`` step), where they run on the SageMaker container too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

# The stub loads this file by path: make its sibling helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dali_helpers import (  # noqa: E402
    Samples,
    backend_error_text,
    join_requests,
    load_pipeline_factory,
    pipeline_overrides,
    split_outputs,
    split_rows,
)

PIPELINE_FILE = "dali.py"


class TritonPythonModel:
    """Run a DALI pipeline on CPU over all images of all requests of one execute call."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load ``<version>/dali.py`` and build the CPU pipeline."""
        config = json.loads(args["model_config"])
        self._inputs = [spec["name"] for spec in config["input"]]
        self._outputs = [
            (spec["name"], pb_utils.triton_string_to_numpy(spec["data_type"]))
            for spec in config["output"]
        ]
        self._batching = int(config.get("max_batch_size", 0)) > 0
        self._overrides = pipeline_overrides(config)
        source = Path(args["model_repository"]) / args["model_version"] / PIPELINE_FILE
        self._factory = load_pipeline_factory(source)
        self._pipe = self._build()

    def execute(self, requests: list[Any]) -> list[Any]:
        """One pipeline run for the whole batch; its error fails every request of it."""
        if not self._batching:
            return [self._execute_batch([request])[0] for request in requests]
        return self._execute_batch(requests)

    def finalize(self) -> None:
        """Release the pipeline."""
        self._pipe = None

    def _execute_batch(self, requests: list[Any]) -> list[Any]:
        """Run ``requests`` as one batch: all answered, or all failed with one error."""
        try:
            samples, counts = join_requests([self._samples(r) for r in requests], self._inputs)
            outputs = self._run(samples)
        except Exception as error:  # ErrorHandler: one error for every request of the batch
            self._pipe = self._build()  # DaliExecutor::Run resets the pipeline
            text = backend_error_text(error)
            pb_utils.Logger.log_error(text)
            return [pb_utils.InferenceResponse(error=_unknown(text)) for _ in requests]
        return [self._response(arrays) for arrays in split_outputs(outputs, counts)]

    def _build(self) -> Any:
        """Build the CPU pipeline; synchronous so each run consumes exactly one fed batch."""
        pipe = self._factory(
            **self._overrides,
            device_id=None,
            prefetch_queue_depth=1,
            exec_async=False,
            exec_pipelined=False,
        )
        pipe.build()
        return pipe

    def _samples(self, request: Any) -> Samples:
        """Return the request's images per input as 1-D uint8 arrays."""
        return {
            name: split_rows(
                pb_utils.get_input_tensor_by_name(request, name).as_numpy(), self._batching
            )
            for name in self._inputs
        }

    def _run(self, samples: Samples) -> list[np.ndarray]:
        """Feed one batch to the external sources and run the pipeline once."""
        for name in self._inputs:
            self._pipe.feed_input(name, samples[name])
        results = zip(self._pipe.run(), self._outputs, strict=True)
        return [np.asarray(out.as_array(), dtype=dtype) for out, (_, dtype) in results]

    def _response(self, outputs: list[np.ndarray]) -> Any:
        """Wrap output arrays (batch dimension kept only for batching models)."""
        tensors = [
            pb_utils.Tensor(name, array if self._batching else array[0])
            for (name, _), array in zip(self._outputs, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)


def _unknown(message: str) -> Any:
    """A TritonError with TRITONSERVER_ERROR_UNKNOWN, as ``ErrorHandler`` builds it.

    Triton's HTTP frontend answers UNKNOWN with 400 (server r24.10 ``src/http_server.cc``
    ``HttpCodeFromError`` L98-121); the Python backend takes the code as the second
    argument of ``pb_utils.TritonError`` (python_backend r24.10 README, "Error Handling").
    """
    return pb_utils.TritonError(message, pb_utils.TritonError.UNKNOWN)
