"""The Docker engine in tests: is one usable here, the stand-in image, what a project leaves.

Docker-engine tests need an engine that answers, Compose (v1 or v2) and the stand-in image
(``make sim-image``). Where any is missing they are skipped with the reason, except in CI
(``CI=true``), where ``.ci/run`` has set all three up: there a missing piece is a failure.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import uuid
from pathlib import Path
from typing import Any

import pytest

from tritonship.local.docker import SIM_IMAGE, DockerEngine, compose_command
from tritonship.local.engine import EngineError
from tritonship.paths import COMPOSE_FILE

#: The overrides the stand-in image needs on this kind of machine (see docs/serving.md).
LOCAL_OVERRIDE = COMPOSE_FILE.parent / "compose.local.yml"
SIM_OVERRIDE = COMPOSE_FILE.parent / "compose.sim.yml"
SIM_COMPOSE_FILES = (LOCAL_OVERRIDE, SIM_OVERRIDE)
LABEL = "io.tritonship.project"


def rendered_environment(config: dict[str, Any], service: str) -> dict[str, str]:
    """A service's environment from ``compose config`` output (list or mapping form)."""
    env = config["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def in_ci() -> bool:
    """Whether this run is CI's, where the Docker-engine tests must run."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.cache
def unavailable_reason() -> str | None:
    """Why the Docker-engine tests cannot run here, or None when they can."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as err:  # noqa: BLE001 - any failure means no usable engine
        return f"no Docker engine answers ({err.__class__.__name__}: {err})"
    try:
        compose_command()
    except EngineError as err:
        return str(err)
    try:
        client.images.get(SIM_IMAGE)
    except docker.errors.ImageNotFound:
        return f"the stand-in image {SIM_IMAGE} is missing: run make sim-image"
    return None


def require_docker() -> None:
    """Skip with the reason when Docker cannot run here; in CI fail instead."""
    reason = unavailable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true, so the Docker-engine tests must run, but {reason}")
    pytest.skip(f"Docker-engine tests skipped: {reason}")


def client() -> Any:
    """A Docker SDK client (only after :func:`require_docker`)."""
    import docker

    return docker.from_env()


def project_name(prefix: str = "tritonship-test") -> str:
    """A Compose project name of its own, so tests never touch each other's containers."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sim_engine(repository: Path, port: int, **kwargs: Any) -> DockerEngine:
    """The Docker engine on the stand-in image, with the overrides this machine needs."""
    options: dict[str, Any] = {
        "image": SIM_IMAGE,
        "profile": "cpu",
        "compose_files": list(SIM_COMPOSE_FILES),
        "project": project_name(),
        **kwargs,
    }
    return DockerEngine(repository, port=port, **options)


def leftovers(project: str | None = None) -> dict[str, list[str]]:
    """Containers (running or not) and networks a tritonship project left behind."""
    filters = [f"{LABEL}=tritonship"]
    if project:
        filters.append(f"com.docker.compose.project={project}")
    docker = client()
    containers = docker.containers.list(all=True, filters={"label": filters})
    networks = docker.networks.list(filters={"label": [LABEL]})
    if project:
        networks = [n for n in networks if n.name.startswith(f"{project}_")]
    return {"containers": [c.name for c in containers], "networks": [n.name for n in networks]}


#: Compose projects that live for the whole session (the ``endpoint`` fixture's): no leak.
SESSION_PROJECTS: set[str] = set()


def tritonship_containers() -> dict[str, str]:
    """Every tritonship container on the engine, running or not: id -> what it is."""
    found = client().containers.list(all=True, filters={"label": f"{LABEL}=tritonship"})
    return {
        c.id: f"{c.name} (project {c.labels.get('com.docker.compose.project')}, {c.status})"
        for c in found
        if c.labels.get("com.docker.compose.project") not in SESSION_PROJECTS
    }


def remove_containers(ids: list[str]) -> None:
    """Force-remove containers a test left, so the next test starts clean."""
    import docker

    for cid in ids:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client().containers.get(cid).remove(force=True)


def memlock_is_capped() -> bool:
    """Whether the locked-memory limit has a hard cap here (Docker cannot grant -1 then)."""
    return resource.getrlimit(resource.RLIMIT_MEMLOCK)[1] != resource.RLIM_INFINITY
