"""``tritonship package``: the validated repository as a deterministic ``model.tar.gz``.

SageMaker extracts the archive to ``/opt/ml/model``, so the model folders sit at its root.
The same repository always gives the same bytes: entries sorted, times, owners and modes
fixed, the gzip header without a time or a file name. Dotfiles, caches, editor files and
anything that looks like a secret stay out. A manifest beside the archive
(``model.manifest.json``) records the SHA-256 of every file, the image tag, the backends,
the default model, the SageMaker environment with where each value came from, and the
provenance: for a repository tritonship built, the weights, the DALI version and the
build; the repository's own ``build-manifest.json`` travels inside the archive (Triton
ignores files at the repository root). Any other repository is packaged too: its manifest
then says that no build manifest was found (``build`` null, ``provenance``) and records
only what the files, configs and environment tell. :mod:`.multimodel` writes one such
archive per target model of a multi-model endpoint.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from tritonclient.grpc import model_config_pb2 as mc

from tritonship import __version__
from tritonship.artifact.manifest import (
    ArchiveRecord,
    BuildReference,
    DaliSummary,
    ImageChoice,
    InputSpec,
    Invocation,
    PackageError,
    PackageManifest,
    write_package_manifest,
)
from tritonship.errors import UsageError
from tritonship.fileio import atomic_writer, sha256_file
from tritonship.paths import DEFAULT_ARCHIVE, MANIFEST_NAME
from tritonship.repository.config import Model, Repository, load_repository
from tritonship.repository.manifest import BuildManifest, read_manifest
from tritonship.sagemaker.images import (
    DEFAULT_TAG,
    SERVER_VERSIONS,
    TagChoice,
    newest_tag,
    parse_tag,
)
from tritonship.sagemaker.serve import default_model_name
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
    manifest: PackageManifest
    skipped: list[str]


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
    directories: list[str] = []
    files: list[str] = []
    skipped: list[str] = []
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
    build: BuildManifest | None, digests: dict[str, str], allow_random: bool, repo: Path
) -> BuildManifest | None:
    """The build manifest, when it describes these files and the weights are allowed.

    A repository tritonship did not build has none: its archive then records the file
    hashes and what can be inferred, and says that no build manifest was found.
    """
    if build is None:
        return None
    stale = [rel for rel, sha in digests.items() if build.files.get(rel, sha) != sha]
    if stale:
        raise PackageError(
            f"{len(stale)} file(s) changed since the build: {', '.join(stale[:3])}",
            hint="rebuild (tritonship build) so the provenance stays true",
        )
    if build.weights.source == "random" and not allow_random:
        raise PackageError(
            f"{repo} holds RANDOM Inception weights: its predictions are meaningless",
            hint="rebuild with --weights official, or pass "
            "--allow-random-weights for a test deployment",
        )
    return build


def backends_needed(repository: Repository) -> list[str]:
    """The backends the repository's models run on (the image must carry each)."""
    return sorted({m.backend for m in repository.models.values() if m.backend})


def choose_tag(repository: Repository, image_tag: str | None) -> TagChoice:
    """``image_tag`` as given, else the newest SageMaker tag that can serve the repository."""
    if image_tag:
        return TagChoice(parse_tag(image_tag).text, "given with --image-tag")
    try:
        return newest_tag(backends_needed(repository))
    except UsageError:  # no image has them all: validation against the default says which
        return TagChoice(DEFAULT_TAG, "the default (no SageMaker Triton image has every backend)")


def _validate(repository: Repository, image_tag: str, env: SageMakerEnv) -> None:
    """Refuse on any validation finding."""
    from tritonship.repository.validate import refuse_findings, validate_repository

    findings = validate_repository(repository, image_tag=image_tag, env=env)
    hint = "fix them (tritonship validate) before packaging"
    refuse_findings(repository, findings, hint, PackageError)


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
                mtime=0,
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


@dataclass(frozen=True)
class Content:
    """What one archive holds and what can be inferred from it.

    ``models``: its top-level model folders; ``default_model``: the model ``/invocations``
    serves (what ``serve`` picks with the archive's environment); ``target_model``: the
    model SageMaker's multi-model frontend loads from it (its only ensemble, else its only
    model folder; None when neither exists, see :func:`frontend_target`);
    ``invocation``: the inputs and outputs of the model a request reaches.
    """

    selection: Selection
    digests: dict[str, str]
    models: tuple[str, ...]
    default_model: str | None
    target_model: str | None
    backends: list[str]
    invocation: Invocation | None


def frontend_target(repository: Repository, models: Iterable[str]) -> str | None:
    """The model SageMaker's multi-model frontend loads from an archive of ``models``.

    It reads every folder's ``config.pbtxt`` and picks one whose platform is "ensemble",
    else the last folder it read (server r24.09 ``src/sagemaker_server.cc``,
    ``SageMakerMMELoadModel``): unambiguous only with exactly one ensemble, or one folder.
    """
    names = sorted(models)
    ensembles = [n for n in names if n in repository.models and repository.models[n].is_ensemble]
    if len(ensembles) == 1:
        return ensembles[0]
    return names[0] if len(names) == 1 and not ensembles else None


def signature(model: Model) -> Invocation:
    """A model's inputs (name, KServe datatype, shape with -1 for free dimensions) and outputs."""
    return Invocation(
        model=model.name,
        inputs=[
            InputSpec(name=t.name, datatype=_datatype(t.data_type), shape=list(model.shape(t)))
            for t in model.config.input
        ],
        outputs=[t.name for t in model.config.output],
    )


def _datatype(data_type: int) -> str:
    """``TYPE_INT32`` -> ``INT32``; Triton's ``TYPE_STRING`` travels as ``BYTES``."""
    name = mc.DataType.Name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def content_of(
    repository: Repository,
    selection: Selection,
    digests: dict[str, str],
    models: Iterable[str],
    default_model: str | None,
) -> Content:
    """The :class:`Content` of an archive holding ``models`` (with ``selection``'s files)."""
    models = tuple(sorted(models))
    target = frontend_target(repository, models)
    invoked = repository.models.get(default_model or target or "")
    return Content(
        selection,
        digests,
        models,
        default_model,
        target,
        sorted({repository.models[m].backend for m in models if m in repository.models} - {""}),
        signature(invoked) if invoked is not None else None,
    )


def _with_provenance(
    manifest: PackageManifest, build: BuildManifest | None, repo: Path
) -> PackageManifest:
    """The provenance fields: from the build manifest, or saying there is none."""
    if build is None:
        return replace(
            manifest,
            provenance=f"no build manifest: {repo.name} has no {MANIFEST_NAME} (not built "
            "by tritonship build); the file hashes and the values inferred from the configs "
            "and the environment are all that is known, the weights' origin is not",
        )
    return replace(
        manifest,
        build=BuildReference(manifest=MANIFEST_NAME, tritonship=build.tritonship),
        provenance=f"{MANIFEST_NAME}, written by tritonship build",
        weights=build.weights,
        classifier=build.classifier,
        dali=DaliSummary(
            version=build.dali.build_dali_version,
            mode=build.dali.mode,
            targets=build.dali.targets,
        ),
        labels=build.labels,
        built_at=build.built_at,
    )


def _manifest(
    build: BuildManifest | None,
    repo: Path,
    content: Content,
    image: TagChoice,
    env: SageMakerEnv,
) -> PackageManifest:
    """Everything promote and a reader need to know about the archive's content."""
    tag = parse_tag(image.tag)
    manifest = PackageManifest(
        tritonship=__version__,
        image=ImageChoice(
            tag=tag.text,
            chosen=image.reason,
            triton_server=SERVER_VERSIONS.get(tag.version),
            backends_needed=content.backends,
        ),
        default_model=content.default_model,
        target_model=content.target_model,
        models=list(content.models),
        invocation=content.invocation,
        environment=env.values,
        environment_origins={key: env.origin(key) for key in env.values},
        directories=content.selection.directories,
        files=content.digests,
    )
    return _with_provenance(manifest, build, repo)


def write_package(
    repo: Path,
    out: Path,
    content: Content,
    image: TagChoice,
    env: SageMakerEnv,
    build: BuildManifest | None,
    progress: bool = True,
) -> PackageResult:
    """Write ``out`` and its manifest beside it; return what was written."""
    manifest = _manifest(build, repo, content, image, env)
    sha, size = write_archive(repo, content.selection, out, progress)
    manifest = replace(manifest, archive=ArchiveRecord(name=out.name, sha256=sha, size=size))
    manifest_path = write_package_manifest(out, manifest)
    return PackageResult(out, sha, size, manifest_path, manifest, content.selection.skipped)


def check_outside(out: Path, repo: Path) -> None:
    """Refuse to write an archive (or a folder of them) inside the repository it packs."""
    if out.resolve().is_relative_to(repo.resolve()):
        raise PackageError(
            f"{out} is inside the repository {repo}",
            hint="write the archive elsewhere, e.g. dist/model.tar.gz",
        )


@dataclass(frozen=True)
class Prepared:
    """A validated repository, ready to pack: its models, files, digests and build manifest."""

    repository: Repository
    image: TagChoice
    selection: Selection
    digests: dict[str, str]
    build: BuildManifest | None


def prepare(
    repo: Path, image_tag: str | None, env: SageMakerEnv, allow_random_weights: bool
) -> Prepared:
    """Validate, select the files, refuse secrets, hash them and check the build manifest.

    The repository is parsed once here; what is packed and recorded comes from that parse.
    """
    repository = load_repository(repo)
    image = choose_tag(repository, image_tag)
    _validate(repository, image.tag, env)
    selection = select(repo)
    _scan_secrets(repo, selection.files)
    digests = {rel: sha256_file(repo / rel) for rel in selection.files}
    build = _check_build(read_manifest(repo), digests, allow_random_weights, repo)
    return Prepared(repository, image, selection, digests, build)


def _default_model(env: SageMakerEnv, repo: Path) -> str | None:
    """The model ``/invocations`` serves: as ``serve`` picks it (validation passed)."""
    if env.multi_model:
        return env.default_model
    return default_model_name(env.values, repo)


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
    says which and why (``image.chosen``). Without a build manifest the archive is still
    written: its manifest says so (``build`` null, ``provenance``).
    """
    check_outside(out, repo)
    env = env or packaged_env(repo)
    ready = prepare(repo, image_tag, env, allow_random_weights)
    models = ready.repository.folders
    content = content_of(
        ready.repository, ready.selection, ready.digests, models, _default_model(env, repo)
    )
    return write_package(repo, out, content, ready.image, env, ready.build, progress)
