"""The build manifest (``build-manifest.json``): what ``tritonship build`` made, typed.

``build`` writes it at the repository's root (Triton ignores files there); ``package``
copies its provenance into the package manifest, the next build reuses what it vouches
for, ``validate`` reads a GPU build's memory budget from it. Every record keeps the JSON
form it always had (:mod:`tritonship.records`), so repositories built before this module
existed still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonship.fileio import write_text_atomic
from tritonship.paths import MANIFEST_NAME
from tritonship.records import Record, flattened, key, optional


@dataclass(frozen=True, kw_only=True)
class Host(Record):
    """The machine that built: its Python and architecture."""

    python: str
    machine: str


@dataclass(frozen=True, kw_only=True)
class Weights(Record):
    """Where the classifier's weights come from: ``official`` (a download) or ``random``."""

    source: str
    graph_sha256: str
    url: str | None = optional()  # official: the archive's address and digest
    archive_sha256: str | None = optional()
    seed: int | None = optional()  # random: the seed, and a warning
    note: str | None = optional()
    size: int | None = optional("bytes")  # the frozen graph's size


@dataclass(frozen=True, kw_only=True)
class Parity(Record):
    """The largest difference between ONNX Runtime's and TensorFlow's outputs, on a batch."""

    max_abs_diff: float
    atol: float
    batch: int


@dataclass(frozen=True, kw_only=True)
class TensorNames(Record):
    """An input and an output name."""

    input: str
    output: str


@dataclass(frozen=True, kw_only=True)
class Conversion(Record):
    """How the ONNX model was made: the converter, the model's opsets, the parity check."""

    opset: int | None
    ir_version: int
    opsets: dict[str, int]
    converter: str
    onnx: str
    tensorflow: str
    parity: Parity
    seconds: float


@dataclass(frozen=True, kw_only=True)
class OnnxModel(Record):
    """The ONNX model as installed: its file, tensors, accelerators and ensembles."""

    sha256: str
    size: int = key("bytes")
    tensors: TensorNames
    renamed_from: TensorNames
    accelerator: str | None  # ONNX Runtime's GPU execution accelerators (None: none)
    ensembles: list[str]  # the ensembles rewired to the ONNX classifier
    source: str  # the repository it was built from


@dataclass(frozen=True, kw_only=True)
class Classifier(Record):
    """The classifier the build made: its format, model folder and file.

    An ONNX build adds how it converted the graph and what it installed (their keys sit
    in this record's object, as they always did).
    """

    format: str  # "tf" or "onnx"
    platform: str
    model: str
    file: str
    conversion: Conversion | None = flattened()
    onnx_model: OnnxModel | None = flattened()

    @property
    def accelerator(self) -> str | None:
        """The GPU execution accelerators of an ONNX classifier (None: none, or TensorFlow)."""
        return self.onnx_model.accelerator if self.onnx_model else None


@dataclass(frozen=True, kw_only=True)
class DaliTarget(Record):
    """One device the pipeline was built for, and what was proven on this machine."""

    decoder: str
    verified: bool
    output_shape: list[int] | None = optional()  # it ran: the image it gave
    graph_built: bool | None = optional()  # GPU without a GPU here: the graph only
    operators: list[str] | None = optional()


@dataclass(frozen=True, kw_only=True)
class DaliBuild(Record):
    """The DALI pipeline as installed: the file the server serializes at load time."""

    mode: str
    file: str
    sha256: str
    build_dali_version: str
    autoserialized_bytes: int | None = optional()  # absent in the first builds
    note: str
    targets: dict[str, DaliTarget]


@dataclass(frozen=True, kw_only=True)
class Labels(Record):
    """The labels file beside the classifier's config."""

    file: str
    lines: int
    source: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class GpuBuild(Record):
    """A ``--device gpu`` build: the instance type it was sized for and what changed."""

    instance_type: str
    gpu: str
    gpus: int
    gpu_memory_gib: float
    vcpus: int
    num_threads: int
    dali_memory_budget_bytes: int
    dali_memory_share: float
    configs: dict[str, list[str]]  # model -> what its GPU config changed


@dataclass(frozen=True, kw_only=True)
class BuildManifest(Record):
    """``build-manifest.json``: the build's provenance and the SHA-256 of every file."""

    tritonship: str
    built_at: str
    host: Host | None = None
    device_target: str
    gpu: GpuBuild | None = None  # null unless --device gpu (absent in early builds)
    weights: Weights
    classifier: Classifier | None = None  # absent in builds before the ONNX format
    dali: DaliBuild
    labels: Labels
    files: dict[str, str]
    seconds: float


def manifest_path(repo: Path) -> Path:
    """Where a repository's build manifest is."""
    return repo / MANIFEST_NAME


def read_manifest(repo: Path) -> BuildManifest | None:
    """The repository's build manifest, or None when it was never built (or is unreadable)."""
    try:
        data: Any = json.loads(manifest_path(repo).read_text(encoding="utf-8"))
        return BuildManifest.from_json(data)
    except (OSError, ValueError):  # RecordError is a ValueError
        return None


def write_manifest(repo: Path, manifest: BuildManifest) -> Path:
    """Write ``manifest`` (indented, in field order) atomically; return its path."""
    path = manifest_path(repo)
    write_text_atomic(path, json.dumps(manifest.to_json(), indent=2) + "\n")
    return path
