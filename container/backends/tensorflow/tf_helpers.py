"""The TensorFlow stand-in's pure helpers: no ``triton_python_backend_utils``, so tests import them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/assets/test_standins.py). Sources are tensorflow_backend r24.09
unless said otherwise; docs/standins.md lists each imitated behaviour with its test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

#: The parameters that size TensorFlow's thread pools (README "Parameters", L262-264).
INTRA_PARAMETER = "TF_NUM_INTRA_THREADS"
INTER_PARAMETER = "TF_NUM_INTER_THREADS"


class ConfigError(ValueError):
    """A model config the real backend refuses to load."""


def tensor_name(name: str) -> str:
    """Return the graph tensor for a config name (``input`` -> ``input:0``)."""
    return name if ":" in name else f"{name}:0"


def _parameter(config: dict[str, Any], key: str) -> int:
    """An integer model parameter, 0 ("TensorFlow decides") when absent."""
    text = config.get("parameters", {}).get(key, {}).get("string_value")
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(
            f"failed to parse parameter '{key}' of TensorFlow model "
            f"'{config.get('name', '')}': {text!r} is not an integer"
        ) from err


def thread_counts(config: dict[str, Any]) -> tuple[int, int]:
    """``(intra_op, inter_op)`` threads for one instance's session, as the backend sets them.

    The backend reads ``TF_NUM_INTRA_THREADS`` and ``TF_NUM_INTER_THREADS`` (``src/
    tensorflow.cc`` L1086-1109; a negative intra count refuses the model, L1093-1100) and
    passes them unchanged to the session options; 0, the default, lets TensorFlow use one
    thread per core. The real instances live in one process and share TensorFlow's global
    pools unless ``TF_USE_PER_SESSION_THREADS``; the stand-in's instances are separate
    processes, so each gets the configured count (the cores for 0) and the OS shares the
    cores between them as the shared pool would.
    """
    intra, inter = _parameter(config, INTRA_PARAMETER), _parameter(config, INTER_PARAMETER)
    if intra < 0:
        raise ConfigError(
            f"parameter '{INTRA_PARAMETER}' must be non-negative number for TensorFlow model "
            f"'{config.get('name', '')}'"
        )
    cores = os.cpu_count() or 1
    return intra or cores, inter if inter > 0 else cores


def error_message(error: BaseException) -> str:
    """The text the backend sends when the session run fails: TensorFlow's status message.

    ``TRITONTF_ModelRun``'s error carries the TensorFlow status's ``error_message()``;
    ``src/tensorflow.cc`` L2328-2342 sends it with TRITONSERVER_ERROR_INTERNAL (HTTP 500)
    to every response of the batch. ``tf.errors.OpError.message`` is that status message.
    """
    return str(getattr(error, "message", None) or error)


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
