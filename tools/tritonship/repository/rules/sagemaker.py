"""Rules under which SageMaker's ``serve`` script refuses to start the server."""

from __future__ import annotations

from pathlib import Path

from tritonship.repository.config import CONFIG_NAME, Finding, Repository
from tritonship.sagemaker.serve import DEFAULT_MODEL_VAR, model_dirs
from tritonship.sagemaker.settings import SageMakerEnv


def _env_finding(repository: Repository, env: SageMakerEnv, key: str, message: str) -> Finding:
    """A finding about ``key``, located where it was set (``file:line``), else at the repo."""
    place = env.places.get(key)
    if place is not None and place.line:
        return Finding(Path(place.path), place.line, message)
    return Finding(repository.root, None, f"{message} (set: {env.origin(key)})")


def check_sagemaker(repository: Repository, env: SageMakerEnv) -> list[Finding]:
    """Rules under which SageMaker's ``serve`` script refuses to start.

    Server r24.09 ``docker/sagemaker/serve``: a config at the repository root, or several
    model folders and no default model.
    """
    findings = []
    root_config = repository.root / CONFIG_NAME
    if root_config.exists() and not env.multi_model:
        findings.append(
            Finding(
                root_config,
                None,
                f"{CONFIG_NAME} at the repository root: serve refuses it (model folders "
                "must be at the top level of the archive)",
            )
        )
    if not env.multi_model:
        findings += _check_default_model(repository, env)
    return findings


def _check_default_model(repository: Repository, env: SageMakerEnv) -> list[Finding]:
    name = env.default_model
    folders = model_dirs(repository.root)  # counted exactly as serve counts them
    if name and name not in folders:
        message = f"{DEFAULT_MODEL_VAR}={name}: no model folder {name!r} in {repository.root}"
        return [_env_finding(repository, env, DEFAULT_MODEL_VAR, message)]
    if not name and len(folders) != 1:
        ensembles = [m.name for m in repository.models.values() if m.is_ensemble]
        hint = f" (e.g. --env {DEFAULT_MODEL_VAR}={ensembles[0]})" if ensembles else ""
        message = (
            f"{DEFAULT_MODEL_VAR} is not set and the repository has "
            f"{len(folders)} model folders: serve needs it{hint}"
        )
        return [Finding(repository.root, None, message)]
    return []
