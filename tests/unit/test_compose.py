"""docker-compose.yml checked statically (CI has no Docker engine) and the Docker engine's
image/login logic against botocore's Stubber and the real Docker SDK."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from tritonship.local.docker import (
    COMPOSE_FILE,
    DockerEngine,
    ecr_credentials,
    ecr_registry,
    rendered_environment,
)
from tritonship.local.engine import EngineError
from tritonship.paths import SAGEMAKER_ENV_FILE
from tritonship.sagemaker.serve import load_env_file

IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tritonserver:24.09-py3"
CHECKOUT = Path(__file__).resolve().parents[2]
#: The file users run by hand from the checkout (COMPOSE_FILE is the packaged one).
USER_COMPOSE_FILE = CHECKOUT / "docker-compose.yml"


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
    profile: str, compose_file: Path = USER_COMPOSE_FILE, cwd: Path = CHECKOUT, **env: str
) -> dict[str, Any]:
    """``compose config`` for one profile: the file as Compose itself resolves it.

    Only ``env`` sets TRITONSHIP_* variables (none leak in from the test's environment).
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRITONSHIP_")}
    result = subprocess.run(
        [
            *compose_binary(),
            "-p",
            "tritonship",
            "-f",
            str(compose_file),
            "--profile",
            profile,
            "config",
        ],
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
    """The engine renders the packaged file from anywhere: every path it passes is absolute."""
    ngc = "nvcr.io/nvidia/tritonserver:24.09-py3"
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    for model in ("dali", "inception_graphdef", "ensemble_dali_inception"):
        (repo / model).mkdir(parents=True)
    elsewhere.mkdir()
    engine = DockerEngine(repository=repo, port=18080, image=ngc)
    assert engine.compose_file == COMPOSE_FILE
    env = {k: v for k, v in engine.compose_env().items() if k.startswith("TRITONSHIP_")}
    assert Path(env["TRITONSHIP_ENV_FILE"]).is_absolute()
    assert Path(env["TRITONSHIP_REPO"]).is_absolute()
    config = render("cpu", compose_file=engine.compose_file, cwd=elsewhere, **env)
    svc = config["services"]["triton-cpu"]
    assert svc["image"] == ngc, "an NGC image runs the tritonserver command serve would run"
    command = svc["command"] if isinstance(svc["command"], list) else svc["command"].split()
    assert command[:4] == [
        "tritonserver",
        "--allow-sagemaker=true",
        "--allow-http=false",
        "--model-control-mode=explicit",
    ]
    assert "--model-repository=/opt/ml/model" in command
    assert "--load-model=ensemble_dali_inception" in command
    assert svc["volumes"][0]["source"] == str(repo.resolve())
    assert rendered_environment(config, "triton-cpu") == load_env_file(SAGEMAKER_ENV_FILE)
    port = svc["ports"][0]
    assert "18080" in (port if isinstance(port, str) else str(port["published"]))


def test_the_packaged_compose_file_is_the_one_users_run():
    link = CHECKOUT / "container" / "docker-compose.yml"
    assert link.is_symlink() and link.readlink() == Path("../docker-compose.yml")
    assert COMPOSE_FILE.read_bytes() == USER_COMPOSE_FILE.read_bytes()
    assert COMPOSE_FILE.parent == SAGEMAKER_ENV_FILE.parent, "package data beside sagemaker.env"


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
