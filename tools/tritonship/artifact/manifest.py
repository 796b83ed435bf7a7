"""The package manifest (``model.manifest.json`` beside ``model.tar.gz``), typed.

``package`` writes it; ``promote`` reads it to plan (the image's backends, the model a
request reaches, its inputs for a smoke test, the archive's digest) and stores it beside
the archive in S3. Its JSON form is unchanged (:mod:`tritonship.records`): keys sorted,
and manifests of older archives load, their missing fields taking what they meant then
(:func:`parse_package_manifest`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tritonship.errors import ChecksumError, TritonshipError
from tritonship.fileio import sha256_file, write_text_atomic
from tritonship.records import Record, key, optional
from tritonship.repository.manifest import Classifier, DaliTarget, Labels, Weights


class PackageError(TritonshipError):
    """The repository cannot be packaged as it is (or an archive no longer matches)."""


@dataclass(frozen=True, kw_only=True)
class ImageChoice(Record):
    """The image the archive targets, why, and the backends it must carry."""

    tag: str
    chosen: str | None = optional()  # absent in manifests older than the choice
    triton_server: str | None = None
    backends_needed: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class InputSpec(Record):
    """One input of the invoked model: name, KServe datatype, shape (-1: free)."""

    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True, kw_only=True)
class Invocation(Record):
    """The model a request reaches, its inputs and its outputs (for a made-up request)."""

    model: str
    inputs: list[InputSpec]
    outputs: list[str]


@dataclass(frozen=True, kw_only=True)
class BuildReference(Record):
    """The build manifest that travels inside the archive, and the toolkit that wrote it."""

    manifest: str
    tritonship: str | None = None


@dataclass(frozen=True, kw_only=True)
class DaliSummary(Record):
    """The DALI the pipeline was built with, its mode and targets."""

    version: str | None = None
    mode: str | None = None
    targets: dict[str, DaliTarget] | None = None


@dataclass(frozen=True, kw_only=True)
class ArchiveRecord(Record):
    """The archive the manifest describes: its name, SHA-256 and size."""

    name: str
    sha256: str
    size: int = key("bytes")


@dataclass(frozen=True, kw_only=True)
class PackageManifest(Record):
    """Everything promote and a reader need to know about one archive's content.

    Without a build manifest (a repository tritonship did not build) ``build``,
    ``weights``, ``classifier``, ``dali``, ``labels`` and ``built_at`` are null, and
    ``provenance`` says so.
    """

    tritonship: str
    image: ImageChoice
    default_model: str | None = None
    target_model: str | None = None
    models: list[str] = field(default_factory=list)
    invocation: Invocation | None = None
    environment: dict[str, str] = field(default_factory=dict)
    environment_origins: dict[str, str] = field(default_factory=dict)
    build: BuildReference | None = None
    provenance: str | None = None
    weights: Weights | None = None
    classifier: Classifier | None = None
    dali: DaliSummary | None = None
    labels: Labels | None = None
    built_at: str | None = None
    directories: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    archive: ArchiveRecord | None = optional()  # set once the archive is written

    @property
    def weights_source(self) -> str | None:
        """``official`` or ``random``; None without a build manifest."""
        return self.weights.source if self.weights else None

    def to_text(self) -> str:
        """The manifest file's text: indented, keys sorted."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


def parse_package_manifest(data: Any) -> PackageManifest:
    """A manifest from its JSON, of this version or an older one.

    Manifests written before ``target_model`` existed hold the whole built repository,
    whose only ensemble is also its default model: that is their target model.
    """
    manifest = PackageManifest.from_json(data)
    if "target_model" not in data:
        manifest = replace(manifest, target_model=manifest.default_model)
    return manifest


def manifest_path_for(archive: Path) -> Path:
    """``dist/model.tar.gz`` -> ``dist/model.manifest.json``."""
    stem = archive.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return archive.with_name(f"{stem}.manifest.json")


def write_package_manifest(archive: Path, manifest: PackageManifest) -> Path:
    """Write the manifest beside ``archive`` atomically; return its path."""
    path = manifest_path_for(archive)
    write_text_atomic(path, manifest.to_text())
    return path


def read_package_manifest(archive: Path) -> PackageManifest:
    """The manifest beside ``archive``, as written (no check of the archive itself)."""
    path = manifest_path_for(archive)
    try:
        return parse_package_manifest(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) else str(err)
        raise PackageError(
            f"cannot read {path.name}: {reason}", hint="package again: tritonship package"
        ) from err


def load_package(archive: Path) -> PackageManifest:
    """The manifest of a packaged archive, after checking the archive still matches it."""
    manifest_path = manifest_path_for(archive)
    if not archive.is_file() or not manifest_path.is_file():
        raise PackageError(
            f"{archive} or its manifest {manifest_path.name} is missing",
            hint="package first: tritonship package",
        )
    manifest = read_package_manifest(archive)
    if manifest.archive is None or sha256_file(archive) != manifest.archive.sha256:
        raise ChecksumError(
            f"{archive} does not match {manifest_path.name}",
            hint="package again: tritonship package",
        )
    return manifest
