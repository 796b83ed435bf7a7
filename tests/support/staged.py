"""A repository shaped like a build's output, made in milliseconds: real configs, fake weights.

The unit tests of the validator, the packager and promote need the files a build leaves
(``model.graphdef``, ``dali.py``, the labels, ``build-manifest.json``), not a working
graph. Exporting random Keras weights takes ten seconds or more; the integration tests do
that once per session (``built_repository``). Here the graph is a placeholder, the labels
and the file digests come from the library's own build helpers, and the manifest records
random weights, as a random-weight build does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tritonship.fileio import sha256_file
from tritonship.paths import DALI_PIPELINE_SOURCE, DEFAULT_REPOSITORY, MANIFEST_NAME
from tritonship.repository.build import (
    DALI_MODEL,
    ENSEMBLE_MODEL,
    GRAPH_FILE,
    INCEPTION_MODEL,
    build_labels,
    repository_files,
)
from tritonship.repository.manifest import (
    BuildManifest,
    DaliBuild,
    DaliTarget,
    Host,
    Weights,
    write_manifest,
)

#: Stands in for the frozen graph: only its presence and digest matter to these tests.
PLACEHOLDER_GRAPH = b"placeholder for model.graphdef: not a GraphDef\n" * 64


def stage_repository(dest: Path, source: Path = DEFAULT_REPOSITORY) -> Path:
    """Copy the checkout's configs to ``dest`` and add placeholder artifacts and a manifest."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(MANIFEST_NAME, GRAPH_FILE))
    graph = dest / INCEPTION_MODEL / "1" / GRAPH_FILE
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_bytes(PLACEHOLDER_GRAPH)
    dali = dest / DALI_MODEL / "1" / "dali.py"
    dali.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DALI_PIPELINE_SOURCE, dali)
    (dali.parent / "model.dali").unlink(missing_ok=True)
    labels = build_labels(dest)
    (dest / ENSEMBLE_MODEL / "1").mkdir(parents=True, exist_ok=True)
    manifest = BuildManifest(
        tritonship="test",
        built_at="2000-01-01T00:00:00Z",
        host=Host(python="3", machine="test"),
        device_target="cpu",
        # "staged" (kept as an extra key) tells a reused graph record from a rebuilt one.
        weights=Weights(source="random", graph_sha256=sha256_file(graph), extra={"staged": True}),
        dali=DaliBuild(
            mode="autoserialize",
            file=f"{DALI_MODEL}/1/dali.py",
            sha256=sha256_file(dali),
            build_dali_version="staged",
            autoserialized_bytes=0,
            note="staged: not serialized",
            targets={"cpu": DaliTarget(decoder="cpu", verified=False)},
        ),
        labels=labels,
        files=repository_files(dest),
        seconds=0.0,
    )
    write_manifest(dest, manifest)
    return dest
