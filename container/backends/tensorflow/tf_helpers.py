"""The TensorFlow stand-in's pure helpers: no ``triton_python_backend_utils``, so tests import them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/test_standins.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf


def tensor_name(name: str) -> str:
    """Return the graph tensor for a config name (``input`` -> ``input:0``)."""
    return name if ":" in name else f"{name}:0"


def thread_counts(config: dict[str, Any]) -> tuple[int, int]:
    """Share the machine's cores among the model's instances: ``(intra_op, inter_op)``.

    Each instance gets ``cores // instances`` threads but at least 2 (measured on 2 cores
    with Triton's default 2 CPU instances: 43 ms per image with 2 threads each, 68 ms with
    1, and the same throughput under load), and never more than the cores.
    """
    cores = os.cpu_count() or 1
    groups = config.get("instance_group") or [{}]
    instances = max(1, sum(int(group.get("count", 1)) for group in groups))
    intra = min(cores, max(2, cores // instances))
    return intra, min(2, intra)


def load_graph(path: Path) -> tf.Graph:
    """Import a frozen GraphDef file into a new graph (node names unchanged)."""
    if not path.is_file():
        raise FileNotFoundError(f"TensorFlow graph {path} does not exist (run tritonship build)")
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return graph
