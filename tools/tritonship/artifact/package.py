"""``tritonship package``: the validated repository as a deterministic ``model.tar.gz``.

SageMaker extracts the archive to ``/opt/ml/model``, so the model folders sit at its root.
The same repository always gives the same bytes: entries sorted, times, owners and modes
fixed, the gzip header without a time or a file name. Dotfiles, caches, editor files and
anything that looks like a secret stay out. A manifest beside the archive
(``model.manifest.json``) records the SHA-256 of every file, the weights' provenance, the
DALI version and the target image; the repository's own ``build-manifest.json`` travels
inside the archive (Triton ignores files at the repository root).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tritonship import __version__
from tritonship.errors import ChecksumError, TritonshipError, UsageError
from tritonship.fileio import atomic_writer, sha256_file, write_text_atomic
from tritonship.paths import DEFAULT_ARCHIVE
from tritonship.repository.build import read_manifest
from tritonship.sagemaker.images import (
    DEFAULT_TAG,
    SERVER_VERSIONS,
    TagChoice,
    newest_tag,
    parse_tag,
)
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR
from tritonship.sagemaker.settings import SageMakerEnv, packaged_env

FILE_MODE, DIR_MODE = 0o644, 0o755
#: gzip's default level: the float weights barely compress, higher levels only cost time.
COMPRESS_LEVEL = 6
#: Names never packaged, wherever they are (besides every dotfile and dot-folder).
EXCLUDED_NAMES = frozenset({"__pycache__", "credentials", "Thumbs.db", "id_rsa", "id_ed25519"})
EXCLUDED_SUFFIXES = (
    ".pyc",
    ".pyo",
    "~",
    ".swp",
    ".swo",
    ".bak",
    ".orig",
    ".tmp",
    ".part",
    ".pem",
    ".key",
    ".p12",
)
#: Text that gives a secret away (AWS key ids, secret-key settings, private keys).
_SECRET = re.compile(
    rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|aws_secret_access_key|"
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
_SCAN_LIMIT = 1 << 20


class PackageError(TritonshipError):
    """The repository cannot be packaged as it is."""


@dataclass(frozen=True)
class Selection:
    """What goes into the archive (relative POSIX paths, sorted) and what was left out."""

    directories: list[str]
    files: list[str]
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PackageResult:
    """A written archive, its digest and size, and the manifest beside it."""

    archive: Path
    sha256: str
    size: int
    manifest_path: Path
    manifest: dict[str, Any]
    skipped: list[str]


def manifest_path_for(archive: Path) -> Path:
    """``dist/model.tar.gz`` -> ``dist/model.manifest.json``."""
    stem = archive.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz")
    return archive.with_name(f"{stem}.manifest.json")


def excluded(name: str) -> bool:
    """Whether a file or folder name never goes into an archive."""
    return (
        name.startswith(".")
        or name in EXCLUDED_NAMES
        or name.endswith(EXCLUDED_SUFFIXES)
        or (name.startswith("#") and name.endswith("#"))
    )


def select(repo: Path) -> Selection:
    """Walk ``repo``: keep folders and regular files, skip excluded names, refuse symlinks."""
    directories, files, skipped = [], [], []
    for top, dirs, names in os.walk(repo):
        for name in sorted([*dirs, *names]):
            path = Path(top) / name
            rel = path.relative_to(repo).as_posix()
            if excluded(name):
                skipped.append(rel)
                if name in dirs:
                    dirs.remove(name)
            elif path.is_symlink():
                raise PackageError(
                    f"{path} is a symbolic link",
                    hint="the archive holds regular files only: copy the target",
                )
            else:
                (directories if path.is_dir() else files).append(rel)
    order = lambda rel: rel.split("/")  # noqa: E731 - parents before their children
    return Selection(sorted(directories, key=order), sorted(files, key=order), sorted(skipped))


def _scan_secrets(repo: Path, files: list[str]) -> None:
    """Refuse small files whose text looks like a credential."""
    for rel in files:
        path = repo / rel
        if path.stat().st_size <= _SCAN_LIMIT and _SECRET.search(path.read_bytes()):
            raise PackageError(
                f"{path} looks like it holds a credential",
                hint="remove the secret from the repository",
            )


def _check_build(
    build: dict[str, Any] | None, digests: dict[str, str], allow_random: bool, repo: Path
) -> dict[str, Any]:
    """The build manifest, when it describes these files and the weights are allowed."""
    if build is None:
        raise PackageError(f"{repo} has no build manifest", hint="build it first: tritonship build")
    stale = [rel for rel, sha in digests.items() if build["files"].get(rel, sha) != sha]
    if stale:
        raise PackageError(
            f"{len(stale)} file(s) changed since the build: {', '.join(stale[:3])}",
            hint="rebuild (tritonship build) so the provenance stays true",
        )
    if build["weights"]["source"] == "random" and not allow_random:
        raise PackageError(
            f"{repo} holds RANDOM Inception weights: its predictions are meaningless",
            hint="rebuild with --weights official, or pass "
            "--allow-random-weights for a test deployment",
        )
    return build


def backends_needed(repo: Path) -> list[str]:
    """The backends the repository's models run on (the image must carry each)."""
    from tritonship.repository.validate import load_repository

    return sorted({m.backend for m in load_repository(repo).models.values() if m.backend})


def choose_tag(repo: Path, image_tag: str | None) -> TagChoice:
    """``image_tag`` as given, else the newest SageMaker tag that can serve ``repo``."""
    if image_tag:
        return TagChoice(parse_tag(image_tag).text, "given with --image-tag")
    try:
        return newest_tag(backends_needed(repo))
    except UsageError:  # no image has them all: validation against the default says which
        return TagChoice(DEFAULT_TAG, "the default (no SageMaker Triton image has every backend)")


def _validate(repo: Path, image_tag: str, env: SageMakerEnv) -> list[str]:
    """Refuse on any validation finding; return the backends the repository needs."""
    from tritonship.repository.validate import format_findings, validate_repository

    findings = validate_repository(repo, image_tag=image_tag, env=env)
    if findings:
        raise PackageError(
            f"{repo} has {len(findings)} problem(s):\n{format_findings(findings)}",
            hint="fix them (tritonship validate) before packaging",
        )
    return backends_needed(repo)


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.digest, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def _tarinfo(rel: str, size: int | None) -> tarfile.TarInfo:
    """A header with fixed time, owners and mode (``size`` None: a directory)."""
    info = tarfile.TarInfo(rel)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if size is None:
        info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
    else:
        info.size, info.mode = size, FILE_MODE
    return info


def write_archive(repo: Path, selection: Selection, dest: Path, progress: bool) -> tuple[str, int]:
    """Write the archive atomically; return its SHA-256 and size."""
    from tqdm import tqdm
    from tqdm.utils import CallbackIOWrapper

    sizes = {rel: (repo / rel).stat().st_size for rel in selection.files}
    entries = sorted([*selection.directories, *selection.files], key=lambda r: r.split("/"))
    with (
        atomic_writer(dest) as raw,
        tqdm(
            total=sum(sizes.values()),
            unit="B",
            unit_scale=True,
            desc=f"packing {dest.name}",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        sink = _HashingWriter(raw)
        with (
            gzip.GzipFile(
                filename="",
                mode="wb",
                fileobj=sink,
                mtime=0,  # type: ignore[arg-type]
                compresslevel=COMPRESS_LEVEL,
            ) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel in entries:
                if rel not in sizes:
                    tar.addfile(_tarinfo(rel, None))
                    continue
                with (repo / rel).open("rb") as handle:
                    tar.addfile(_tarinfo(rel, sizes[rel]), CallbackIOWrapper(bar.update, handle))
    return sink.digest.hexdigest(), sink.size


def _manifest(
    build: dict[str, Any],
    selection: Selection,
    digests: dict[str, str],
    image: TagChoice,
    backends: list[str],
    env: dict[str, str],
) -> dict[str, Any]:
    """Everything promote and a reader need to know about the archive's content."""
    tag = parse_tag(image.tag)
    return {
        "tritonship": __version__,
        "image": {
            "tag": tag.text,
            "chosen": image.reason,
            "triton_server": SERVER_VERSIONS.get(tag.version),
            "backends_needed": backends,
        },
        "default_model": env.get(DEFAULT_MODEL_VAR),
        "environment": env,
        "weights": build["weights"],
        "classifier": build.get("classifier"),
        "dali": {
            "version": build["dali"].get("build_dali_version"),
            "mode": build["dali"].get("mode"),
            "targets": build["dali"].get("targets"),
        },
        "labels": build.get("labels"),
        "built_at": build.get("built_at"),
        "directories": selection.directories,
        "files": digests,
    }


def package_repository(
    repo: Path,
    out: Path = DEFAULT_ARCHIVE,
    image_tag: str | None = None,
    allow_random_weights: bool = False,
    progress: bool = True,
    env: SageMakerEnv | None = None,
) -> PackageResult:
    """Validate ``repo``, then write ``out`` and its manifest; return what was written.

    Without ``image_tag``, the archive targets the newest SageMaker Triton tag that can
    serve the repository (24.09-py3 for TensorFlow, the newest tag for ONNX); the manifest
    says which and why (``image.chosen``).
    """
    if out.resolve().is_relative_to(repo.resolve()):
        raise PackageError(
            f"{out} is inside the repository {repo}",
            hint="write the archive elsewhere, e.g. dist/model.tar.gz",
        )
    env = env or packaged_env(repo)
    image = choose_tag(repo, image_tag)
    backends = _validate(repo, image.tag, env)
    selection = select(repo)
    _scan_secrets(repo, selection.files)
    digests = {rel: sha256_file(repo / rel) for rel in selection.files}
    build = _check_build(read_manifest(repo), digests, allow_random_weights, repo)
    manifest = _manifest(build, selection, digests, image, backends, env.values)
    sha, size = write_archive(repo, selection, out, progress)
    manifest["archive"] = {"name": out.name, "sha256": sha, "bytes": size}
    manifest_path = manifest_path_for(out)
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return PackageResult(out, sha, size, manifest_path, manifest, selection.skipped)


def load_package(archive: Path) -> dict[str, Any]:
    """The manifest of a packaged archive, after checking the archive still matches it."""
    manifest_path = manifest_path_for(archive)
    if not archive.is_file() or not manifest_path.is_file():
        raise PackageError(
            f"{archive} or its manifest {manifest_path.name} is missing",
            hint="package first: tritonship package",
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if sha256_file(archive) != manifest["archive"]["sha256"]:
        raise ChecksumError(
            f"{archive} does not match {manifest_path.name}",
            hint="package again: tritonship package",
        )
    return manifest
