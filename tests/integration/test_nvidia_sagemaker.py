"""NVIDIA's own SageMaker acceptance tests, unmodified, against ``tritonship serve``.

``qa/L0_sagemaker/sagemaker_test.py`` (10 tests on ``sm_model``, an ONNX add/sub model) and
``sagemaker_multi_model_test.py`` (7 tests of the multi-model API, one of them on an
ensemble using the ``identity`` backend) are vendored unmodified under tests/qa
(tests/qa/SOURCE.md). The repositories are built once per session as
``qa/L0_sagemaker/test.sh`` builds them (tests/support/nvidia_qa.py), the server is started
with the CLI, as a user would, the model named through the new options only (``--env``, or
the exported variable), and each test file runs as test.sh runs it: ``python FILE CLASS`` in
its own folder, then its ``test_results.txt`` is checked as ``check_test_results`` does.

Parametrized over the engines like the ``endpoint`` fixture (TRITONSHIP_TEST_ENGINES): the
native engine, and Docker with the stand-in image (skipped with the reason where Docker or
the image is missing; a failure in CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import _engines
from tests.support import docker as docker_support
from tests.support import nvidia_qa
from tritonship.local.docker import SIM_IMAGE
from tritonship.local.engine import free_port

ENGINES = [engine for engine in _engines() if engine in ("native", "docker")]
#: What the Docker variant runs: the stand-in image with the overrides it needs here.
DOCKER_OPTIONS = ("--engine", "docker", "--profile", "cpu", "--image", SIM_IMAGE)
DOCKER_COMPOSE_FILES = "compose.local.yml:compose.sim.yml"
SERVE_TIMEOUT_SECONDS = 600
TEST_TIMEOUT_SECONDS = 300

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not ENGINES, reason="no engine chosen")]


@dataclass(frozen=True)
class QaRepositories:
    """test.sh's ``models`` folder in its single-model part and in its multi-model part."""

    single: Path
    multi: Path


@pytest.fixture(scope="session")
def qa_repositories(tmp_path_factory: pytest.TempPathFactory) -> QaRepositories:
    """Built once per session, for read-only use (NVIDIA's generators take about 1 s here)."""
    data = nvidia_qa.generate(tmp_path_factory.mktemp("nvidia-qa-data"))
    single = nvidia_qa.build_single_model(tmp_path_factory.mktemp("nvidia-qa-single"), data)
    multi = nvidia_qa.build_multi_model(tmp_path_factory.mktemp("nvidia-qa-multi"), data)
    return QaRepositories(single, multi)


def _clean_environ(run_dir: Path) -> dict[str, str]:
    """Our environment without SAGEMAKER_* variables, with a private run folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env["TRITONSHIP_RUN_DIR"] = str(run_dir)
    return env


def _tritonship(
    args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``tritonship ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tritonship.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Served:
    """A detached ``tritonship serve``: its port and what it printed."""

    port: int
    output: str


@contextlib.contextmanager
def served(engine: str, serve_args: list[str], env: dict[str, str]) -> Iterator[Served]:
    """``tritonship serve ... --detach`` on a free port; always ``tritonship stop`` after."""
    if engine == "docker":
        docker_support.require_docker()
        env = {**env, "TRITONSHIP_COMPOSE_FILES": DOCKER_COMPOSE_FILES}
    engine_args = list(DOCKER_OPTIONS) if engine == "docker" else ["--engine", "native"]
    port = free_port()
    args = ["serve", *engine_args, *serve_args, "--port", str(port), "--runtime-port", "0"]
    try:
        started = _tritonship([*args, "--detach"], env, SERVE_TIMEOUT_SECONDS)
        assert started.returncode == 0, f"serve failed:\n{started.stdout}\n{started.stderr}"
        yield Served(port, started.stdout)
    finally:
        stopped = _tritonship(["stop", "--engine", engine], env, SERVE_TIMEOUT_SECONDS)
        assert stopped.returncode == 0, stopped.stderr


def run_nvidia_test(tests: Path, script: str, test_class: str, env: dict[str, str]) -> dict:
    """``python SCRIPT CLASS`` in L0_sagemaker, as test.sh runs it; its test_results.txt."""
    folder = tests / "L0_sagemaker"
    result = subprocess.run(
        [sys.executable, script, test_class],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=TEST_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads((folder / "test_results.txt").read_text(encoding="utf-8"))


def _client_env(port: int, **extra: str) -> dict[str, str]:
    """The test's environment: test.sh's, with the port the server listens on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    return {**env, "SAGEMAKER_BIND_TO_PORT": str(port), **extra}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("named_by", ["--env", "exported"])
def test_nvidia_single_model_tests_pass(
    engine: str, named_by: str, qa_repositories: QaRepositories, tmp_path: Path
):
    """sagemaker_test.py SageMakerTest: 10 tests on sm_model, no file edited."""
    env = _clean_environ(tmp_path / "run")
    serve_args = ["--repo", str(qa_repositories.single)]
    if named_by == "--env":
        serve_args += ["--env", "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=sm_model"]
    else:
        env["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] = "sm_model"
    tests = nvidia_qa.copy_tests(tmp_path / "qa")
    started = time.monotonic()
    with served(engine, serve_args, env) as server:
        results = run_nvidia_test(
            tests, "sagemaker_test.py", "SageMakerTest", _client_env(server.port)
        )
    expected = {"total": nvidia_qa.UNIT_TEST_COUNT, "errors": 0, "failures": 0}
    assert results == expected, f"after {time.monotonic() - started:.0f} s"


@pytest.mark.parametrize("engine", ENGINES)
def test_nvidia_multi_model_tests_pass(
    engine: str, qa_repositories: QaRepositories, tmp_path: Path
):
    """sagemaker_multi_model_test.py SageMakerMultiModelTest: 7 tests, /opt/ml/models URLs."""
    env = _clean_environ(tmp_path / "run")
    # In multi-model mode serve ignores /opt/ml/model; tritonship still validates --repo,
    # so it gets the single-model folder (test.sh's models/ held sm_model there too).
    serve_args = [
        "--repo",
        str(qa_repositories.single),
        "--multi-model",
        "--models-dir",
        str(qa_repositories.multi),
        "--env",
        "SAGEMAKER_TRITON_LOG_VERBOSE=true",  # test.sh exports it for the MME run
    ]
    tests = nvidia_qa.copy_tests(tmp_path / "qa")
    with served(engine, serve_args, env) as server:
        client = _client_env(server.port, SAGEMAKER_MULTI_MODEL="true")
        results = run_nvidia_test(
            tests, "sagemaker_multi_model_test.py", "SageMakerMultiModelTest", client
        )
    expected = {"total": nvidia_qa.MULTI_MODEL_UNIT_TEST_COUNT, "errors": 0, "failures": 0}
    assert results == expected
