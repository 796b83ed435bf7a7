"""docker-compose.yml and its overrides checked statically (rendered by `compose config`, no
engine needed), the Compose command lines and error messages, and the Docker engine's
image/login logic against botocore's Stubber. tests/integration/test_docker.py runs them."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from tests.support.docker import rendered_environment
from tritonship.local.docker import (
    COMPOSE_FILE,
    COMPOSE_FILES_VARIABLE,
    SIM_IMAGE,
    DockerEngine,
    compose_args,
    compose_causes,
    compose_error,
    ecr_credentials,
    ecr_registry,
    extra_compose_files,
    python_environment,
)
from tritonship.local.engine import EngineError, PortInUseError
from tritonship.sagemaker.serve import load_env_file
from tritonship.sagemaker.settings import PACKAGED_ENV_FILE as SAGEMAKER_ENV_FILE

IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tritonserver:24.09-py3"
CHECKOUT = Path(__file__).resolve().parents[3]
#: The file users run by hand from the checkout (``-f container/docker-compose.yml``); in a
#: checkout it is also the packaged COMPOSE_FILE.
USER_COMPOSE_FILE = CHECKOUT / "container" / "docker-compose.yml"


def _runs(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def compose_binary() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and _runs([docker, "compose", "version"]):
        return [docker, "compose"]
    if os.environ.get("TRITONSHIP_REQUIRE_COMPOSE") == "1":
        pytest.fail("docker-compose is required here (TRITONSHIP_REQUIRE_COMPOSE=1)")
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


def render(
    profile: str,
    compose_file: Path = USER_COMPOSE_FILE,
    cwd: Path = CHECKOUT,
    extra: tuple[Path, ...] = (),
    **env: str,
) -> dict[str, Any]:
    """``compose config`` for one profile: the file(s) as Compose itself resolves them.

    Only ``env`` sets TRITONSHIP_* variables (none leak in from the test's environment).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRITONSHIP_")}
    files = [arg for file in (compose_file, *extra) for arg in ("-f", str(file))]
    result = subprocess.run(
        [*compose_binary(), "-p", "tritonship", *files, "--profile", profile, "config"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **env},
        check=True,
    )
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize(("profile", "service"), [("gpu", "triton"), ("cpu", "triton-cpu")])
def test_service_runs_serve_like_sagemaker(profile: str, service: str):
    svc = render(profile)["services"][service]
    assert svc["command"] in ("serve", ["serve"])
    [volume] = svc["volumes"]
    assert volume["target"] == "/opt/ml/model" and volume["read_only"] is True
    assert Path(volume["source"]) == CHECKOUT / "model_repository"
    [port] = svc["ports"]
    published = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}"
    assert published.startswith("127.0.0.1:8080"), "loopback only"
    assert "/ping" in " ".join(svc["healthcheck"]["test"])
    assert svc["shm_size"]
    assert svc["labels"]["io.tritonship.project"] == "tritonship"


@pytest.mark.parametrize(("profile", "service"), [("gpu", "triton"), ("cpu", "triton-cpu")])
def test_environment_equals_the_sagemaker_env_file(profile: str, service: str):
    env = rendered_environment(render(profile), service)
    assert env == load_env_file(SAGEMAKER_ENV_FILE)


def test_gpu_profile_reserves_gpus_and_cpu_profile_does_not():
    gpu = render("gpu")["services"]["triton"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert "deploy" not in render("cpu")["services"]["triton-cpu"]


def test_image_port_and_repository_come_from_the_engine(tmp_path: Path):
    """The engine renders the packaged file from anywhere: every path it passes is absolute.

    NGC's image runs ``serve`` too: Triton's build.py (r24.09, line 1219) copies
    docker/sagemaker/serve into every image built with the SageMaker endpoint.
    """
    ngc = "nvcr.io/nvidia/tritonserver:24.09-py3"
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    for model in ("dali", "inception_graphdef", "ensemble_dali_inception"):
        (repo / model).mkdir(parents=True)
    elsewhere.mkdir()
    engine = DockerEngine(repository=repo, port=18080, image=ngc, compose_files=[])
    assert engine.compose_file == COMPOSE_FILE
    env = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    assert Path(env["TRITONSHIP_ENV_FILE"]).is_absolute()
    assert Path(env["TRITONSHIP_REPO"]).is_absolute()
    config = render("cpu", compose_file=engine.compose_file, cwd=elsewhere, **env)
    svc = config["services"]["triton-cpu"]
    assert svc["image"] == ngc
    assert svc["command"] in ("serve", ["serve"]), "the same command for every image"
    assert svc["volumes"][0]["source"] == str(repo.resolve())
    assert rendered_environment(config, "triton-cpu") == load_env_file(SAGEMAKER_ENV_FILE)
    port = svc["ports"][0]
    assert "18080" in (port if isinstance(port, str) else str(port["published"]))


def test_the_packaged_compose_file_is_the_one_users_run():
    """One real file: no copy or link at the top level, the package reads the same file."""
    assert USER_COMPOSE_FILE.is_file() and not USER_COMPOSE_FILE.is_symlink()
    assert not (CHECKOUT / "docker-compose.yml").exists(), "one docker-compose.yml only"
    tracked = subprocess.run(
        ["git", "ls-files", "*docker-compose.yml"], cwd=CHECKOUT, capture_output=True, text=True
    )
    if tracked.returncode == 0:  # a git checkout (not a copy without .git)
        assert tracked.stdout.split() == ["container/docker-compose.yml"]
    assert COMPOSE_FILE == USER_COMPOSE_FILE
    assert COMPOSE_FILE.parent == SAGEMAKER_ENV_FILE.parent, "package data beside sagemaker.env"


def test_users_run_it_by_hand_from_the_checkout_with_relative_defaults():
    """``docker compose -f container/docker-compose.yml`` from the checkout: paths resolve."""
    svc = render("cpu", compose_file=Path("container/docker-compose.yml"))["services"]
    [volume] = svc["triton-cpu"]["volumes"]
    assert Path(volume["source"]) == CHECKOUT / "model_repository"
    assert rendered_environment({"services": svc}, "triton-cpu") == load_env_file(
        SAGEMAKER_ENV_FILE
    )


def test_ecr_registry_is_recognised():
    assert ecr_registry(IMAGE) == ("763104351884", "us-west-2")
    cn = "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-tritonserver:24.09-py3"
    assert ecr_registry(cn) == ("727897471807", "cn-north-1")
    assert ecr_registry("nvcr.io/nvidia/tritonserver:24.09-py3") is None


def stubbed_ecr() -> tuple[Any, Stubber]:
    client = boto3.client(
        "ecr", region_name="us-west-2", aws_access_key_id="testing", aws_secret_access_key="testing"
    )  # noqa: S106 - fake
    stubber = Stubber(client)
    token = base64.b64encode(b"AWS:secret-token").decode()
    stubber.add_response(
        "get_authorization_token",
        {
            "authorizationData": [
                {
                    "authorizationToken": token,
                    "proxyEndpoint": "https://763104351884.dkr.ecr.us-west-2.amazonaws.com",
                }
            ]
        },
        {"registryIds": ["763104351884"]},
    )
    return client, stubber


def test_ecr_credentials_decode_the_token():
    client, stubber = stubbed_ecr()
    with stubber:
        user, password, url = ecr_credentials("763104351884", "us-west-2", ecr=client)
    assert (user, password) == ("AWS", "secret-token")
    assert url.endswith("amazonaws.com")


class FakeImages:
    """The part of docker-py's ImageCollection the engine uses (no engine runs in CI)."""

    def __init__(self, present: bool) -> None:
        self.present = present
        self.pulled: list[tuple[str, str]] = []

    def get(self, name: str) -> object:
        import docker

        if not self.present:
            raise docker.errors.ImageNotFound(name)
        return object()

    def pull(self, repository: str, tag: str) -> None:
        self.pulled.append((repository, tag))


class FakeDocker:
    def __init__(self, present: bool) -> None:
        self.images = FakeImages(present)
        self.logins: list[dict[str, str]] = []

    def login(self, **kwargs: str) -> None:
        self.logins.append(kwargs)


def test_missing_image_logs_in_to_ecr_then_pulls():
    docker, (client, stubber) = FakeDocker(present=False), stubbed_ecr()
    engine = DockerEngine(image=IMAGE)
    with stubber:
        assert engine.ensure_image(client=docker, ecr=client) is True
    assert docker.logins == [
        {
            "username": "AWS",
            "password": "secret-token",
            "registry": "https://763104351884.dkr.ecr.us-west-2.amazonaws.com",
        }
    ]
    assert docker.images.pulled == [(IMAGE.rsplit(":", 1)[0], "24.09-py3")]


def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A shell with no AWS credentials anywhere (and no instance metadata to ask)."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_ecr_image_without_credentials_is_one_line_with_the_stand_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """``make up`` with the default image and no credentials: not a raw NoCredentialsError."""
    from tritonship.errors import render as describe_error

    no_aws_credentials(monkeypatch, tmp_path)
    docker = FakeDocker(present=False)
    with pytest.raises(EngineError) as info:
        DockerEngine(image=IMAGE).ensure_image(client=docker)  # boto3's own ECR client
    line = describe_error(info.value)
    assert "\n" not in line
    assert "ECR login" in line and "credentials" in line
    assert "make sim-image" in line and SIM_IMAGE in line
    assert "NoCredentialsError" not in line
    assert docker.logins == [] and docker.images.pulled == []


def test_present_image_needs_no_login():
    docker = FakeDocker(present=True)
    assert DockerEngine(image=IMAGE).ensure_image(client=docker, ecr=object()) is False
    assert docker.logins == [] and docker.images.pulled == []


def test_no_docker_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    with pytest.raises(EngineError, match="no Docker engine answers") as info:
        DockerEngine(image=IMAGE).docker_client()
    assert "--engine native" in str(info.value)


def test_compose_file_parses_as_yaml_with_two_profiles():
    data = yaml.safe_load(USER_COMPOSE_FILE.read_text())
    assert {s: v["profiles"] for s, v in data["services"].items()} == {
        "triton": ["gpu"],
        "triton-cpu": ["cpu"],
    }


# --- extra Compose files, the command line for v1 and v2, Compose's errors ---------------

LOCAL_OVERRIDE = COMPOSE_FILE.parent / "compose.local.yml"
SIM_OVERRIDE = COMPOSE_FILE.parent / "compose.sim.yml"


def test_the_network_is_labelled_for_cleanup_checks():
    config = render("cpu")
    assert config["networks"]["default"]["labels"]["io.tritonship.project"] == "tritonship"


def test_local_override_lowers_memlock_and_the_users_file_keeps_minus_one():
    users = render("cpu")["services"]["triton-cpu"]["ulimits"]
    assert users["memlock"] == -1
    for profile, service in (("gpu", "triton"), ("cpu", "triton-cpu")):
        ulimits = render(profile, extra=(LOCAL_OVERRIDE,))["services"][service]["ulimits"]
        assert ulimits == {"memlock": 8388608, "stack": 67108864}


def test_sim_override_mounts_this_python_read_only_at_the_same_paths(tmp_path: Path):
    engine = DockerEngine(repository=tmp_path, image=SIM_IMAGE, profile="cpu", compose_files=[])
    env = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    config = render("cpu", extra=(LOCAL_OVERRIDE, SIM_OVERRIDE), **env)
    svc = config["services"]["triton-cpu"]
    mounts = {v["target"]: v for v in svc["volumes"]}
    assert mounts["/opt/ml/model"]["source"] == str(tmp_path.resolve())
    for name in ("TRITONSHIP_PYTHON_PREFIX", "TRITONSHIP_PYTHON_BASE", "TRITONSHIP_SOURCE"):
        mount = mounts[env[name]]
        assert mount["source"] == env[name] and mount["read_only"] is True
    assert rendered_environment(config, "triton-cpu") == {
        **engine.sagemaker_env,
        "TRITONSHIP_PYTHON": sys.executable,
    }
    assert svc["command"] in ("serve", ["serve"]) and svc["image"] == SIM_IMAGE


def test_the_merged_environment_reaches_the_container(tmp_path: Path, monkeypatch):
    """What --env / --env-file / exported SAGEMAKER_* merge to is the container's env_file."""
    from tritonship.sagemaker.settings import EnvSources, sagemaker_env

    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SAGEMAKER_TRITON_THREAD_COUNT", "4")
    (tmp_path / "repo" / "sm_model" / "1").mkdir(parents=True)
    sources = EnvSources(pairs=("SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=sm_model",))
    env = sagemaker_env(sources, tmp_path / "repo")
    engine = DockerEngine(tmp_path / "repo", image=IMAGE, profile="cpu", sagemaker_env=env)
    compose_vars = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    config = render("cpu", extra=engine.compose_files[1:], **compose_vars)
    assert rendered_environment(config, "triton-cpu") == {
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "sm_model",
        "SAGEMAKER_TRITON_LOG_VERBOSE": "0",
        "SAGEMAKER_TRITON_THREAD_COUNT": "4",
    }
    targets = [v["target"] for v in config["services"]["triton-cpu"]["volumes"]]
    assert targets == ["/opt/ml/model"], "single-model mode mounts no models folder"


def test_multi_model_mode_mounts_the_models_folder_read_only(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    env = {"SAGEMAKER_MULTI_MODEL": "true"}
    engine = DockerEngine(
        tmp_path, image=IMAGE, profile="cpu", sagemaker_env=env, models_dir=tmp_path / "m"
    )
    compose_vars = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    config = render("cpu", extra=engine.compose_files[1:], **compose_vars)
    mounts = {v["target"]: v for v in config["services"]["triton-cpu"]["volumes"]}
    assert mounts["/opt/ml/models"]["source"] == str((tmp_path / "m").resolve())
    assert mounts["/opt/ml/models"]["read_only"] is True
    assert rendered_environment(config, "triton-cpu") == env


SHM_OVERRIDE = COMPOSE_FILE.parent / "compose.shm.yml"
#: The shared memory a SageMaker endpoint's container gets (Docker's default), as reported
#: in aws/sagemaker-python-sdk#2801; container/compose.shm.yml says more.
SAGEMAKER_SHM = 64 << 20


def shm_bytes(value: Any) -> int:
    """Compose renders ``shm_size`` as bytes (v2) or as written (v1: ``64m``, ``2gb``)."""
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", str(value).lower()).groups()
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def test_shm_override_gives_both_services_sagemakers_shared_memory():
    assert shm_bytes(render("cpu")["services"]["triton-cpu"]["shm_size"]) == 2 << 30
    for profile, service in (("gpu", "triton"), ("cpu", "triton-cpu")):
        svc = render(profile, extra=(LOCAL_OVERRIDE, SHM_OVERRIDE))["services"][service]
        assert shm_bytes(svc["shm_size"]) == SAGEMAKER_SHM
        assert svc["ulimits"]["memlock"] == 8388608, "the other overrides still apply"


def test_shm_override_with_the_stand_in_image(tmp_path: Path):
    """How the stand-in runs under SageMaker's shared memory (test_docker.py starts it)."""
    engine = DockerEngine(repository=tmp_path, image=SIM_IMAGE, profile="cpu", compose_files=[])
    env = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    config = render("cpu", extra=(LOCAL_OVERRIDE, SIM_OVERRIDE, SHM_OVERRIDE), **env)
    svc = config["services"]["triton-cpu"]
    assert shm_bytes(svc["shm_size"]) == SAGEMAKER_SHM and svc["image"] == SIM_IMAGE
    assert extra_compose_files("compose.shm.yml") == [SHM_OVERRIDE], "packaged by name"


def test_sim_override_without_the_python_variables_names_what_is_missing():
    with pytest.raises(subprocess.CalledProcessError) as info:
        render("cpu", extra=(SIM_OVERRIDE,))
    assert "TRITONSHIP_PYTHON" in info.value.stderr


def test_a_system_python_base_mounts_only_its_standard_library(monkeypatch):
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    env = python_environment()
    assert env["TRITONSHIP_PYTHON_BASE"] == sysconfig.get_paths()["stdlib"]
    assert env["TRITONSHIP_PYTHON"] == sys.executable
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # not a virtual environment
    assert python_environment()["TRITONSHIP_PYTHON_BASE"] == sysconfig.get_paths()["stdlib"]


def test_extra_compose_files_by_packaged_name_or_path(tmp_path: Path, monkeypatch):
    own = tmp_path / "mine.yml"
    own.write_text("services: {}\n")
    value = os.pathsep.join(["compose.local.yml", str(own), ""])
    assert extra_compose_files(value) == [LOCAL_OVERRIDE, own.resolve()]
    monkeypatch.setenv(COMPOSE_FILES_VARIABLE, "compose.sim.yml")
    assert DockerEngine(image=SIM_IMAGE).compose_files == [COMPOSE_FILE, SIM_OVERRIDE]
    with pytest.raises(EngineError, match="neither a file nor a packaged"):
        extra_compose_files("compose.nowhere.yml")


@pytest.mark.parametrize(
    "program", [["/usr/bin/docker", "compose"], ["/usr/bin/docker-compose"]], ids=["v2", "v1"]
)
def test_command_lines_keep_to_what_compose_v1_and_v2_both_accept(monkeypatch, program):
    """Global options before the command, one -f per file, one --profile per profile."""
    import tritonship.local.docker as docker_module

    monkeypatch.setattr(docker_module, "compose_command", lambda: list(program))
    calls: list[list[str]] = []

    def run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "triton-cpu\n", "")

    monkeypatch.setattr(docker_module.subprocess, "run", run)
    engine = DockerEngine(image=SIM_IMAGE, profile="cpu", compose_files=[LOCAL_OVERRIDE])
    files = ["-f", str(COMPOSE_FILE), "-f", str(LOCAL_OVERRIDE)]
    common = [*program, "-p", "tritonship", *files]
    engine.compose("up", "-d", "triton-cpu")
    assert engine.is_alive()
    engine.logs(7)
    engine.stop(client=fake_client(FakeEngineState()))
    assert calls == [
        [*common, "--profile", "cpu", "up", "-d", "triton-cpu"],
        [*common, "--profile", "cpu", "ps", "--services", "--filter", "status=running"],
        [*common, "--profile", "cpu", "logs", "--no-color", "--tail", "7", "triton-cpu"],
        [*common, "--profile", "gpu", "--profile", "cpu", "down", "--remove-orphans"],
    ]
    assert compose_args([COMPOSE_FILE], ["cpu"], ["config"]) == [
        "-p",
        "tritonship",
        "-f",
        str(COMPOSE_FILE),
        "--profile",
        "cpu",
        "config",
    ]


class FakeContainer:
    """A container as docker-py lists it; ``stuck`` ones refuse removal, as a sick engine does."""

    def __init__(self, state: FakeEngineState, name: str, stuck: bool = False) -> None:
        self.state, self.name, self.stuck = state, name, stuck
        self.removals: list[dict[str, bool]] = []

    def remove(self, **kwargs: bool) -> None:
        import docker

        self.removals.append(kwargs)
        if self.stuck:
            raise docker.errors.APIError("removal of container is already in progress")
        self.state.containers.remove(self)


class FakeNetwork:
    def __init__(self, state: FakeEngineState, name: str) -> None:
        self.state, self.name = state, name

    def remove(self) -> None:
        self.state.networks.remove(self)


class FakeEngineState:
    """The containers and networks of one project, as docker-py's collections list them."""

    def __init__(self) -> None:
        self.containers: list[FakeContainer] = []
        self.networks: list[FakeNetwork] = []
        self.filters: list[dict[str, object]] = []
        outer = self

        class Collection:
            def __init__(self, items: list) -> None:
                self.items = items

            def list(self, all: bool = False, filters: dict[str, object] | None = None) -> list:
                outer.filters.append(dict(filters or {}))
                return list(self.items)

        self.container_collection = Collection(self.containers)
        self.network_collection = Collection(self.networks)


def fake_client(state: FakeEngineState) -> object:
    """A docker-py client over ``state``."""
    return type(
        "Client",
        (),
        {"containers": state.container_collection, "networks": state.network_collection},
    )()


def down_that_fails(monkeypatch: pytest.MonkeyPatch, output: str) -> list[list[str]]:
    """`compose down` returns 1 with ``output`` and removes nothing (a daemon call timed out)."""
    import tritonship.local.docker as docker_module

    calls: list[list[str]] = []

    def run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", output)

    monkeypatch.setattr(docker_module, "compose_command", lambda: ["docker-compose"])
    monkeypatch.setattr(docker_module.subprocess, "run", run)
    monkeypatch.setattr(docker_module, "REMOVAL_POLL_SECONDS", 0)
    return calls


TIMED_OUT = (
    "ERROR: for triton-cpu  UnixHTTPConnectionPool(host='localhost', port=None): "
    "Read timed out. (read timeout=60)"
)


def test_stop_removes_by_force_what_compose_down_left(monkeypatch: pytest.MonkeyPatch):
    calls = down_that_fails(monkeypatch, TIMED_OUT)
    state = FakeEngineState()
    container = FakeContainer(state, "p1-triton-cpu-1")
    state.containers.append(container)
    state.networks.append(FakeNetwork(state, "p1_default"))
    DockerEngine(image=SIM_IMAGE, profile="cpu", project="p1").stop(client=fake_client(state))
    assert calls[0][-2:] == ["down", "--remove-orphans"]
    assert container.removals == [{"force": True}]
    assert state.containers == [] and state.networks == []
    assert {"label": "com.docker.compose.project=p1"} in state.filters  # this project only


def test_stop_names_what_it_cannot_remove(monkeypatch: pytest.MonkeyPatch):
    import tritonship.local.docker as docker_module

    down_that_fails(monkeypatch, TIMED_OUT)
    monkeypatch.setattr(docker_module, "REMOVAL_TIMEOUT_SECONDS", 0)
    state = FakeEngineState()
    stuck = FakeContainer(state, "p1-triton-cpu-1", stuck=True)
    state.containers.append(stuck)
    engine = DockerEngine(image=SIM_IMAGE, profile="cpu", project="p1")
    with pytest.raises(EngineError) as info:
        engine.stop(client=fake_client(state))
    assert info.value.what == (
        "could not remove container p1-triton-cpu-1 of Compose project p1 (compose down: "
        "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. "
        "(read timeout=60))"
    )
    assert "docker rm -f" in (info.value.hint or "")
    assert stuck.removals  # it was tried, by force


def test_stop_without_an_engine_says_compose_down_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    down_that_fails(monkeypatch, "Couldn't connect to Docker daemon at http+docker://localhost")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    with pytest.raises(EngineError, match=r"^`compose down` failed: Couldn't connect"):
        DockerEngine(image=SIM_IMAGE, profile="cpu").stop()


#: What docker-compose 1.29 printed here for `up -d` with `memlock: -1`.
V1_RLIMIT_OUTPUT = """\
Creating network "tritonship_default" with the default driver
Creating tritonship_triton-cpu_1 ...
Creating tritonship_triton-cpu_1 ... error

ERROR: for tritonship_triton-cpu_1  Cannot start service triton-cpu: failed to create shim \
task: OCI runtime create failed: runc create failed: unable to start container process: error \
during container init: error setting rlimits for ready process: error setting rlimit type 8: \
operation not permitted: unknown

ERROR: for triton-cpu  Cannot start service triton-cpu: failed to create shim task: OCI \
runtime create failed: runc create failed: unable to start container process: error during \
container init: error setting rlimits for ready process: error setting rlimit type 8: \
operation not permitted: unknown
Encountered errors while bringing up the project.
"""

#: The same failure as Compose v2 reports it (plain progress output).
V2_RLIMIT_OUTPUT = """\
 Network tritonship_default  Creating
 Network tritonship_default  Created
 Container tritonship-triton-cpu-1  Creating
 Container tritonship-triton-cpu-1  Created
 Container tritonship-triton-cpu-1  Starting
Error response from daemon: failed to create shim task: OCI runtime create failed: error \
setting rlimits for ready process: error setting rlimit type 8: operation not permitted: unknown
"""


@pytest.mark.parametrize("output", [V1_RLIMIT_OUTPUT, V2_RLIMIT_OUTPUT], ids=["v1", "v2"])
def test_compose_errors_keep_the_line_that_says_why(output: str):
    error = compose_error(["compose", "up", "-d", "triton-cpu"], output)
    text = str(error)
    assert text.startswith("`compose up -d triton-cpu` failed: ")
    assert "error setting rlimit type 8: operation not permitted" in text
    assert "Encountered errors" not in text and "Creating" not in text and "Starting" not in text
    assert "compose.local.yml" in (error.hint or "")
    assert text.count("rlimit type 8") == 1, "the same cause once, not per container name"


def test_compose_error_without_a_recognisable_cause_keeps_the_last_line():
    assert compose_causes("Encountered errors while bringing up the project.\n") == [
        "Encountered errors while bringing up the project."
    ]
    invalid = "ERROR: The Compose file './x.yml' is invalid because:\nservices.a.b is bad\n"
    assert compose_causes(invalid) == [
        "The Compose file './x.yml' is invalid because:",
        "services.a.b is bad",
    ]


def test_a_busy_port_from_compose_is_a_port_error():
    output = "Error response from daemon: driver failed programming external connectivity: \
Bind for 127.0.0.1:8080 failed: port is already allocated\n"
    assert isinstance(compose_error(["compose", "up"], output), PortInUseError)


def test_an_unreachable_registry_is_a_clear_error_after_the_ecr_login():
    import docker

    client, (ecr, stubber) = FakeDocker(present=False), stubbed_ecr()

    def pull(repository: str, tag: str) -> None:
        raise docker.errors.APIError("500", explanation="dial tcp: lookup ... no such host")

    client.images.pull = pull  # type: ignore[method-assign]
    with stubber, pytest.raises(EngineError) as info:
        DockerEngine(image=IMAGE).ensure_image(client=client, ecr=ecr)
    stubber.assert_no_pending_responses()
    assert client.logins, "logged in to ECR first"
    assert f"{IMAGE} is not on this machine and the pull failed" in str(info.value)
    assert "no such host" in str(info.value) and "make sim-image" in (info.value.hint or "")


def test_the_stand_in_image_runs_the_wheels_server_with_the_assembled_backends(
    tmp_path: Path, monkeypatch
):
    from tritonship.local.native import TritonDistribution
    from tritonship.local.sim import server_command

    monkeypatch.setenv("LD_LIBRARY_PATH", "/x")
    dist = TritonDistribution(tmp_path / "pytriton" / "tritonserver")
    command, env = server_command(["--allow-sagemaker=true"], tmp_path / "b", dist)
    assert command == [
        str(dist.server),
        "--allow-sagemaker=true",
        f"--backend-directory={tmp_path}/b",
    ]
    assert env["LD_LIBRARY_PATH"] == f"{dist.libs}:/x"
