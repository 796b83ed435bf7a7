"""The endpoint under test: the native engine on the built repository, or TRITONSHIP_URL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine
from tritonship.local.runtime_proxy import RuntimeProxy
from tritonship.paths import DEFAULT_REPOSITORY, SAGEMAKER_ENV_FILE
from tritonship.sagemaker.serve import load_env_file


@dataclass(frozen=True)
class Endpoint:
    """Where the tests send requests, and the repository the server was built from."""

    url: str
    repository: Path
    metrics_url: str | None = None
    engine: NativeEngine | None = None


@pytest.fixture(scope="session")
def endpoint(
    built_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Endpoint]:
    """Start the native engine for the session (always stopped), or use TRITONSHIP_URL.

    With TRITONSHIP_URL (e.g. the Docker endpoint), TRITONSHIP_REPO names the repository it
    serves (default: the checkout's) and TRITONSHIP_METRICS_URL its metrics, if exposed.
    """
    url = os.environ.get("TRITONSHIP_URL")
    if url:
        repo = Path(os.environ.get("TRITONSHIP_REPO", DEFAULT_REPOSITORY))
        yield Endpoint(url.rstrip("/"), repo, os.environ.get("TRITONSHIP_METRICS_URL"))
        return
    yield from _native_endpoint(built_repository, tmp_path_factory.mktemp("native-run"))


def _native_endpoint(repo: Path, run_dir: Path) -> Iterator[Endpoint]:
    metrics_port = free_port()
    env = {
        **load_env_file(SAGEMAKER_ENV_FILE),
        "SAGEMAKER_TRITON_ALLOW_METRICS": "true",
        "SAGEMAKER_TRITON_METRICS_PORT": str(metrics_port),
    }
    engine = NativeEngine(repo, port=free_port(), sagemaker_env=env, run_dir=run_dir)
    with engine:
        yield Endpoint(engine.url, repo, f"http://127.0.0.1:{metrics_port}/metrics", engine)


RUNTIME_ENDPOINT = "tritonship-local"


@pytest.fixture(scope="session")
def runtime(endpoint: Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local SageMaker runtime in front of the endpoint; yields its base URL."""
    proxy = RuntimeProxy(
        endpoint.url,
        free_port(),
        endpoint_name=RUNTIME_ENDPOINT,
        run_dir=tmp_path_factory.mktemp("runtime"),
    )
    proxy.start()
    try:
        proxy.wait_ready()
        yield proxy.url
    finally:
        proxy.stop()
