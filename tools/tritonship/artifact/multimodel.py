"""``tritonship package --multi-model``: one archive per target model of a multi-model endpoint.

On a multi-model endpoint every ``*.tar.gz`` under the model's S3 prefix is a target
model, and each is a whole Triton repository: SageMaker unpacks it to
``/opt/ml/models/<hash>/model`` and the container's frontend loads the one ensemble it
finds there with its composing models (server r24.09 ``src/sagemaker_server.cc``,
``SageMakerMMELoadModel``; AWS guide "Custom containers contract for multi-model
endpoints"). So the repository is split by what a request
can reach:

- each top-level ensemble (one no other ensemble uses as a step) gets an archive holding
  it and every model its steps use, transitively;
- each model that no ensemble uses gets an archive of its own (a one-folder repository,
  which the frontend loads as it is), so that every model stays reachable; a repository
  without ensembles thus gives one archive per model folder;
- files at the repository root (``build-manifest.json``: Triton ignores them) go into
  every archive, since they describe the build all of them come from.

A composing model used by several ensembles is copied into each of their archives: AWS's
own multi-model ensemble example says each ensemble must carry its own copy (server
``docker/sagemaker/serve`` turns model namespacing on, so equal names do not clash).
Models that Python code calls by name (BLS) are invisible to the configs: such a model
gets its own archive, not a place in its caller's.

An archive with two ensembles is refused: the frontend would load whichever it read last,
in directory order. The archives are ``<target><suffix>.tar.gz`` in the output folder,
each deterministic, secret-scanned and with its own manifest, as ``package`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tritonship.artifact.manifest import PackageError
from tritonship.artifact.package import (
    PackageResult,
    Selection,
    check_outside,
    content_of,
    prepare,
    write_package,
)
from tritonship.errors import UsageError
from tritonship.paths import DEFAULT_MODEL_DATA_DIR
from tritonship.repository.config import CONFIG_NAME, Repository
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR
from tritonship.sagemaker.settings import (
    MULTI_MODEL_VAR,
    SageMakerEnv,
    packaged_env,
    top_level_ensembles,
)

ARCHIVE_SUFFIX = ".tar.gz"
#: The origin recorded for each archive's default model.
FROM_TARGET = "package --multi-model: the archive's target model"


@dataclass(frozen=True)
class Target:
    """One archive of a multi-model package: the model requests reach, and all it holds."""

    name: str
    models: tuple[str, ...]


def _steps(repository: Repository) -> dict[str, set[str]]:
    """Each ensemble's step models."""
    return {
        name: {step.model_name for step in model.config.ensemble_scheduling.step}
        for name, model in repository.models.items()
        if model.is_ensemble
    }


def _closure(name: str, steps: dict[str, set[str]]) -> tuple[str, ...]:
    """``name`` and every model its steps use, transitively, sorted."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(steps.get(current, ()))
    return tuple(sorted(seen))


def targets(repository: Repository) -> list[Target]:
    """The archives of a multi-model package: top-level ensembles, then unused models."""
    steps = _steps(repository)
    found = [Target(name, _closure(name, steps)) for name in top_level_ensembles(repository.root)]
    covered = {model for target in found for model in target.models}
    found += [Target(name, (name,)) for name in repository.folders if name not in covered]
    for target in found:
        _check_one_ensemble(target, steps)
    return sorted(found, key=lambda target: target.name)


def _check_one_ensemble(target: Target, steps: dict[str, set[str]]) -> None:
    """Refuse an archive with nested ensembles: the frontend's choice would be arbitrary."""
    inner = [model for model in target.models if model in steps and model != target.name]
    if inner:
        raise PackageError(
            f"the archive of {target.name} would hold the ensemble(s) {', '.join(inner)} "
            "too: SageMaker's multi-model frontend loads whichever ensemble it reads last",
            hint=f"move the steps of {inner[0]} into {target.name}, so each archive holds "
            "one ensemble",
        )


def _subset(selection: Selection, models: tuple[str, ...]) -> Selection:
    """The files and folders of ``models``, and the files at the repository root."""
    wanted = set(models)

    def keep(rel: str, root_file: bool) -> bool:
        top, sep, _ = rel.partition("/")
        return top in wanted or (root_file and not sep)

    return Selection(
        [rel for rel in selection.directories if keep(rel, False)],
        [rel for rel in selection.files if keep(rel, True)],
        selection.skipped,
    )


def archive_env(env: SageMakerEnv, target: str) -> SageMakerEnv:
    """The environment recorded for one archive: its target model as the default model.

    Without ``SAGEMAKER_MULTI_MODEL`` (the endpoint's mode, not the archive's), so the
    archive serves as it is on a single-model endpoint too.
    """
    values = {k: v for k, v in env.values.items() if k != MULTI_MODEL_VAR}
    origins = {k: env.origin(k) for k in values}
    values[DEFAULT_MODEL_VAR], origins[DEFAULT_MODEL_VAR] = target, FROM_TARGET
    return SageMakerEnv(values, origins)


def _multi_model(env: SageMakerEnv) -> SageMakerEnv:
    """``env`` with SAGEMAKER_MULTI_MODEL=true, to check the repository with.

    The multi-model container has no single default model: the serve rules about it do not
    apply to the whole repository (each archive's is its target).
    """
    return SageMakerEnv(
        {**env.values, MULTI_MODEL_VAR: "true"},
        {**env.origins, MULTI_MODEL_VAR: "package --multi-model"},
        env.places,
    )


def _check_names(repo: Path, out_dir: Path, suffix: str) -> None:
    """Refuse a suffix no file name can hold, or a config at the repository's root."""
    if "/" in suffix or suffix.strip() != suffix:
        raise UsageError(f"--suffix {suffix!r} is not part of a file name", hint="e.g. _v2")
    if (repo / CONFIG_NAME).exists():
        raise PackageError(
            f"{repo / CONFIG_NAME}: a repository's root holds model folders, not a config",
            hint="move the model into a folder of its own",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is not a folder", hint="--out names a folder here")


def stale_archives(out_dir: Path, written: list[PackageResult]) -> list[Path]:
    """Archives in ``out_dir`` this run did not write (promote --archives would take them)."""
    names = {result.archive.name for result in written}
    return sorted(p for p in out_dir.glob(f"*{ARCHIVE_SUFFIX}") if p.name not in names)


def package_multi_model(
    repo: Path,
    out_dir: Path = DEFAULT_MODEL_DATA_DIR,
    image_tag: str | None = None,
    allow_random_weights: bool = False,
    progress: bool = True,
    env: SageMakerEnv | None = None,
    suffix: str = "",
) -> list[PackageResult]:
    """Validate ``repo`` once, then write one archive per target model into ``out_dir``.

    All archives target the same image (one endpoint runs one image): the newest that
    can serve the whole repository, unless ``image_tag`` names one.
    """
    check_outside(out_dir, repo)
    _check_names(repo, out_dir, suffix)
    env = env or packaged_env(repo)
    ready = prepare(repo, image_tag, _multi_model(env), allow_random_weights)
    results = []
    for target in targets(ready.repository):
        selection = _subset(ready.selection, target.models)
        digests = {rel: ready.digests[rel] for rel in selection.files}
        content = content_of(ready.repository, selection, digests, target.models, target.name)
        out = out_dir / f"{target.name}{suffix}{ARCHIVE_SUFFIX}"
        recorded = archive_env(env, target.name)
        results.append(
            write_package(repo, out, content, ready.image, recorded, ready.build, progress)
        )
    return results
