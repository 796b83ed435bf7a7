"""The in-process ceiling: the best this machine does with the served work and no server.

The repository's own ``dali/1/dali.py`` runs as the native engine's DALI stand-in runs it
(CPU, synchronous, one pipeline built once), then its classifier: ``model.graphdef`` in one
persistent TensorFlow session, or (an ONNX build) ``model.onnx`` in one ONNX Runtime CPU
session. One such pipeline is one worker; the ceiling tries:

- each batch size asked for (1, and the batch the server reached);
- one worker whose classifier has every core, and one worker per core whose classifier has
  one thread each (as a server with one instance per core runs; the workers' stages
  overlap, as the server's do);

and keeps the best throughput, recording which trial won. A ceiling that took one
configuration only was beaten by a server running another (ONNX's two instances against
one thread at batch 1): the served path runs no faster than the best of these, unless the
machine was busier during the ceiling than during the levels (the report says which).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.repository.config import Repository
from tritonship.repository.dali import load_pipeline_module
from tritonship.repository.inception import GraphSession

PIPELINE = "dali/1/dali.py"
GRAPH = "inception_graphdef/1/model.graphdef"
ONNX_MODEL = "inception_onnx/1/model.onnx"
#: At least this many timed runs per worker and trial, whatever the duration.
MIN_RUNS = 3


@dataclass(frozen=True)
class Trial:
    """One configuration: the batch, the parallel workers and each classifier's threads."""

    batch: int
    workers: int = 1
    threads: int = 0  # the classifier's intra-op threads (0: the library's default)


@dataclass
class Ceiling:
    """In-process throughput of one trial (``classifier``: ``tf`` or ``onnx``)."""

    batch: int
    throughput: float
    ms_per_batch: float
    runs: int
    workers: int = 1
    threads: int = 0
    classifier: str = "tf"

    def describe(self) -> str:
        """``batch 4, 2 workers x 1 thread (onnx)``: what this trial ran."""
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return f"batch {self.batch}, {workers} x {threads} ({self.classifier})"


def best(ceilings: list[Ceiling]) -> Ceiling | None:
    """The trial with the highest throughput: the ceiling."""
    return max(ceilings, key=lambda ceiling: ceiling.throughput, default=None)


def trials(batches: list[int], cores: int) -> list[Trial]:
    """Every batch size with one worker on every core, and one single-thread worker per core."""
    shapes = [(1, cores)] + ([(cores, 1)] if cores > 1 else [])
    return [
        Trial(batch, workers, threads)
        for batch in sorted(set(batches))
        for workers, threads in shapes
    ]


def _parameter(repository: Repository, model: str, key: str) -> str:
    """A model's string parameter (empty when the model or the key is absent)."""
    found = repository.models.get(model)
    parameters = found.config.parameters if found is not None else {}
    return parameters[key].string_value.strip() if key in parameters else ""


def dali_threads(repository: Repository, workers: int = 1) -> int:
    """The ``dali`` model's ``num_threads``, capped at the cores each worker has."""
    value = _parameter(repository, "dali", "num_threads")
    configured = int(value) if value.isdigit() else 1
    return max(1, min(configured, (os.cpu_count() or 1) // max(workers, 1)))


def classifier_format(repository: Repository) -> str:
    """``onnx`` when the repository carries the ONNX build's model, else ``tf``."""
    return "onnx" if (repository.root / ONNX_MODEL).is_file() else "tf"


class InProcess:
    """One worker: the DALI pipeline and the classifier of a repository, loaded once."""

    def __init__(self, repository: Repository, max_batch: int, threads: int, workers: int) -> None:
        """Build the CPU pipeline for up to ``max_batch`` images and open the classifier."""
        import tensorflow as tf

        module = load_pipeline_module(repository.root / PIPELINE)
        self._input = module.INPUT_NAME
        self._pipe = module.pipeline(
            batch_size=max_batch,
            num_threads=dali_threads(repository, workers),
            device_id=None,
            prefetch_queue_depth=1,
            exec_async=False,
            exec_pipelined=False,
        )
        self._pipe.build()
        if classifier_format(repository) == "onnx":
            self._graph: Any = OnnxSession(repository.root / ONNX_MODEL, threads)
            return
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString((repository.root / GRAPH).read_bytes())
        self._graph = GraphSession(graph_def, intra_threads=threads, inter_threads=threads)

    def classify(self, images: list[np.ndarray]) -> Any:
        """Preprocess ``images`` (encoded bytes as uint8 arrays) and classify them."""
        self._pipe.feed_input(self._input, images)
        (out,) = self._pipe.run()
        return self._graph.run(np.asarray(out.as_array()))

    def close(self) -> None:
        """Release the session and the pipeline."""
        self._graph.close()
        self._pipe = None


class OnnxSession:
    """The ONNX build's model in one ONNX Runtime CPU session, as the stand-in opens it."""

    def __init__(self, path: Any, threads: int = 0) -> None:
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


def throughput(batch: int, runs: int, seconds: float) -> float:
    """Images per second: ``runs`` batches of ``batch`` images (all workers) in ``seconds``."""
    return batch * runs / seconds if seconds > 0 else 0.0


def measure(
    runners: list[InProcess], image: bytes, trial: Trial, duration: float, fmt: str = "tf"
) -> Ceiling:
    """Every worker classifies ``trial.batch`` copies of ``image`` for ``duration`` s, together.

    Each worker runs once before the clock starts (its first run builds kernels and caches).
    """
    images = [np.frombuffer(image, dtype=np.uint8)] * trial.batch
    for runner in runners:
        runner.classify(images)
    counts = [0] * len(runners)
    start = threading.Barrier(len(runners) + 1)

    def work(index: int) -> None:
        start.wait()
        began = time.perf_counter()
        while counts[index] < MIN_RUNS or time.perf_counter() - began < duration:
            runners[index].classify(images)
            counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runners))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    runs = sum(counts)
    return Ceiling(
        trial.batch,
        throughput(trial.batch, runs, seconds),
        1000.0 * seconds * len(runners) / runs,
        runs,
        trial.workers,
        trial.threads,
        fmt,
    )


def _check_artifacts(repository: Repository) -> None:
    """Refuse a repository without the pipeline or the classifier the ceiling runs."""
    classifier = ONNX_MODEL if classifier_format(repository) == "onnx" else GRAPH
    missing = [p for p in (PIPELINE, classifier) if not (repository.root / p).is_file()]
    if missing:
        raise TritonshipError(
            f"{repository.root} has no {', '.join(missing)} for the in-process ceiling",
            hint="run tritonship build, or bench with --no-ceiling",
        )


def ceilings(
    repository: Repository, image: bytes, batches: list[int], duration: float
) -> list[Ceiling]:
    """Every trial (:func:`trials`), each for ``duration`` s; :func:`best` is the ceiling."""
    _check_artifacts(repository)
    fmt = classifier_format(repository)
    planned = trials(batches, os.cpu_count() or 1)
    largest = max(trial.batch for trial in planned)
    found = []
    for workers, threads in dict.fromkeys((t.workers, t.threads) for t in planned):
        runners = [InProcess(repository, largest, threads, workers) for _ in range(workers)]
        try:
            for trial in (t for t in planned if (t.workers, t.threads) == (workers, threads)):
                found.append(measure(runners, image, trial, duration, fmt))
        finally:
            for runner in runners:
                runner.close()
    return found
