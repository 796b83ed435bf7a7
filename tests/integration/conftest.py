"""The endpoint under test: each engine (native, docker) on the built repository, or
TRITONSHIP_URL.

``endpoint`` is parametrized over the engines, so every test that uses it (or ``runtime``)
runs against the native tritonserver and against the stand-in of the SageMaker image under
Docker Compose. TRITONSHIP_TEST_ENGINES (default ``native,docker``) narrows the list. The
Docker variant is skipped, with the reason printed, where no engine or image is available;
in CI (CI=true) it fails instead. The bench and the soak run against the native engine only
(they measure the client and the server, which are the same in both).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import docker as docker_support
from tritonship.local.engine import Engine, free_port
from tritonship.local.native import NativeEngine
from tritonship.local.runtime_proxy import RuntimeProxy
from tritonship.paths import DEFAULT_REPOSITORY
from tritonship.sagemaker.settings import packaged_env


@dataclass(frozen=True)
class Endpoint:
    """Where the tests send requests, and the repository the server was built from."""

    url: str
    repository: Path
    metrics_url: str | None = None
    engine: Engine | None = None


def _engines() -> list[str]:
    """The engines ``endpoint`` runs: one "url" with TRITONSHIP_URL, else the chosen ones."""
    if os.environ.get("TRITONSHIP_URL"):
        return ["url"]
    chosen = os.environ.get("TRITONSHIP_TEST_ENGINES", "native,docker")
    return [name.strip() for name in chosen.split(",") if name.strip()]


#: Tests that run against the native engine only (they would only repeat themselves).
NATIVE_ONLY = ("test_bench.py", "test_soak.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the Docker variants of the bench and the soak."""
    keep, dropped = [], []
    for item in items:
        engine = getattr(item, "callspec", None) and item.callspec.params.get("endpoint")
        native_only = item.path.name in NATIVE_ONLY
        (dropped if engine == "docker" and native_only else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session", params=_engines())
def endpoint(
    request: pytest.FixtureRequest,
    built_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Endpoint]:
    """Start one engine for the session (always stopped), or use TRITONSHIP_URL.

    With TRITONSHIP_URL (any endpoint of this repository), TRITONSHIP_REPO names the
    repository it serves (default: the checkout's) and TRITONSHIP_METRICS_URL its metrics.
    """
    if request.param == "url":
        repo = Path(os.environ.get("TRITONSHIP_REPO", DEFAULT_REPOSITORY))
        url = os.environ["TRITONSHIP_URL"]
        yield Endpoint(url.rstrip("/"), repo, os.environ.get("TRITONSHIP_METRICS_URL"))
        return
    if request.param == "docker":
        yield from _docker_endpoint(built_repository)
        return
    yield from _native_endpoint(built_repository, tmp_path_factory.mktemp("native-run"))


METRICS_OVERRIDE = Path(__file__).parents[1] / "support" / "compose.metrics.yml"


def _docker_endpoint(repo: Path) -> Iterator[Endpoint]:
    """The stand-in of the SageMaker image under Compose, with metrics published."""
    docker_support.require_docker()
    metrics_port = free_port()
    files = [*docker_support.SIM_COMPOSE_FILES, METRICS_OVERRIDE]
    engine = docker_support.sim_engine(repo, free_port(), compose_files=files)
    docker_support.SESSION_PROJECTS.add(engine.project)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITONSHIP_TEST_METRICS_PORT", str(metrics_port))
        try:
            engine.start()
            engine.wait_ready(300)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            yield Endpoint(engine.url, repo, metrics, engine)
        finally:
            engine.stop()
    assert docker_support.leftovers(engine.project) == {"containers": [], "networks": []}


def _native_endpoint(repo: Path, run_dir: Path) -> Iterator[Endpoint]:
    metrics_port = free_port()
    env = {
        **packaged_env(repo).values,
        "SAGEMAKER_TRITON_ALLOW_METRICS": "true",
        "SAGEMAKER_TRITON_METRICS_PORT": str(metrics_port),
    }
    engine = NativeEngine(repo, port=free_port(), sagemaker_env=env, run_dir=run_dir)
    with engine:
        yield Endpoint(engine.url, repo, f"http://127.0.0.1:{metrics_port}/metrics", engine)


@pytest.fixture(autouse=True)
def _no_container_left_behind() -> Iterator[None]:
    """A test that leaves a tritonship container behind fails, naming it, and it is removed.

    ``.ci/run`` checks the same at the end of the run; this says which test it was.
    """
    if docker_support.unavailable_reason() is not None:
        yield
        return
    before = set(docker_support.tritonship_containers())
    yield
    left = {
        cid: what
        for cid, what in docker_support.tritonship_containers().items()
        if cid not in before
    }
    if left:
        docker_support.remove_containers(list(left))
        pytest.fail(f"the test left containers behind: {'; '.join(left.values())}")


def _is_docker_test(nodeid: str) -> bool:
    return "[docker" in nodeid or "test_docker.py" in nodeid


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say whether the Docker-engine tests ran, and if not, why (never silently)."""
    outcomes: dict[str, set[str]] = {}
    for key in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(key, []):
            nodeid = getattr(report, "nodeid", "")
            if _is_docker_test(nodeid):
                outcomes.setdefault(key, set()).add(nodeid)
    if not outcomes:
        return
    counts = ", ".join(f"{len(ids)} {key}" for key, ids in outcomes.items())
    reason = docker_support.unavailable_reason()
    why = f" (skipped because {reason})" if "skipped" in outcomes and reason else ""
    terminalreporter.write_line(f"tritonship: Docker-engine tests: {counts}{why}")


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


# --- endpoint mode: TRITONSHIP_ENDPOINT=NAME make test-endpoint ----------------------------
#: The SageMaker endpoint the ``live_endpoint`` tests invoke through boto3 (after promote).
LIVE_ENDPOINT = os.environ.get("TRITONSHIP_ENDPOINT", "")


@pytest.hookimpl(tryfirst=True)  # before any fixture (and so any server) is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In endpoint mode, run only the ``live_endpoint`` tests; say why each other one skips."""
    if not LIVE_ENDPOINT or item.get_closest_marker("live_endpoint"):
        return
    if "endpoint" in getattr(item, "fixturenames", ()):
        pytest.skip(
            f"needs the container port, which SageMaker endpoint {LIVE_ENDPOINT} does not "
            "expose (TRITONSHIP_ENDPOINT is set)"
        )
    pytest.skip(f"does not invoke an endpoint (TRITONSHIP_ENDPOINT={LIVE_ENDPOINT} is set)")
