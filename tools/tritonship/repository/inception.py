"""Inception V3 as a frozen TensorFlow GraphDef: the official graph or a random-weight export.

The model's own definition (tensor names and shapes, the official archive and its digest,
the random-weight export) is ``models/inception_v3.py``, packaged as
:mod:`tritonship.assets.models.inception_v3`; this module downloads, verifies and installs.
Both paths end in :func:`install_graph`, which checks the tensor contract the repository's
``config.pbtxt`` declares and writes ``model.graphdef`` atomically.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from tritonship.assets.models.inception_v3 import (
    IMAGE_SIZE,
    INPUT_NAME,
    NUM_CLASSES,
    OFFICIAL_MEMBER,
    OFFICIAL_SHA256,
    OFFICIAL_SIZE,
    OFFICIAL_URL,
    OUTPUT_NAME,
    random_graph_bytes,
)
from tritonship.errors import ChecksumError, ContractError, NetworkError, UsageError
from tritonship.fileio import atomic_writer, sha256_file, write_bytes_atomic
from tritonship.repository.manifest import Weights
from tritonship.sagemaker import settings

# Before TensorFlow loads (the build, the bench's ceiling, the tuning study): no cuInit
# noise where no CUDA driver exists.
settings.quiet_tensorflow()


#: What to do without a network, in the CLI's and the Makefile's words.
OFFLINE_HINT = "no network? build offline with --weights random, or make artifacts WEIGHTS=random"


def download_official(cache_dir: Path, progress: bool = True, url: str = OFFICIAL_URL) -> Path:
    """Download the official archive into ``cache_dir`` (verified, atomic, cached)."""
    archive = cache_dir / url.rsplit("/", 1)[-1]
    if archive.exists() and sha256_file(archive) == OFFICIAL_SHA256:
        return archive
    try:
        response = requests.get(url, stream=True, timeout=(10, 60))
        response.raise_for_status()
    except requests.RequestException as err:
        raise NetworkError(
            f"cannot download the official Inception V3 graph: {_reason(err)}",
            hint=OFFLINE_HINT,
        ) from err
    total = int(response.headers.get("Content-Length") or OFFICIAL_SIZE)
    with (
        atomic_writer(archive) as handle,
        tqdm(
            total=total, unit="B", unit_scale=True, desc="inception_v3", disable=not progress
        ) as bar,
    ):
        for chunk in response.iter_content(chunk_size=1 << 20):
            handle.write(chunk)
            bar.update(len(chunk))
    _verify_archive(archive)
    return archive


def _reason(err: requests.RequestException) -> str:
    """A short cause: the HTTP status, or which host could not be reached."""
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code}"
    if isinstance(err, requests.Timeout):
        return "the connection timed out"
    if isinstance(err, requests.ConnectionError):
        url = str(err.request.url) if err.request else ""
        host = requests.utils.urlparse(url).hostname or "the host"
        return f"cannot reach {host} (no network or DNS)"
    return type(err).__name__


def _verify_archive(archive: Path) -> None:
    """Delete ``archive`` and raise unless it has the published SHA-256."""
    digest = sha256_file(archive)
    if digest != OFFICIAL_SHA256:
        archive.unlink(missing_ok=True)
        raise ChecksumError(
            f"{archive.name}: SHA-256 {digest} is not the published {OFFICIAL_SHA256}",
            hint="the download was corrupted or replaced; run the build again",
        )


def official_graph_bytes(archive: Path) -> bytes:
    """Extract the frozen graph from the official archive."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).name == OFFICIAL_MEMBER:
                handle = tar.extractfile(member)
                if handle is not None:
                    return handle.read()
    raise ContractError(f"{archive.name} has no {OFFICIAL_MEMBER}")


def check_contract(graph_bytes: bytes, run: bool = True) -> None:
    """Raise ContractError unless the graph has the declared input and output tensors.

    With ``run``, also feed a [2, 299, 299, 3] batch and check [2, 1001] rows summing to 1.
    """
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(graph_bytes)
    except Exception as err:  # protobuf raises DecodeError, a plain Exception subclass
        raise ContractError(f"not a TensorFlow GraphDef: {err}") from err
    nodes = {node.name: node for node in graph_def.node}
    _check_input_node(nodes.get(INPUT_NAME))
    if OUTPUT_NAME not in nodes:
        raise ContractError(f"the graph has no output node {OUTPUT_NAME!r}")
    if run:
        _check_forward(graph_def)


def _check_input_node(node: Any) -> None:
    """The input must be a float32 placeholder of shape [?, 299, 299, 3]."""
    if node is None or node.op != "Placeholder":
        raise ContractError(f"the graph has no placeholder named {INPUT_NAME!r}")
    dims = [d.size for d in node.attr["shape"].shape.dim]
    if dims and dims[1:] != [IMAGE_SIZE, IMAGE_SIZE, 3]:
        raise ContractError(f"input {INPUT_NAME!r} has shape {dims}, expected [-1, 299, 299, 3]")


def run_graph(graph_def: Any, batch: Any) -> Any:
    """Run a frozen graph on one batch (numpy in, numpy out)."""
    with GraphSession(graph_def) as session:
        return session.run(batch)


class GraphSession:
    """A frozen graph imported once into one TF session, to run many batches."""

    def __init__(self, graph_def: Any, intra_threads: int = 0, inter_threads: int = 0) -> None:
        """Import ``graph_def``; thread counts 0 let TensorFlow choose (all cores)."""
        import tensorflow as tf

        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra_threads, inter_op_parallelism_threads=inter_threads
        )
        self._session = tf.compat.v1.Session(graph=graph, config=config)

    def run(self, batch: Any) -> Any:
        """Softmax rows for a [N, 299, 299, 3] float32 batch."""
        return self._session.run(f"{OUTPUT_NAME}:0", feed_dict={f"{INPUT_NAME}:0": batch})

    def close(self) -> None:
        """Release the session."""
        self._session.close()

    def __enter__(self) -> GraphSession:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the session."""
        self.close()


def _check_forward(graph_def: Any) -> None:
    """Feed a batch of two images and check the softmax rows."""
    import numpy as np

    batch = np.random.default_rng(0).uniform(-1, 1, (2, IMAGE_SIZE, IMAGE_SIZE, 3))
    out = run_graph(graph_def, batch.astype(np.float32))
    if out.shape != (2, NUM_CLASSES) or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        raise ContractError(f"output {OUTPUT_NAME!r} gave shape {out.shape}, not rows of a softmax")


def install_graph(graph_bytes: bytes, dest: Path, weights: Weights) -> Weights:
    """Check the contract, then write ``dest`` atomically; ``weights`` with its digest."""
    check_contract(graph_bytes)
    write_bytes_atomic(dest, graph_bytes)
    return replace(weights, graph_sha256=sha256_file(dest), size=dest.stat().st_size)


def graph_bytes(weights: str, cache_dir: Path, progress: bool = True) -> tuple[bytes, Weights]:
    """The frozen graph of the official or random weights (not yet checked or written).

    The TensorFlow build writes these bytes with :func:`install_graph`; the ONNX build
    checks them with :func:`check_contract` and converts them
    (:mod:`tritonship.repository.onnx`).
    """
    if weights == "official":
        archive = download_official(cache_dir, progress=progress)
        data = official_graph_bytes(archive)
        record = Weights(
            source="official", graph_sha256="", url=OFFICIAL_URL, archive_sha256=OFFICIAL_SHA256
        )
    elif weights == "random":
        data = random_graph_bytes(seed=0)
        note = "random weights: predictions are meaningless"
        record = Weights(source="random", graph_sha256="", seed=0, note=note)
    else:
        raise UsageError(f"unknown weights {weights!r}", hint="use official or random")
    return data, replace(record, graph_sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def build_graph(dest: Path, weights: str, cache_dir: Path, progress: bool = True) -> Weights:
    """Produce ``dest`` from the official graph or a random-weight export."""
    data, record = graph_bytes(weights, cache_dir, progress)
    return install_graph(data, dest, record)
