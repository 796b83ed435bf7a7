"""The DALI stand-in's pure helpers: no ``triton_python_backend_utils``, so tests import them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/assets/test_standins.py). Every behaviour imitated here names the
real backend's source (dali_backend r24.09); docs/standins.md lists them with their tests.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Per-request samples: one list of 1-D uint8 arrays per config input.
Samples = dict[str, list[np.ndarray]]


def load_pipeline_factory(path: Path) -> Callable[..., Any]:
    """Import ``path`` and return its ``@autoserialize`` pipeline_def (or ``pipeline``)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"DALI pipeline source {path} does not exist (run tritonship build)"
        )
    spec = importlib.util.spec_from_file_location(f"_tritonship_dali_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True  # never write __pycache__ into the model repository
    spec.loader.exec_module(module)
    marked = [f for f in vars(module).values() if getattr(f, "_is_autoserialize", False)]
    if len(marked) == 1:
        return marked[0]
    if callable(getattr(module, "pipeline", None)):
        return module.pipeline
    raise ValueError(f"{path} must define exactly one @autoserialize pipeline_def")


def pipeline_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """What the backend overrides in the serialized pipeline: batch size and threads.

    dali_backend r24.09 ``src/dali_model_instance.h`` L62-65: the batch size is the
    config's ``max_batch_size`` (-1, "keep the pipeline's", when below 1) and the thread
    count is the ``num_threads`` parameter (``src/parameters.h`` L55-57: -1, "keep the
    pipeline's", when absent), both passed to ``daliCreatePipeline``
    (``src/dali_executor/dali_pipeline.h`` L226-229). The device is the instance's GPU
    there; this CPU stand-in always builds a CPU-only pipeline (``device_id=None``).
    """
    overrides: dict[str, Any] = {}
    max_batch_size = int(config.get("max_batch_size", 0))
    if max_batch_size >= 1:
        overrides["batch_size"] = max_batch_size
    threads = config.get("parameters", {}).get("num_threads", {}).get("string_value", "-1")
    if int(threads) > 0:
        overrides["num_threads"] = int(threads)
    return overrides


def backend_error_text(error: BaseException) -> str:
    """The message the real backend sends for an exception raised while running a batch.

    dali_backend r24.09 maps exceptions in ``ErrorHandler`` (``src/dali_model_instance.cc``
    L32-56), all with TRITONSERVER_ERROR_UNKNOWN. A failed pipeline run is caught in
    ``DaliExecutor::Run`` (``src/dali_executor/dali_executor.cc`` L168-175), which resets
    the pipeline and rethrows with ``throw e;`` on a ``std::runtime_error&``: the copy is a
    plain ``std::runtime_error`` whatever was thrown, so ``ErrorHandler`` takes its
    ``std::runtime_error`` branch, "Runtime error: " (L45-47), never "DALI error: "
    (L42-44, a ``DALIException`` that reaches it unsliced). A dali_backend user's log of a
    corrupt JPEG shows that branch (triton-inference-server/dali_backend issue #287:
    ``dali_model_instance.cc:46`` at r23.07,
    the same branch). DALI's Python API raises those errors as ``RuntimeError``; other
    exception types (DALI's ``DaliError`` family, not ``std::runtime_error``) fall to the
    ``std::exception`` branch, "Exception: " (L48-50).
    """
    prefix = "Runtime error: " if isinstance(error, RuntimeError) else "Exception: "
    return f"{prefix}{error}"


def split_rows(array: np.ndarray, batching: bool) -> list[np.ndarray]:
    """Split one request's tensor into per-image byte arrays (padded rows or ragged).

    As the real backend does, every row is one sample, zero padding included
    (``GenerateInputs``, ``src/dali_model_instance.cc`` L234-257).
    """
    if not batching or array.ndim == 1:
        return [np.ascontiguousarray(array.reshape(-1))]
    return [np.ascontiguousarray(row.reshape(-1)) for row in array]


def join_requests(samples: list[Samples], names: list[str]) -> tuple[Samples, list[int]]:
    """All requests' samples as one batch per input, and each request's sample count.

    ``GenerateInputs`` (``src/dali_model_instance.cc`` L204-232) appends every request's
    inputs into one batch and remembers each request's batch size.
    """
    joined = {name: [s for request in samples for s in request[name]] for name in names}
    counts = [len(request[names[0]]) for request in samples]
    return joined, counts


def split_outputs(outputs: list[np.ndarray], counts: list[int]) -> list[list[np.ndarray]]:
    """Cut the batch's outputs back into one slice per request, in request order."""
    slices, start = [], 0
    for count in counts:
        slices.append([out[start : start + count] for out in outputs])
        start += count
    return slices
