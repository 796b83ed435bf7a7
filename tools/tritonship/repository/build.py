"""``tritonship build``: every artifact of the repository, and a manifest of what was built."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from tritonship import __version__
from tritonship.errors import NetworkError, UsageError
from tritonship.fileio import sha256_file, write_text_atomic
from tritonship.paths import (
    DALI_PIPELINE_SOURCE,
    DEFAULT_REPOSITORY,
    MANIFEST_NAME,
    models_cache,
)
from tritonship.reporting import Reporter, quiet
from tritonship.repository import inception, labels
from tritonship.repository.config import CONFIG_NAME
from tritonship.repository.dali import build_dali, resolve_device
from tritonship.repository.gpu import GPU_REPOSITORY, GpuTarget, copy_source
from tritonship.repository.gpu import configure as configure_gpu
from tritonship.repository.manifest import (
    BuildManifest,
    Classifier,
    Host,
    Labels,
    Weights,
    read_manifest,
    write_manifest,
)
from tritonship.sagemaker import settings
from tritonship.sagemaker.instances import DEFAULT_INSTANCE_TYPE
from tritonship.sagemaker.instances import instance_type as lookup_instance

settings.quiet_tensorflow()  # before TensorFlow loads: no cuInit noise on a CPU build

DALI_MODEL = "dali"
INCEPTION_MODEL = "inception_graphdef"
ENSEMBLE_MODEL = "ensemble_dali_inception"
LABELS_FILE = "inception_labels.txt"
GRAPH_FILE = "model.graphdef"
#: Where ``build --format onnx`` writes without ``--repo`` (beside the TensorFlow one).
DEFAULT_ONNX_REPOSITORY = DEFAULT_REPOSITORY.with_name("model_repository_onnx")


def resolve_format(fmt: str, image_tag: str | None = None) -> str:
    """``tf`` or ``onnx``: ``auto`` picks by the image (TensorFlow only up to 25.02)."""
    from tritonship.sagemaker.images import backends_for_tag

    if image_tag is None:
        return "tf" if fmt == "auto" else fmt
    has_tf = "tensorflow" in backends_for_tag(image_tag)
    if fmt == "auto":
        return "tf" if has_tf else "onnx"
    if fmt == "tf" and not has_tf:
        raise UsageError(
            f"image {image_tag} has no TensorFlow backend: it cannot serve --format tf",
            hint="build --format onnx (or auto) for it",
        )
    return fmt


def default_repository(fmt: str, device: str = "auto") -> Path:
    """Where a build of ``fmt`` goes without ``--repo`` (a TensorFlow GPU build: a copy)."""
    if fmt == "onnx":
        return DEFAULT_ONNX_REPOSITORY
    return GPU_REPOSITORY if device == "gpu" else DEFAULT_REPOSITORY


def _reusable_graph(
    repo: Path, weights: str, manifest: BuildManifest | None = None
) -> Weights | None:
    """The previous build's graph record when that graph is intact and of the same weights.

    ``manifest``: the build that made the graph (default: ``repo``'s own; a GPU build's
    copy vouches with its source's).
    """
    built = manifest or read_manifest(repo)
    previous = built.weights if built else None
    graph = repo / INCEPTION_MODEL / "1" / GRAPH_FILE
    if previous is None or previous.source != weights or not graph.exists():
        return None
    return previous if sha256_file(graph) == previous.graph_sha256 else None


def build_graph(
    repo: Path,
    weights: str,
    progress: bool,
    say: Reporter,
    manifest: BuildManifest | None = None,
) -> Weights:
    """Build (or reuse) ``inception_graphdef/1/model.graphdef``.

    ``auto`` means the official graph where the network allows, else random weights.
    ``manifest``: the build that made a graph already there (see :func:`_reusable_graph`).
    """
    if weights == "auto":
        try:
            return build_graph(repo, "official", progress, say, manifest)
        except NetworkError as err:
            say(f"WARNING: {err}")
            say("WARNING: falling back to RANDOM weights: predicted labels will be meaningless")
            return build_graph(repo, "random", progress, say, manifest)
    reused = _reusable_graph(repo, weights, manifest)
    if reused:
        say(f"inception: reusing the {weights}-weight graph already built")
        return reused
    how = "downloading the official" if weights == "official" else "exporting a random-weight"
    say(f"inception: {how} graph")
    dest = repo / INCEPTION_MODEL / "1" / GRAPH_FILE
    return inception.build_graph(dest, weights, models_cache(), progress=progress)


def build_labels(repo: Path, model: str = INCEPTION_MODEL) -> Labels:
    """Write the 1001-line labels file beside the classifier's config."""
    dest = repo / model / LABELS_FILE
    names = labels.inception_labels()
    write_text_atomic(dest, "\n".join(names) + "\n")
    return Labels(
        file=f"{model}/{LABELS_FILE}",
        lines=len(names),
        source=labels.labels_source(),
        sha256=sha256_file(dest),
    )


def repository_files(repo: Path) -> dict[str, str]:
    """SHA-256 of every file except the manifest and Python caches, by relative path."""
    files = sorted(
        p
        for p in repo.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME and "__pycache__" not in p.parts
    )
    return {p.relative_to(repo).as_posix(): sha256_file(p) for p in files}


def tensorflow_classifier(repo: Path) -> Classifier:
    """The manifest's classifier record of a TensorFlow build."""
    if not (repo / INCEPTION_MODEL / CONFIG_NAME).is_file():
        raise UsageError(
            f"{repo} has no {INCEPTION_MODEL}/{CONFIG_NAME} to build the TensorFlow graph for",
            hint="build --format tf in a repository with it (e.g. model_repository)",
        )
    return Classifier(
        format="tf",
        platform="tensorflow_graphdef",
        model=INCEPTION_MODEL,
        file=f"{INCEPTION_MODEL}/1/{GRAPH_FILE}",
    )


def build_onnx(
    repo: Path, source: Path, weights: str, accelerator: str | None, progress: bool, say: Reporter
) -> tuple[Weights, Classifier]:
    """The ONNX classifier built into ``repo`` from ``source``: (weights, classifier) records.

    ``auto`` weights: those of the source's own build (so both formats are the same
    network), else the official graph where the network allows, else random.
    """
    from tritonship.repository import onnx

    source_build = read_manifest(source)
    built = source_build.weights.source if source_build else None
    if weights == "auto" and built in ("official", "random"):
        return build_onnx(repo, source, built, accelerator, progress, say)
    if weights == "auto":
        try:
            return build_onnx(repo, source, "official", accelerator, progress, say)
        except NetworkError as err:
            say(f"WARNING: {err}")
            say("WARNING: falling back to RANDOM weights: predicted labels will be meaningless")
            return build_onnx(repo, source, "random", accelerator, progress, say)
    manifests = (read_manifest(repo), read_manifest(source))
    return onnx.build_classifier(repo, source, weights, accelerator, manifests, progress, say)


def gpu_target(device: str, instance_type: str | None) -> GpuTarget | None:
    """The instance type a ``--device gpu`` build sizes its configs for (None otherwise)."""
    if device != "gpu":
        if instance_type:
            raise UsageError("--instance-type sizes a GPU build's configs", hint="add --device gpu")
        return None
    return GpuTarget(lookup_instance(instance_type or DEFAULT_INSTANCE_TYPE))


def build_tensorflow(
    repo: Path, weights: str, gpu: GpuTarget | None, source: Path, progress: bool, say: Reporter
) -> tuple[Weights, Classifier]:
    """The TensorFlow classifier: in place, or (GPU) into a copy of ``source``."""
    manifest = None
    if gpu is not None:
        say(f"gpu: copying {source} to {repo} for {gpu.instance.name}")
        copy_source(source, repo)
        manifest = read_manifest(source)
    classifier = tensorflow_classifier(repo)
    return build_graph(repo, weights, progress, say, manifest), classifier


def build_repository(
    repo: Path,
    weights: str = "random",
    device: str = "auto",
    progress: bool = True,
    say: Reporter = quiet,
    fmt: str = "tf",
    source: Path | None = None,
    accelerator: str | None = None,
    instance_type: str | None = None,
    cuda_check: bool = True,
) -> BuildManifest:
    """Build the DALI pipeline, the Inception classifier and the labels into ``repo``.

    ``fmt`` ``tf`` builds the frozen graph in place; ``onnx`` makes ``repo`` a copy of
    ``source`` (default: the checkout's repository) with the graph converted to ONNX
    (:mod:`tritonship.repository.onnx`); ``accelerator`` applies to ``onnx`` only.
    ``device`` ``gpu`` also sizes the configs for ``instance_type``
    (:mod:`tritonship.repository.gpu`), in a copy of ``source`` for ``tf``; without a GPU
    here, only with ``cuda_check=False``.
    """
    started = time.monotonic()
    gpu = gpu_target(device, instance_type)
    target = resolve_device(device, cuda_check)
    source = source or DEFAULT_REPOSITORY
    if fmt == "onnx":
        weights_record, classifier = build_onnx(repo, source, weights, accelerator, progress, say)
    elif fmt == "tf":
        if accelerator:
            raise UsageError(
                "--accelerator applies to the ONNX build only", hint="add --format onnx"
            )
        weights_record, classifier = build_tensorflow(repo, weights, gpu, source, progress, say)
    else:
        raise UsageError(f"unknown format {fmt!r}", hint="use tf or onnx")
    say(f"dali: installing dali.py and checking the {target} pipeline")
    dali_record = build_dali(DALI_PIPELINE_SOURCE, repo / DALI_MODEL / "1", target)
    say("labels: writing the 1001-line labels file")
    labels_record = build_labels(repo, classifier.model)
    (repo / ENSEMBLE_MODEL / "1").mkdir(parents=True, exist_ok=True)
    gpu_record = None
    if gpu is not None:
        say(f"gpu: sizing the configs for {gpu.instance.name} ({gpu.instance.gpu})")
        gpu_record = configure_gpu(repo, gpu, source.name)
    manifest = BuildManifest(
        tritonship=__version__,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        host=Host(python=platform.python_version(), machine=platform.machine()),
        device_target=target,
        gpu=gpu_record,
        weights=weights_record,
        classifier=classifier,
        dali=dali_record,
        labels=labels_record,
        files=repository_files(repo),
        seconds=round(time.monotonic() - started, 1),
    )
    write_manifest(repo, manifest)
    return manifest
