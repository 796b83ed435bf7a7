"""The in-process ceiling: the served ensemble's work with no server in between.

The repository's own ``dali/1/dali.py`` runs as the native engine's DALI stand-in runs it
(CPU, synchronous, the config's ``num_threads`` capped at the core count, one pipeline
built once), then its classifier runs: ``model.graphdef`` in one persistent TensorFlow
session, or (an ONNX build) ``model.onnx`` in one ONNX Runtime CPU session. The two stages
run one after the other, as a single thread of work would; served throughput is reported
as a ratio of this.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.repository.dali import load_pipeline_module
from tritonship.repository.inception import GraphSession

PIPELINE = "dali/1/dali.py"
GRAPH = "inception_graphdef/1/model.graphdef"
ONNX_MODEL = "inception_onnx/1/model.onnx"
#: At least this many timed runs per batch size, whatever the duration.
MIN_RUNS = 3


@dataclass
class Ceiling:
    """In-process throughput at one batch size."""

    batch: int
    throughput: float
    ms_per_batch: float
    runs: int


def dali_threads(repository: Path) -> int:
    """The ``dali`` model's ``num_threads`` capped at the core count (as the stand-in does)."""
    from tritonship.repository.config import load_repository

    model = load_repository(repository).models["dali"]
    value = (
        model.config.parameters["num_threads"].string_value
        if ("num_threads" in model.config.parameters)
        else "1"
    )
    return max(1, min(int(value), os.cpu_count() or 1))


class InProcess:
    """The DALI pipeline and the Inception graph of a repository, loaded once."""

    def __init__(self, repository: Path, max_batch: int) -> None:
        """Build the CPU pipeline for up to ``max_batch`` images and open the session."""
        import tensorflow as tf

        module = load_pipeline_module(repository / PIPELINE)
        self._input = module.INPUT_NAME
        self._pipe = module.pipeline(
            batch_size=max_batch,
            num_threads=dali_threads(repository),
            device_id=None,
            prefetch_queue_depth=1,
            exec_async=False,
            exec_pipelined=False,
        )
        self._pipe.build()
        if (repository / ONNX_MODEL).is_file():
            self._graph: Any = OnnxSession(repository / ONNX_MODEL, onnx_threads(repository))
            return
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString((repository / GRAPH).read_bytes())
        self._graph = GraphSession(graph_def)

    def classify(self, images: list[np.ndarray]) -> Any:
        """Preprocess ``images`` (encoded bytes as uint8 arrays) and classify them."""
        self._pipe.feed_input(self._input, images)
        (out,) = self._pipe.run()
        return self._graph.run(np.asarray(out.as_array()))

    def close(self) -> None:
        """Release the session and the pipeline."""
        self._graph.close()
        self._pipe = None


def onnx_threads(repository: Path) -> int:
    """The ONNX classifier's ``intra_op_thread_count`` (0: ONNX Runtime's default)."""
    from tritonship.repository.config import load_repository

    model = load_repository(repository).models.get("inception_onnx")
    parameter = model.config.parameters.get("intra_op_thread_count") if model else None
    value = parameter.string_value.strip() if parameter is not None else ""
    return int(value) if value.isdigit() else 0


class OnnxSession:
    """The ONNX build's model in one ONNX Runtime CPU session, as the stand-in opens it."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        """Open the session with ``threads`` intra-op threads (0: ONNX Runtime's default)."""
        from tritonship.repository.onnx import ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, session

        self._names = ONNX_INPUT_NAME, ONNX_OUTPUT_NAME
        self._session = session(path, threads)

    def run(self, batch: np.ndarray) -> Any:
        """Softmax rows for a [N, 299, 299, 3] float32 batch."""
        (rows,) = self._session.run([self._names[1]], {self._names[0]: batch})
        return rows

    def close(self) -> None:
        """Release the session."""
        self._session = None


def measure(runner: InProcess, image: bytes, batch: int, duration: float) -> Ceiling:
    """Classify ``batch`` copies of ``image`` repeatedly for ``duration`` s (after one warm-up)."""
    images = [np.frombuffer(image, dtype=np.uint8)] * batch
    runner.classify(images)
    runs, started = 0, time.perf_counter()
    while runs < MIN_RUNS or time.perf_counter() - started < duration:
        runner.classify(images)
        runs += 1
    seconds = time.perf_counter() - started
    return Ceiling(batch, batch * runs / seconds, 1000.0 * seconds / runs, runs)


def ceilings(repository: Path, image: bytes, batches: list[int], duration: float) -> list[Ceiling]:
    """The ceiling at each distinct batch size."""
    sizes = sorted(set(batches))
    classifier = ONNX_MODEL if (repository / ONNX_MODEL).is_file() else GRAPH
    missing = [p for p in (PIPELINE, classifier) if not (repository / p).is_file()]
    if missing:
        raise TritonshipError(
            f"{repository} has no {', '.join(missing)} for the in-process ceiling",
            hint="run tritonship build, or bench with --no-ceiling",
        )
    runner = InProcess(repository, max(sizes))
    try:
        return [measure(runner, image, size, duration) for size in sizes]
    finally:
        runner.close()
