"""The Docker engine: the SageMaker Triton image under Docker Compose, as SageMaker runs it.

``docker-compose.yml`` holds the service (``command: serve``, the repository mounted
read-only at ``/opt/ml/model``, ``container/sagemaker.env``, loopback port, GPU
reservation or the ``cpu`` profile, ``/ping`` healthcheck). This module only picks the
image, logs in to ECR with boto3 when the image is missing, and drives Compose with the
options that Compose v1 (``docker-compose``) and v2 (``docker compose``) both accept.

Whatever a machine or an image needs beyond that file comes through Compose's own
mechanism, extra ``-f`` files named in ``TRITONSHIP_COMPOSE_FILES`` (``:``-separated; a
bare name is one of the packaged files beside ``docker-compose.yml``):

- ``compose.local.yml``: ``memlock`` at 8 MiB, for engines that cannot raise the
  locked-memory limit to the ``-1`` NVIDIA advises;
- ``compose.sim.yml``: the stand-in image (``make sim-image``) with this Python
  environment mounted read-only; it reads the ``TRITONSHIP_PYTHON*`` variables that
  :meth:`DockerEngine.compose_env` always sets.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tritonship import paths
from tritonship.fileio import write_text_atomic
from tritonship.local.engine import EngineError, PortInUseError, ensure_port_free, wait_for_ping
from tritonship.paths import COMPOSE_FILE, DEFAULT_REPOSITORY
from tritonship.sagemaker import settings
from tritonship.sagemaker.images import DEFAULT_TAG
from tritonship.sagemaker.settings import SageMakerEnv, packaged_env

PROJECT_NAME = "tritonship"
SERVICES = {"gpu": "triton", "cpu": "triton-cpu"}
CONTAINER_MODEL_DIR = "/opt/ml/model"
#: Where compose.mme.yml mounts ``models_dir``: the server sees target models there.
CONTAINER_MODELS_DIR = "/opt/ml/models"
DEFAULT_READY_TIMEOUT = 900.0  # a first start may unpack a multi-GB image and load TF
#: Extra Compose files, ``os.pathsep``-separated: paths, or names of packaged files.
COMPOSE_FILES_VARIABLE = settings.COMPOSE_FILES_VARIABLE
#: The tag ``make sim-image`` builds (container/sim/): NOT NVIDIA's image.
SIM_IMAGE = "tritonship/sagemaker-tritonserver-sim:24.09-py3"
#: The extra Compose file of multi-model mode: the models folder at /opt/ml/models.
MME_OVERRIDE = "compose.mme.yml"
COMPOSE_TIMEOUT_SECONDS = 600.0
#: Compose's own limit on one call to the daemon (COMPOSE_HTTP_TIMEOUT) unless set.
COMPOSE_HTTP_TIMEOUT_SECONDS = 300.0


@functools.cache
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


def compose_args(
    files: Sequence[Path],
    profiles: Sequence[str],
    args: Sequence[str],
    project: str = PROJECT_NAME,
) -> list[str]:
    """Compose's arguments after the program, in the form v1 and v2 both accept.

    Global options (``-p``, one ``-f`` per file, one ``--profile`` per profile: v1 has had
    ``--profile`` since 1.28) come before the command.
    """
    options = ["-p", project]
    for file in files:
        options += ["-f", str(file)]
    for profile in profiles:
        options += ["--profile", profile]
    return [*options, *args]


def extra_compose_files(value: str | None = None) -> list[Path]:
    """The files ``TRITONSHIP_COMPOSE_FILES`` names (or ``value``), each checked to exist."""
    return [_compose_file(name) for name in settings.compose_file_names(value)]


def _compose_file(name: str) -> Path:
    """A Compose file by path, else by the name of a packaged file beside docker-compose.yml."""
    path = Path(name.strip()).expanduser()
    if path.is_file():
        return path.resolve()
    if len(path.parts) == 1:
        packaged = paths.asset("container", path.name)
        if packaged.is_file():
            return paths.asset_path("container", path.name)
    raise EngineError(
        f"{COMPOSE_FILES_VARIABLE} names {name!r}, which is neither a file nor a packaged "
        "Compose file",
        hint="give a path, or compose.local.yml / compose.sim.yml",
    )


def python_environment() -> dict[str, str]:
    """Where this Python environment lives, for ``compose.sim.yml``'s read-only mounts.

    ``TRITONSHIP_PYTHON`` (the interpreter), ``_PYTHON_PREFIX`` (the virtual environment),
    ``_PYTHON_BASE`` (the interpreter it was made from; only its standard library when that
    is the system's ``/usr``, which the image has itself, or the environment itself: one
    mount per path) and ``TRITONSHIP_SOURCE`` (the checkout of an editable install, else
    the installed package).
    """
    base = sys.base_prefix
    if Path(base).resolve() in (Path("/usr"), Path(sys.prefix).resolve()):
        base = sysconfig.get_paths()["stdlib"]
    root = paths.checkout_root()
    source = root if root else Path(paths.__file__).resolve().parent
    return {
        "TRITONSHIP_PYTHON": sys.executable,
        "TRITONSHIP_PYTHON_PREFIX": sys.prefix,
        "TRITONSHIP_PYTHON_BASE": base,
        "TRITONSHIP_SOURCE": str(source),
    }


def default_image(region: str | None = None, tag: str = DEFAULT_TAG) -> str:
    """``TRITONSHIP_IMAGE`` if set, else the SageMaker image for the region (us-east-1)."""
    return settings.image(None, tag, region)


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


# --- Compose's error output: keep the lines that say why ----------------------------------

#: Progress lines (v1: "Creating x ... error"; v2: " Container x  Starting") and the
#: summary "Encountered errors while bringing up the project." say nothing about the cause.
_NOISE = re.compile(
    r"^\W*(Creating|Starting|Stopping|Removing|Recreating|Pulling|Network|Container|Volume)\b"
    r"|^Encountered errors while bringing up the project"
)
#: Prefixes in front of the daemon's message: v1 "ERROR: for <name>  ", v2 "Error response
#: from daemon: ".
_PREFIX = re.compile(r"^(ERROR: for \S+\s+|ERROR: |Error response from daemon: |Error: )")
#: Causes a user can fix, and how.
_HINTS = (
    (
        "rlimit type 8",
        "this Docker engine cannot raise the locked-memory limit (RLIMIT_MEMLOCK) to the "
        "compose file's memlock: -1; add the override: "
        f"{COMPOSE_FILES_VARIABLE}=compose.local.yml (memlock 8 MiB)",
    ),
    ("port is already allocated", "another process uses that port: choose another --port"),
    ("address already in use", "another process uses that port: choose another --port"),
    ("device driver", "no NVIDIA container runtime here: use --profile cpu"),
)


def compose_causes(output: str) -> list[str]:
    """The lines of Compose's output that carry the cause, prefixes removed, each once."""
    causes: list[str] = []
    for line in output.splitlines():
        text = line.strip()
        if not text or _NOISE.search(text):
            continue
        cause = _PREFIX.sub("", text).strip()
        if cause and cause not in causes:
            causes.append(cause)
    if causes:
        return causes
    last = [line.strip() for line in output.splitlines() if line.strip()]
    return last[-1:]


def compose_error(command: Sequence[str], output: str) -> EngineError:
    """One error for a failed Compose command: the causes, and a hint when one is known."""
    causes = compose_causes(output) or ["(no output)"]
    text = " ".join(causes).lower()
    hint = next((advice for needle, advice in _HINTS if needle in text), None)
    message = f"`{' '.join(command)}` failed: {causes[0]}"
    if len(causes) > 1:
        message += "".join(f"\n  {cause}" for cause in causes[1:])
    if "port is already allocated" in text or "address already in use" in text:
        return PortInUseError(message, hint=hint)
    return EngineError(message, hint=hint or "the lines above are Compose's own")


class DockerEngine:
    """The repository served by the SageMaker Triton image under Docker Compose."""

    def __init__(
        self,
        repository: Path = DEFAULT_REPOSITORY,
        port: int = 8080,
        image: str | None = None,
        profile: str = "gpu",
        compose_file: Path = COMPOSE_FILE,
        compose_files: Sequence[Path] | None = None,
        project: str = PROJECT_NAME,
        sagemaker_env: SageMakerEnv | Mapping[str, str] | None = None,
        models_dir: Path | None = None,
    ) -> None:
        """Describe the service; nothing runs before :meth:`start`.

        ``compose_files``: extra Compose files after ``compose_file`` (default: those
        ``TRITONSHIP_COMPOSE_FILES`` names). ``project``: the Compose project name (one
        service runs per project; ``tritonship stop --engine docker`` stops the default).
        ``sagemaker_env``: the container's variables (default: the packaged defaults),
        written to the env file Compose reads. In multi-model mode (``SAGEMAKER_MULTI_MODEL
        =true``) ``models_dir`` is mounted at ``/opt/ml/models``, where SageMaker unpacks
        the target models (``compose.mme.yml``).
        """
        if profile not in SERVICES:
            raise EngineError(f"unknown profile {profile!r}", hint="use gpu or cpu")
        self.repository = Path(repository).resolve()
        self.port = port
        self.image = image or default_image()
        self.profile = profile
        self.service = SERVICES[profile]
        self.compose_file = Path(compose_file)
        extra = extra_compose_files() if compose_files is None else compose_files
        if sagemaker_env is None:
            sagemaker_env = packaged_env(self.repository)
        if isinstance(sagemaker_env, SageMakerEnv):
            sagemaker_env = sagemaker_env.values
        self.sagemaker_env = dict(sagemaker_env)
        self.multi_model = self.sagemaker_env.get("SAGEMAKER_MULTI_MODEL") == "true"
        self.models_dir = Path(models_dir or settings.models_dir()).resolve()
        self.container_models_dir = CONTAINER_MODELS_DIR
        mme = [paths.asset_path("container", MME_OVERRIDE)] if self.multi_model else []
        self.compose_files = [self.compose_file, *mme, *(Path(f) for f in extra)]
        self.project = project
        self.url = f"http://127.0.0.1:{port}"

    @property
    def env_file(self) -> Path:
        """The env file Compose passes to the container (written from ``sagemaker_env``)."""
        return settings.run_dir() / "docker" / f"{self.project}.env"

    def write_env_file(self) -> Path:
        """Write the container's variables as Compose's ``env_file`` (KEY=VALUE lines)."""
        lines = ["# Written by tritonship: the container's SageMaker variables."]
        for key, value in sorted(self.sagemaker_env.items()):
            if "\n" in value:
                raise EngineError(f"{key} holds a line break", hint="one line per variable")
            lines.append(f"{key}={value}")
        write_text_atomic(self.env_file, "\n".join(lines) + "\n")
        return self.env_file

    def compose_env(self) -> dict[str, str]:
        """The variables the compose files read (the same for every image).

        ``COMPOSE_HTTP_TIMEOUT`` (Compose's wait on one daemon call, 60 s by default) is
        raised unless the user set it: a loaded engine can take longer to stop and remove a
        container, and Compose then gives up with the project half removed.
        """
        return {
            "COMPOSE_HTTP_TIMEOUT": str(int(COMPOSE_HTTP_TIMEOUT_SECONDS)),
            **os.environ,
            **python_environment(),
            "TRITONSHIP_IMAGE": self.image,
            "TRITONSHIP_REPO": str(self.repository),
            "TRITONSHIP_ENV_FILE": str(self.write_env_file().resolve()),
            "TRITONSHIP_PORT": str(self.port),
            "TRITONSHIP_MODELS_DIR": str(self.models_dir),
        }

    def command(self, *args: str, profiles: Sequence[str] | None = None) -> list[str]:
        """The full Compose command line for ``args`` (this project, files and profile)."""
        chosen = [self.profile] if profiles is None else profiles
        return [
            *compose_command(),
            *compose_args(self.compose_files, chosen, args, self.project),
        ]

    def compose(
        self, *args: str, check: bool = True, profiles: Sequence[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one Compose command; a failure shows the lines of its output that say why."""
        command = self.command(*args, profiles=profiles)
        try:
            result = subprocess.run(  # noqa: S603 - fixed program, no shell
                command,
                env=self.compose_env(),
                capture_output=True,
                text=True,
                check=False,
                timeout=COMPOSE_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired as err:
            raise EngineError(
                f"`compose {' '.join(args)}` did not finish within {err.timeout:g} s",
                hint="is the Docker engine responsive? (docker info)",
            ) from err
        if check and result.returncode != 0:
            raise compose_error(["compose", *args], f"{result.stdout}\n{result.stderr}")
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
            username, password, url = _ecr_login_token(self.image, registry, ecr)
            try:
                client.login(username=username, password=password, registry=url)
            except docker.errors.APIError as err:
                raise _pull_error(self.image, f"docker login to {url} failed", err) from err
        repository, _, tag = self.image.rpartition(":")
        try:
            client.images.pull(repository, tag=tag)
        except docker.errors.APIError as err:
            raise _pull_error(self.image, "the pull failed", err) from err
        return True

    def start(self) -> None:
        """Pull the image when missing, then ``compose up -d`` the service."""
        ensure_port_free(self.port)
        if self.multi_model:
            self.models_dir.mkdir(parents=True, exist_ok=True)
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
        try:
            program, *args = self.command("logs", self.service)
            return " ".join([Path(program).name, *args])
        except EngineError:
            return f"docker compose -p {self.project} logs {self.service}"

    def logs(self, n: int = 50) -> str:
        """The container's last ``n`` log lines."""
        result = self.compose("logs", "--no-color", "--tail", str(n), self.service, check=False)
        return result.stdout.strip()

    def stop(self, client: Any = None) -> None:
        """``compose down`` for every profile, then make sure no container or network stays.

        Compose can return with the project half removed (a daemon call that timed out,
        a removal already in progress); whatever of this project is still listed is then
        removed by force, and what cannot be removed is an error naming it.
        """
        down = self.compose("down", "--remove-orphans", check=False, profiles=list(SERVICES))
        try:
            client = client or self.docker_client()
        except EngineError:
            if down.returncode == 0:
                return
            raise compose_error(["compose", "down"], f"{down.stdout}\n{down.stderr}") from None
        left = remove_project(client, self.project)
        if left:
            reason = compose_causes(f"{down.stdout}\n{down.stderr}") if down.returncode else []
            because = f" (compose down: {reason[0]})" if reason else ""
            raise EngineError(
                f"could not remove {', '.join(left)} of Compose project {self.project}{because}",
                hint="remove them by hand (docker rm -f, docker network rm); "
                "docker info shows whether the engine is healthy",
            )


#: How long a forced removal of a project's leftovers may take before it is an error.
REMOVAL_TIMEOUT_SECONDS = 60.0
REMOVAL_POLL_SECONDS = 0.5


def project_containers(client: Any, project: str) -> list[Any]:
    """The containers of one Compose project, running or not (v1 and v2 label them alike)."""
    label = f"com.docker.compose.project={project}"
    return list(client.containers.list(all=True, filters={"label": label}))


def remove_project(client: Any, project: str) -> list[str]:
    """Force-remove a project's containers, then its networks; what is still left."""
    import docker

    deadline = time.monotonic() + REMOVAL_TIMEOUT_SECONDS
    for attempt in itertools.count():
        left = project_containers(client, project)
        if not left:
            break
        if attempt and time.monotonic() >= deadline:
            return [f"container {container.name}" for container in left]
        for container in left:
            # Gone meanwhile, or a removal already in progress: the next listing tells.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
        time.sleep(REMOVAL_POLL_SECONDS)
    label = f"com.docker.compose.project={project}"
    left_networks = []
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError:
            left_networks.append(f"network {network.name}")
    return left_networks


#: What to run instead of NVIDIA's image where it cannot be pulled (no login, offline).
SIM_ALTERNATIVE = (
    f"make sim-image && make up PROFILE=cpu IMAGE={SIM_IMAGE} "
    "COMPOSE_FILES=compose.local.yml:compose.sim.yml"
)


def _ecr_login_token(image: str, registry: tuple[str, str], ecr: Any) -> tuple[str, str, str]:
    """:func:`ecr_credentials`, with boto3's failures as one line saying what to do."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    account, region = registry
    try:
        return ecr_credentials(account, region, ecr=ecr)
    except NoCredentialsError as err:
        raise EngineError(
            f"{image} is not on this machine, and the ECR login that pulls it needs AWS "
            "credentials: none found",
            hint="configure credentials that may pull from ECR (AWS_PROFILE, aws configure), "
            f"or run the local stand-in instead: {SIM_ALTERNATIVE}",
        ) from err
    except (ClientError, BotoCoreError) as err:
        reason = " ".join(str(err).split())
        raise EngineError(
            f"{image} is not on this machine, and the ECR login for account {account} in "
            f"{region} failed: {reason}",
            hint=f"check the credentials and the network, or run the local stand-in: "
            f"{SIM_ALTERNATIVE}",
        ) from err


def _pull_error(image: str, what: str, err: Exception) -> EngineError:
    """A missing image that could not be fetched: say which, why, and what to do offline."""
    reason = getattr(err, "explanation", None) or str(err)
    return EngineError(
        f"{image} is not on this machine and {what}: {reason}",
        hint="is the registry reachable from here? Offline, run the local stand-in: "
        f"{SIM_ALTERNATIVE}",
    )
