"""The Docker engine: the SageMaker Triton image under Docker Compose, as SageMaker runs it.

``docker-compose.yml`` holds the service (``command: serve``, the repository mounted
read-only at ``/opt/ml/model``, ``container/sagemaker.env``, loopback port, GPU
reservation or the ``cpu`` profile, ``/ping`` healthcheck). This module only picks the
image, logs in to ECR with boto3 when the image is missing, and drives Compose.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tritonship.local.engine import EngineError, ensure_port_free, wait_for_ping
from tritonship.paths import COMPOSE_FILE, DEFAULT_REPOSITORY, SAGEMAKER_ENV_FILE
from tritonship.sagemaker.images import DEFAULT_TAG, REPOSITORY, image_uri
from tritonship.sagemaker.serve import load_env_file, serve_args

PROJECT_NAME = "tritonship"
SERVICES = {"gpu": "triton", "cpu": "triton-cpu"}
CONTAINER_MODEL_DIR = "/opt/ml/model"
DEFAULT_READY_TIMEOUT = 900.0  # a first start may unpack a multi-GB image and load TF


def compose_command() -> list[str]:
    """``docker compose`` (v2 plugin) when available, else ``docker-compose`` (v1)."""
    docker = shutil.which("docker")
    if docker and _succeeds([docker, "compose", "version"]):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise EngineError(
        "neither `docker compose` nor `docker-compose` is installed",
        hint="install Docker with the Compose plugin, or use --engine native",
    )


def _succeeds(command: Sequence[str]) -> bool:
    """Whether a quick command exits 0."""
    try:
        return subprocess.run(command, capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def default_image(region: str | None = None, tag: str = DEFAULT_TAG) -> str:
    """``TRITONSHIP_IMAGE`` if set, else the SageMaker image for the region (us-east-1)."""
    explicit = os.environ.get("TRITONSHIP_IMAGE")
    if explicit:
        return explicit
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return image_uri(region or "us-east-1", tag)


def ecr_registry(image: str) -> tuple[str, str] | None:
    """``(account, region)`` when ``image`` lives in an ECR registry, else None."""
    host = image.split("/", 1)[0]
    parts = host.split(".")
    if len(parts) >= 6 and parts[1:3] == ["dkr", "ecr"]:
        return parts[0], parts[3]
    return None


def ecr_credentials(account: str, region: str, ecr: Any = None) -> tuple[str, str, str]:
    """``(username, password, registry URL)`` for ``docker login`` from ECR's token."""
    import boto3

    client = ecr or boto3.client("ecr", region_name=region)
    data = client.get_authorization_token(registryIds=[account])["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return username, password, data["proxyEndpoint"]


def is_sagemaker_image(image: str) -> bool:
    """Whether ``image`` is one of SageMaker's Triton images (they have ``serve``)."""
    return f"/{REPOSITORY}:" in image


def serve_command(repository: Path, env_file: Path = SAGEMAKER_ENV_FILE) -> list[str]:
    """The tritonserver command ``serve`` would run for ``repository`` at /opt/ml/model."""
    args = serve_args(load_env_file(env_file), repository)
    mounted = [
        f"--model-repository={CONTAINER_MODEL_DIR}" if a.startswith("--model-repository=") else a
        for a in args
    ]
    return ["tritonserver", *mounted]


class DockerEngine:
    """The repository served by the SageMaker Triton image under Docker Compose."""

    def __init__(
        self,
        repository: Path = DEFAULT_REPOSITORY,
        port: int = 8080,
        image: str | None = None,
        profile: str = "gpu",
        compose_file: Path = COMPOSE_FILE,
    ) -> None:
        """Describe the service; nothing runs before :meth:`start`."""
        if profile not in SERVICES:
            raise EngineError(f"unknown profile {profile!r}", hint="use gpu or cpu")
        self.repository = Path(repository).resolve()
        self.port = port
        self.image = image or default_image()
        self.profile = profile
        self.service = SERVICES[profile]
        self.compose_file = Path(compose_file)
        self.url = f"http://127.0.0.1:{port}"

    def compose_env(self) -> dict[str, str]:
        """The variables ``docker-compose.yml`` reads."""
        env = {
            **os.environ,
            "TRITONSHIP_IMAGE": self.image,
            "TRITONSHIP_REPO": str(self.repository),
            "TRITONSHIP_ENV_FILE": str(Path(SAGEMAKER_ENV_FILE).resolve()),
            "TRITONSHIP_PORT": str(self.port),
        }
        if not is_sagemaker_image(self.image):
            env["TRITONSHIP_COMMAND"] = shlex.join(serve_command(self.repository))
        return env

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one Compose command for this project and profile."""
        command = [
            *compose_command(),
            "-p",
            PROJECT_NAME,
            "-f",
            str(self.compose_file),
            "--profile",
            self.profile,
            *args,
        ]
        result = subprocess.run(  # noqa: S603 - fixed program, no shell
            command, env=self.compose_env(), capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise EngineError(
                f"`{' '.join(command[-len(args) :])}` failed: "
                f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}"
            )
        return result

    def docker_client(self) -> Any:
        """A Docker SDK client, or a clear error when no engine answers."""
        import docker

        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as err:
            raise EngineError(
                f"no Docker engine answers: {err}",
                hint="start Docker, or serve without it: --engine native",
            ) from err
        return client

    def ensure_image(self, client: Any = None, ecr: Any = None) -> bool:
        """Pull the image if it is missing (logging in to ECR first). True if pulled."""
        import docker

        client = client or self.docker_client()
        try:
            client.images.get(self.image)
            return False
        except docker.errors.ImageNotFound:
            pass
        registry = ecr_registry(self.image)
        if registry:
            username, password, url = ecr_credentials(*registry, ecr=ecr)
            client.login(username=username, password=password, registry=url)
        repository, _, tag = self.image.rpartition(":")
        client.images.pull(repository, tag=tag)
        return True

    def start(self) -> None:
        """Pull the image when missing, then ``compose up -d`` the service."""
        ensure_port_free(self.port)
        self.ensure_image()
        self.compose("up", "-d", self.service)

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Wait for ``GET /ping`` == 200; fail fast if the container exits."""
        return wait_for_ping(self.url, timeout, self.is_alive, lambda: self.logs(40))

    def is_alive(self) -> bool:
        """Whether the service's container is running."""
        result = self.compose("ps", "--services", "--filter", "status=running", check=False)
        return self.service in result.stdout.split()

    def health_problem(self) -> str | None:
        """None while the container runs, else "the container exited" (one ``compose ps``)."""
        return None if self.is_alive() else "the container exited"

    @property
    def log_location(self) -> str:
        """The command that shows the container's whole log."""
        return f"docker compose -p {PROJECT_NAME} logs {self.service}"

    def logs(self, n: int = 50) -> str:
        """The container's last ``n`` log lines."""
        result = self.compose("logs", "--no-color", "--tail", str(n), self.service, check=False)
        return result.stdout.strip()

    def stop(self) -> None:
        """``compose down``: stop and remove this project's containers."""
        self.compose("down", "--remove-orphans", check=False)


def rendered_environment(config: Mapping[str, Any], service: str) -> dict[str, str]:
    """A service's environment from ``compose config`` output (list or mapping form)."""
    env = config["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}
