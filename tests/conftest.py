"""Shared fixtures: one built repository per test session (random weights, offline)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: NVIDIA's tests, vendored unmodified (tests/qa/SOURCE.md): run by
#: tests/integration/test_nvidia_sagemaker.py as test.sh runs them, never collected.
collect_ignore = ["qa"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-network", action="store_true", help="run tests marked network")


INTEGRATION = ROOT / "tests" / "integration"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
        if "moto_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)
    if config.getoption("--run-network") or os.environ.get("TRITONSHIP_NETWORK") == "1":
        return
    skip = pytest.mark.skip(reason="needs the network: pass --run-network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def built_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository built from the checkout with random weights (read-only use)."""
    from tritonship.repository.build import build_repository

    repo = tmp_path_factory.mktemp("built") / "model_repository"
    shutil.copytree(ROOT / "model_repository", repo)
    build_repository(repo, weights="random", progress=False)
    return repo


@pytest.fixture(scope="session")
def onnx_repository(built_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built repository converted once to ONNX (build --format onnx; read-only use)."""
    from tritonship.repository.build import build_repository

    repo = tmp_path_factory.mktemp("built-onnx") / "model_repository_onnx"
    build_repository(repo, weights="random", progress=False, fmt="onnx", source=built_repository)
    return repo


@pytest.fixture()
def repo_copy(built_repository: Path, tmp_path: Path) -> Path:
    """A private, mutable copy of the built repository."""
    dst = tmp_path / "model_repository"
    shutil.copytree(built_repository, dst)
    return dst


# --- packaging and a local AWS (moto) -----------------------------------------------------


@pytest.fixture(scope="session")
def packaged(built_repository: Path, tmp_path_factory: pytest.TempPathFactory):
    """The built repository packaged once per session (random weights allowed)."""
    from tritonship.artifact.package import package_repository

    out = tmp_path_factory.mktemp("dist") / "model.tar.gz"
    return package_repository(built_repository, out, allow_random_weights=True, progress=False)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory):
    """A moto server on a port the OS picked (read back from its log); always stopped."""
    from tests.support.aws import start_moto, stop_moto

    process, url = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield url
    finally:
        stop_moto(process)


@pytest.fixture()
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point boto3 at a freshly reset moto with fake credentials; never real ones."""
    from tests.support.aws import reset_moto

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    reset_moto(moto_server)
    return moto_server
