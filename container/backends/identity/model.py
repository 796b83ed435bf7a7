"""Stand-in for Triton's ``identity`` backend, as a Python-based backend (``backend: "identity"``).

Used by the native engine and the stand-in image: the tritonserver of the ``nvidia-pytriton``
wheel has no identity backend, while NVIDIA's SageMaker GPU images carry it (server r24.09
``build.py``, ``enable_all``) and NVIDIA's own tests use it (``nop_*`` models of
``qa/common/gen_ensemble_model_utils.py``, in ``qa/L0_sagemaker``'s ensemble). The rule: it
does what the real backend (identity_backend r24.09 ``src/identity.cc``) does, no more and no
less; the line numbers below are that file's.

- Loading validates the config as ``ValidateModelConfig`` does (L259-422): as many inputs as
  outputs, named ``INPUT<n>`` / ``OUTPUT<n>``, each OUTPUTn with the data type and shape
  (or reshape) of INPUTn; the real backend's messages (``identity_helpers.check_config``).
  ``creation_delay_sec`` sleeps that long at load (L236-256).
- Each execute call first sleeps ``execute_delay_ms`` (x ``instance_wise_delay_multiplier`` x
  the instance index, at least x1), once for all its requests (L856-866).
- Each request answers only its requested outputs (L1036-1040): OUTPUTn is INPUTn as sent,
  same data type, same shape (L1196-1290). A requested output whose input is absent is zeros
  of the config shape when that input is optional (L1075-1131), else the request alone fails
  with UNSUPPORTED "failed to get input 'INPUTn'" (L1132-1145); the other requests of the
  call are answered.

Not imitated: the response parameters ``param0``..``param3`` the real backend attaches as a
demonstration (L1293-1309; the Python backend of tritonserver 2.51 cannot set response
parameters, and only bool, int and string ones later), the custom trace activities
(L876-944) and the ``input_byte_size_counter`` metric. A config refused at load fails the
load with the same message, through the Python backend's error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

# The stub loads this file by path: make its sibling helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_helpers import (  # noqa: E402
    check_config,
    delay_seconds,
    instance_index,
    missing_input_error,
    stoi,
    zero_shape,
)


class TritonPythonModel:
    """Copy each requested OUTPUTn from INPUTn."""

    def initialize(self, args: dict[str, str]) -> None:
        """Validate the config like the real backend, then wait ``creation_delay_sec``."""
        config = json.loads(args["model_config"])
        self._settings = check_config(config)
        self._batching = int(config.get("max_batch_size", 0)) > 0
        self._instance = instance_index(args.get("model_instance_name", ""))
        if self._settings.creation_delay_sec > 0:
            time.sleep(self._settings.creation_delay_sec)

    def execute(self, requests: list[Any]) -> list[Any]:
        """One delay for the call, then each request on its own."""
        delay = delay_seconds(self._settings, self._instance)
        if delay > 0:
            time.sleep(delay)
        return [self._respond(request) for request in requests]

    def finalize(self) -> None:
        """Nothing to release."""

    def _respond(self, request: Any) -> Any:
        """The requested outputs of one request, or its one error."""
        inputs = {tensor.name(): tensor.as_numpy() for tensor in request.inputs()}
        batch_dim = self._batch_dim(request)
        outputs = []
        for name in request.requested_output_names():
            index = name[len("OUTPUT") :]
            array = inputs.get(f"INPUT{index}")
            if array is None:
                array = self._zeros(stoi(index), batch_dim)
            if array is None:
                error = pb_utils.TritonError(
                    missing_input_error(index), pb_utils.TritonError.UNSUPPORTED
                )
                return pb_utils.InferenceResponse(error=error)
            outputs.append(pb_utils.Tensor(name, array))
        return pb_utils.InferenceResponse(output_tensors=outputs)

    def _batch_dim(self, request: Any) -> int:
        """The first dimension of the request's first input when the model batches (L993-1035)."""
        tensors = request.inputs()
        if not self._batching or not tensors:
            return 0
        shape = tensors[0].as_numpy().shape
        return int(shape[0]) if shape else 0

    def _zeros(self, index: int, batch_dim: int) -> np.ndarray | None:
        """Zeros for an absent optional input, or None when the input is not optional."""
        shape = zero_shape(self._settings, index, batch_dim)
        if shape is None:
            return None
        dtype = pb_utils.triton_string_to_numpy(self._settings.optional[index][0])
        if dtype == np.object_:  # zeroed BYTES elements are empty strings
            return np.full(shape, b"", dtype=np.object_)
        return np.zeros(shape, dtype=dtype)
