"""The Docker engine for real: the stand-in of the SageMaker image under Docker Compose.

The shared suite (test_endpoint, test_invoke, test_hostile) already runs against this
engine through the parametrized ``endpoint`` fixture. Here: what only a container does.
Its ``serve`` script against tritonship's own mapping (:mod:`tritonship.sagemaker.serve`),
refusals included; Compose's errors; a container that exits while starting; a busy port;
``serve --detach`` / ``stop`` and ``make up`` / ``make down`` leaving nothing behind; the
healthcheck; stop and restart; the container killed mid-request; a missing image going
through the ECR login and failing offline. Each test uses a Compose project of its own,
except those that drive the default project as users do (they refuse to touch one that
already runs here).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config

from tests.support import docker as support
from tests.support.load import cpu_ticks, send_in_background, until
from tests.unit.local.test_compose import IMAGE as ECR_IMAGE
from tests.unit.local.test_compose import stubbed_ecr
from tritonship import cli
from tritonship.local.docker import COMPOSE_FILES_VARIABLE, PROJECT_NAME, SIM_IMAGE, DockerEngine
from tritonship.local.endpoint import LocalEndpoint
from tritonship.local.engine import EngineError, free_port, ping
from tritonship.sagemaker.client import InvocationError, SageMakerTransport
from tritonship.sagemaker.serve import ServeRefused, load_env_file, serve_args, serve_env
from tritonship.sagemaker.settings import PACKAGED_ENV_FILE as SAGEMAKER_ENV_FILE
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import photo_jpeg

CHECKOUT = Path(__file__).resolve().parents[2]
SIM_FILES = ":".join(str(f) for f in support.SIM_COMPOSE_FILES)
READY_TIMEOUT = 300.0


@pytest.fixture(autouse=True, scope="module")
def _docker() -> None:
    support.require_docker()


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private run state (the local runtime's record) for CLI tests."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture()
def default_project(monkeypatch: pytest.MonkeyPatch, run_dir: Path) -> Iterator[None]:
    """The default project as users run it; refused when one already runs, always cleaned."""
    if support.leftovers(PROJECT_NAME)["containers"]:
        pytest.skip("a tritonship Compose project already runs here; these tests leave it alone")
    monkeypatch.setenv(COMPOSE_FILES_VARIABLE, SIM_FILES)
    yield
    DockerEngine(image=SIM_IMAGE).stop()


@pytest.fixture()
def engine(built_repository: Path) -> Iterator[DockerEngine]:
    """A private stand-in container, ready; always brought down."""
    docker_engine = support.sim_engine(built_repository, free_port())
    docker_engine.start()
    try:
        docker_engine.wait_ready(READY_TIMEOUT)
        yield docker_engine
    finally:
        docker_engine.stop()
    assert support.leftovers(docker_engine.project) == {"containers": [], "networks": []}


def answer(url: str) -> np.ndarray:
    request = encode_request([photo_jpeg("chelsea")])
    return decode_response(*_post(url, request.body, request.content_type))


def _post(url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
    response = requests.post(
        f"{url}/invocations", data=body, timeout=120, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    return response.content, response.headers["Content-Type"]


def container_of(engine: DockerEngine) -> Any:
    [container] = support.client().containers.list(
        all=True, filters={"label": f"com.docker.compose.project={engine.project}"}
    )
    return container


# --- the image's serve script: tritonship's mapping, flag for flag, refusals included -----

#: Prints the flags serve passes, one per line, and the model name it exports.
ECHO_SERVER = """#!/bin/sh
printf 'ARG %s\\n' "$@"
echo "EXPORTED ${SAGEMAKER_TRITON_DEFAULT_MODEL_NAME:-}"
"""

SERVE_CASES = {
    "the committed env file": load_env_file(SAGEMAKER_ENV_FILE),
    "every variable": {
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "ensemble_dali_inception",
        "SAGEMAKER_BIND_TO_PORT": "9090",
        "SAGEMAKER_SAFE_PORT_RANGE": "9000-9999",
        "SAGEMAKER_TRITON_DISABLE_MODEL_NAMESPACING": "false",
        "SAGEMAKER_TRITON_ALLOW_GRPC": "true",
        "SAGEMAKER_TRITON_GRPC_PORT": "9001",
        "SAGEMAKER_TRITON_ALLOW_METRICS": "true",
        "SAGEMAKER_TRITON_METRICS_PORT": "9002",
        "SAGEMAKER_TRITON_BUFFER_MANAGER_THREAD_COUNT": "4",
        "SAGEMAKER_TRITON_THREAD_COUNT": "16",
        "SAGEMAKER_TRITON_LOG_VERBOSE": "1",
        "SAGEMAKER_TRITON_LOG_INFO": "true",
        "SAGEMAKER_TRITON_LOG_WARNING": "false",
        "SAGEMAKER_TRITON_LOG_ERROR": "true",
        "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": "33554432",
        "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE": "2097152",
        "SAGEMAKER_TRITON_TENSORFLOW_VERSION": "2",
        "SAGEMAKER_TRITON_ADDITIONAL_ARGS": "--exit-timeout-secs=5 --strict-readiness=false",
    },
    "multi-model": {"SAGEMAKER_MULTI_MODEL": "true"},
    "nothing set": {},
}


def run_serve(repo: Path, env: dict[str, str], server: Path | None = None) -> tuple[int, str]:
    """Run the image's ``serve`` on ``repo`` (read-only at /opt/ml/model): exit code, output."""
    volumes = {str(repo): {"bind": "/opt/ml/model", "mode": "ro"}}
    if server:
        volumes[str(server)] = {"bind": "/opt/tritonserver/bin/tritonserver", "mode": "ro"}
    container = support.client().containers.run(
        SIM_IMAGE, "serve", environment=env, volumes=volumes, detach=True
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def single_model(tmp_path: Path, built_repository: Path) -> Path:
    repo = tmp_path / "single"
    shutil.copytree(built_repository / "inception_graphdef", repo / "inception_graphdef")
    return repo


@pytest.mark.parametrize("case", SERVE_CASES)
def test_serve_passes_the_flags_tritonship_computes(
    case: str, built_repository: Path, tmp_path: Path
):
    env = SERVE_CASES[case]
    repo = single_model(tmp_path, built_repository) if case == "nothing set" else built_repository
    echo = tmp_path / "tritonserver"
    echo.write_text(ECHO_SERVER)
    echo.chmod(0o755)
    status, output = run_serve(repo, env, server=echo)
    assert status == 0, output
    flags = [line[4:] for line in output.splitlines() if line.startswith("ARG ")]
    expected = [
        "--model-repository=/opt/ml/model/" if a == f"--model-repository={repo}" else a
        for a in serve_args(env, repo)
    ]
    assert flags == expected
    exported = serve_env(env, repo).get("SAGEMAKER_TRITON_DEFAULT_MODEL_NAME", "")
    assert f"EXPORTED {exported}" in output.splitlines()


REFUSALS = {
    "a model folder packed one level too shallow": ("shallow", {}, "Incorrect directory"),
    "the named model is missing": (
        "full",
        {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "no_such_model"},
        "Directory with provided SAGEMAKER_TRITON_DEFAULT_MODEL_NAME no_such_model does not exist",
    ),
    "several models and no name": ("full", {}, "More than 1 model directory"),
    "no model at all": ("empty", {}, "No model found"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_serve_refuses_what_tritonship_refuses(case: str, built_repository: Path, tmp_path: Path):
    layout, env, message = REFUSALS[case]
    repo = {
        "shallow": built_repository / "inception_graphdef",
        "full": built_repository,
        "empty": tmp_path,
    }[layout]
    status, output = run_serve(repo, env)
    assert status == 1 and f"ERROR: {message}" in output, output
    with pytest.raises(ServeRefused):
        serve_args(env, repo)


# --- Compose: errors, a failed start, a busy port -----------------------------------------


@pytest.mark.skipif(not support.memlock_is_capped(), reason="memlock is not capped here")
def test_compose_error_shows_the_line_that_says_why(built_repository: Path):
    """Without compose.local.yml, `memlock: -1` fails here; the rlimit line must show."""
    engine = support.sim_engine(built_repository, free_port(), compose_files=[support.SIM_OVERRIDE])
    try:
        with pytest.raises(EngineError) as info:
            engine.start()
    finally:
        engine.stop()
    message = str(info.value)
    assert message.startswith("`compose up -d triton-cpu` failed: ")
    assert "error setting rlimit type 8: operation not permitted" in message
    assert "Encountered errors" not in message
    assert "compose.local.yml" in (info.value.hint or "")
    assert support.leftovers(engine.project) == {"containers": [], "networks": []}


def test_a_container_that_exits_while_starting_shows_its_last_log_lines(
    built_repository: Path,
):
    """serve refuses a model folder packed one level too shallow: the engine shows why."""
    engine = support.sim_engine(built_repository / "inception_graphdef", free_port())
    try:
        engine.start()
        with pytest.raises(EngineError) as info:
            engine.wait_ready(READY_TIMEOUT)
    finally:
        engine.stop()
    assert "exited before it was ready" in str(info.value)
    assert "ERROR: Incorrect directory structure." in info.value.log_tail
    assert support.leftovers(engine.project) == {"containers": [], "networks": []}


def test_cli_failed_start_shows_the_server_log_lines(
    built_repository: Path,
    default_project: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """A user's override names a model that is not there: serve exits, the CLI says why."""
    override = tmp_path / "compose.wrong-model.yml"
    override.write_text(
        "services:\n  triton-cpu:\n    environment:\n"
        "      SAGEMAKER_TRITON_DEFAULT_MODEL_NAME: no_such_model\n"
    )
    monkeypatch.setenv(COMPOSE_FILES_VARIABLE, f"{SIM_FILES}:{override}")
    command = ["serve", "--engine", "docker", "--profile", "cpu", "--image", SIM_IMAGE]
    command += ["--repo", str(built_repository), "--port", str(free_port())]
    assert cli.main([*command, "--runtime-port", "0", "--timeout", "180"]) == 1
    err = capsys.readouterr().err
    assert "exited before it was ready" in err and "last server log lines" in err
    assert "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME no_such_model does not exist" in err
    assert support.leftovers(PROJECT_NAME) == {"containers": [], "networks": []}


def test_a_busy_port_is_refused_in_one_line(
    built_repository: Path, default_project: None, capsys: pytest.CaptureFixture[str]
):
    with socket_listening() as port:
        code = cli.main(
            [
                "serve",
                "--engine",
                "docker",
                "--profile",
                "cpu",
                "--image",
                SIM_IMAGE,
                "--repo",
                str(built_repository),
                "--port",
                str(port),
            ]
        )
    assert code == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "already in use" in line]
    assert f"port {port} is already in use" in line and "Traceback" not in err
    assert support.leftovers(PROJECT_NAME) == {"containers": [], "networks": []}


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A loopback port that something already listens on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield int(busy.getsockname()[1])


# --- as users run it: make up / make down (serve --detach / stop), the healthcheck ------


def health(project: str) -> str:
    [container] = support.client().containers.list(
        filters={"label": f"com.docker.compose.project={project}"}
    )
    return str(container.attrs["State"].get("Health", {}).get("Status"))


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``make`` in the checkout, without reinstalling the virtual environment."""
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/bin/.installed", *args],
        cwd=CHECKOUT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_make_up_turns_healthy_and_make_down_leaves_nothing(
    built_repository: Path, default_project: None, monkeypatch: pytest.MonkeyPatch
):
    """make up = serve --engine docker --detach (with the runtime); make down = stop."""
    monkeypatch.delenv(COMPOSE_FILES_VARIABLE)
    port, runtime_port = free_port(), free_port()
    up = make(
        "up",
        "PROFILE=cpu",
        f"IMAGE={SIM_IMAGE}",
        f"COMPOSE_FILES={SIM_FILES}",
        f"REPO={built_repository}",
        f"PORT={port}",
        f"RUNTIME_PORT={runtime_port}",
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"http://127.0.0.1:{port}/invocations" in up.stdout and "logs triton-cpu" in up.stdout
    assert ping(f"http://127.0.0.1:{port}") == 200
    assert ping(f"http://127.0.0.1:{runtime_port}") == 200
    assert [label.get("io.tritonship.project") for label in _labels()] == ["tritonship"]
    until(lambda: health(PROJECT_NAME) == "healthy", timeout=90)

    down = make("down")  # as a user types it: no COMPOSE_FILES needed to bring it down
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped the local SageMaker runtime" in down.stdout
    assert "stopped the tritonship Docker Compose project" in down.stdout
    assert support.leftovers(PROJECT_NAME) == {"containers": [], "networks": []}
    assert ping(f"http://127.0.0.1:{port}") is None
    assert ping(f"http://127.0.0.1:{runtime_port}") is None


def _labels() -> list[dict[str, str]]:
    containers = support.client().containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT_NAME}"}
    )
    return [c.labels for c in containers]


# --- stop and restart; the container killed mid-request ---------------------------------


def test_stop_removes_by_force_what_compose_down_left(
    built_repository: Path, monkeypatch: pytest.MonkeyPatch
):
    """Compose gave up half way (a daemon call timed out): the running container still goes."""
    engine = support.sim_engine(built_repository, free_port())
    compose = engine.compose

    def down_gives_up(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("down",):
            return subprocess.CompletedProcess(["compose", *args], 1, "", "Read timed out.")
        return compose(*args, **kwargs)

    engine.start()
    try:
        assert engine.is_alive()
        monkeypatch.setattr(engine, "compose", down_gives_up)
        engine.stop()
        assert support.leftovers(engine.project) == {"containers": [], "networks": []}
    finally:
        compose("down", "--remove-orphans", check=False)  # only if the test failed


def test_stop_and_restart_answer_as_before(
    built_repository: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
):
    engine = support.sim_engine(built_repository, free_port())
    local = LocalEndpoint(engine, runtime_port=free_port())
    local.start(READY_TIMEOUT)
    try:
        assert local.runtime is not None
        client = boto3.client(
            "sagemaker-runtime",
            endpoint_url=local.runtime.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - fake
            config=Config(retries={"max_attempts": 1}),
        )
        through_runtime = SageMakerTransport(local.runtime.endpoint_name, client=client)
        request = encode_request([photo_jpeg("chelsea")])
        before = answer(engine.url)
        np.testing.assert_allclose(
            decode_response(*_answer_parts(through_runtime.send(request))), before, atol=1e-5
        )

        engine.stop()
        assert not engine.is_alive() and ping(engine.url) is None
        assert support.leftovers(engine.project) == {"containers": [], "networks": []}
        engine.start()
        engine.wait_ready(READY_TIMEOUT)

        np.testing.assert_allclose(answer(engine.url), before, atol=1e-5)
        again = decode_response(*_answer_parts(through_runtime.send(request)))
        np.testing.assert_allclose(again, before, atol=1e-5)
    finally:
        local.stop()
    assert support.leftovers(engine.project) == {"containers": [], "networks": []}


def test_the_stand_in_serves_within_sagemakers_shared_memory(built_repository: Path):
    """container/compose.shm.yml: the 64 MB of /dev/shm users report on SageMaker endpoints.

    Every step of the ensemble is a Python-backend model under the stand-in image (guard,
    DALI and TensorFlow stand-ins), each with the serve script's 16 MB region: warmup and
    a request of four photos must cross all three. The stand-ins spend shared memory the
    real image does not (DALI's and TensorFlow's tensors stay inside the server there; only
    the guard crosses into a Python stub), so a larger request failing here (seen: 16
    photos need DALI's region to grow past 16 MB, "No space left on device") says nothing
    about production; docs/gpu.md says so.
    """
    shm = CHECKOUT / "container" / "compose.shm.yml"
    files = [*support.SIM_COMPOSE_FILES, shm]
    engine = support.sim_engine(built_repository, free_port(), compose_files=files)
    engine.start()
    try:
        engine.wait_ready(READY_TIMEOUT)
        assert container_of(engine).attrs["HostConfig"]["ShmSize"] == 64 << 20
        photos = [photo_jpeg(name) for name in ("chelsea", "coffee", "astronaut", "rocket")]
        request = encode_request(photos)
        rows = decode_response(*_post(engine.url, request.body, request.content_type))
        again = decode_response(*_post(engine.url, request.body, request.content_type))
        assert rows.shape == (4, 1001)
        np.testing.assert_allclose(rows, again, atol=1e-5)
    finally:
        engine.stop()
    assert support.leftovers(engine.project) == {"containers": [], "networks": []}


def _answer_parts(result: Any) -> tuple[bytes, str]:
    return result.body, result.content_type


def dali_stub(container: Any) -> int:
    """The host pid of the container's DALI stand-in stub process."""
    top = container.top(ps_args="-eo pid,args")
    pid_col = top["Titles"].index("PID")
    [pid] = [
        int(row[pid_col])
        for row in top["Processes"]
        if "triton_python_backend_stub" in " ".join(row) and "/dali/" in " ".join(row)
    ]
    return pid


def test_container_killed_mid_request_is_a_clear_error_not_a_retry(engine: DockerEngine):
    container = container_of(engine)
    stub = dali_stub(container)
    idle = cpu_ticks(stub)
    request = encode_request([photo_jpeg("astronaut")] * 64)
    thread, outcome = send_in_background(engine.url, request)
    until(lambda: cpu_ticks(stub) > idle + 5, timeout=60)  # the server works on it
    container.kill(signal="SIGKILL")
    thread.join(60)
    assert not thread.is_alive()
    [error] = outcome
    assert isinstance(error, InvocationError), error
    assert "lost during the request" in str(error) and "not retried" in str(error)
    until(lambda: engine.health_problem() == "the container exited")


# --- a missing image: the ECR login, then a clear offline error ---------------------------


def test_a_missing_image_logs_in_to_ecr_then_fails_clearly_offline():
    engine = DockerEngine(image=ECR_IMAGE, profile="cpu", compose_files=[])
    ecr, stubber = stubbed_ecr()
    with stubber, pytest.raises(EngineError) as info:
        engine.ensure_image(ecr=ecr)
    stubber.assert_no_pending_responses()  # GetAuthorizationToken was called
    message = str(info.value)
    assert message.startswith(f"{ECR_IMAGE} is not on this machine and ")
    assert "docker login to https://763104351884.dkr.ecr.us-west-2.amazonaws.com" in message
    assert "make sim-image" in (info.value.hint or "")
    assert "Traceback" not in message and len(message.splitlines()) == 1
