"""CPU stand-in for Triton's DALI backend, as a Python-based backend (``backend: "dali"``).

Used only by the native engine (the tritonserver of the ``nvidia-pytriton`` wheel has no
DALI backend). Like the real backend's autoserialization, it loads the model's
``<version>/dali.py``, takes the ``@autoserialize`` pipeline and overrides its batch size
(``max_batch_size``), thread count (parameter ``num_threads``) and device (CPU only here).
Inputs are fed to the external sources named like the config's inputs; outputs are the
pipeline's outputs in the config's order.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

# The stub loads this file by path: make its sibling helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dali_helpers import (  # noqa: E402
    Samples,
    decode_failure,
    load_pipeline_factory,
    screen_request,
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
        self._batch_size = max(1, int(config.get("max_batch_size", 0)))
        threads = config.get("parameters", {}).get("num_threads", {}).get("string_value", "1")
        self._threads = max(1, min(int(threads), os.cpu_count() or 1))
        source = Path(args["model_repository"]) / args["model_version"] / PIPELINE_FILE
        self._factory = load_pipeline_factory(source)
        self._pipe = self._build()

    def execute(self, requests: list[Any]) -> list[Any]:
        """Preprocess every request; a bad image fails only the request that carries it."""
        samples = [self._samples(request) for request in requests]
        refusals = [screen_request(request_samples) for request_samples in samples]
        accepted = [s for s, refusal in zip(samples, refusals, strict=True) if refusal is None]
        try:
            outputs = (
                self._run({name: [s for r in accepted for s in r[name]] for name in self._inputs})
                if accepted
                else []
            )
        except Exception:  # one bad image fails the batch: retry request by request
            self._pipe = self._build()
            return [
                self._respond_alone(s) if refusal is None else _refused(refusal)
                for s, refusal in zip(samples, refusals, strict=True)
            ]
        responses, start = [], 0
        for request_samples, refusal in zip(samples, refusals, strict=True):
            if refusal is not None:
                responses.append(_refused(refusal))
                continue
            count = len(request_samples[self._inputs[0]])
            responses.append(self._response([out[start : start + count] for out in outputs]))
            start += count
        return responses

    def finalize(self) -> None:
        """Release the pipeline."""
        self._pipe = None

    def _build(self) -> Any:
        """Build the CPU pipeline; synchronous so each run consumes exactly one fed batch."""
        pipe = self._factory(
            batch_size=self._batch_size,
            num_threads=self._threads,
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
        """Run the pipeline over ``samples`` in chunks of at most the batch size."""
        total = len(samples[self._inputs[0]])
        chunks: list[list[np.ndarray]] = [[] for _ in self._outputs]
        for start in range(0, total, self._batch_size):
            for name in self._inputs:
                self._pipe.feed_input(name, samples[name][start : start + self._batch_size])
            results = zip(self._pipe.run(), self._outputs, strict=True)
            for chunk, (out, (_, dtype)) in zip(chunks, results, strict=True):
                chunk.append(np.asarray(out.as_array(), dtype=dtype))
        return [np.concatenate(chunk) for chunk in chunks]

    def _respond_alone(self, samples: Samples) -> Any:
        """Run one request on its own; on failure say which image DALI cannot preprocess."""
        try:
            return self._response(self._run(samples))
        except Exception as error:  # reported to the client, not raised
            self._pipe = self._build()
            return _refused(self._culprit(samples) or decode_failure(0, 1, error))

    def _culprit(self, samples: Samples) -> str | None:
        """Try a failed multi-image request image by image; describe the first failure."""
        count = len(samples[self._inputs[0]])
        for index in range(count if count > 1 else 0):
            try:
                self._run({name: values[index : index + 1] for name, values in samples.items()})
            except Exception as error:  # the culprit
                self._pipe = self._build()
                return decode_failure(index, count, error)
        return None

    def _response(self, outputs: list[np.ndarray]) -> Any:
        """Wrap output arrays (batch dimension kept only for batching models)."""
        tensors = [
            pb_utils.Tensor(name, array if self._batching else array[0])
            for (name, _), array in zip(self._outputs, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)


def _refused(message: str) -> Any:
    """An error response for a request refused before decoding."""
    pb_utils.Logger.log_warn(message)
    return pb_utils.InferenceResponse(error=_invalid_argument(message))


def _invalid_argument(message: str) -> Any:
    """Return a TritonError with code INVALID_ARG where the stub supports error codes."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    return (
        pb_utils.TritonError(message, code) if code is not None else pb_utils.TritonError(message)
    )
