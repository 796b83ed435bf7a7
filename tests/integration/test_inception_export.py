"""The random-weight Keras export as the build leaves it: contract and behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tritonship.repository import inception


def load_graph_def(path: Path) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def test_random_graph_maps_a_batch_to_softmax_rows(built_repository: Path):
    graph_def = load_graph_def(built_repository / "inception_graphdef/1/model.graphdef")
    batch = np.random.default_rng(1).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    out = inception.run_graph(graph_def, batch)
    assert out.shape == (2, 1001)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(out[0], out[1]), "different images must give different rows"


def test_random_graph_has_the_official_tensor_names(built_repository: Path):
    graph_def = load_graph_def(built_repository / "inception_graphdef/1/model.graphdef")
    nodes = {node.name: node for node in graph_def.node}
    placeholder = nodes["input"]
    assert placeholder.op == "Placeholder"
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [-1, 299, 299, 3]
    assert "InceptionV3/Predictions/Softmax" in nodes
    assert not [n for n in graph_def.node if n.op in ("VarHandleOp", "VariableV2")]
