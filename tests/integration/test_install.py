"""tritonship installed from its wheel, far from the checkout: validate, package, serve, stop.

The wheel is built offline from a copy of the sources and installed into a fresh venv
outside the checkout. To avoid minutes of dependency installs, that venv sees this venv's
third-party packages through a ``.pth`` file, by way of a folder of symlinks that leaves
out tritonship itself (its editable finder, its metadata) and the ``bench`` extra
(aiohttp, matplotlib): so only the wheel can provide ``import tritonship``, and the
commands are shown to work without the extra.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.clone import dependency_view
from tritonship.local.engine import free_port
from tritonship.local.process import runs

pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]
#: Not copied for the wheel build: environments, caches, built artifacts, run state.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".tritonship",
    "cache",
    "model_repository",
    "tests",
    "docs",
)
#: Hidden from the new venv: tritonship's editable install and the bench extra.
HIDDEN_PREFIXES = ("tritonship", "__editable__", "aiohttp", "matplotlib", "mpl_toolkits", "pylab")


@dataclass(frozen=True)
class Installed:
    """A venv outside the checkout with the wheel installed, and where to run it."""

    venv: Path
    site: Path
    work: Path
    state: Path
    wheel: Path

    def run(
        self, *args: str, timeout: float = 120, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed ``tritonship`` from ``work`` with a clean environment."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TRITONSHIP_", "XDG_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            XDG_STATE_HOME=str(self.state),
            XDG_CACHE_HOME=str(self.work.parent / "xdg-cache"),
            PATH=f"{self.venv / 'bin'}:{env.get('PATH', '')}",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        env.update(extra_env or {})
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` from a copy of the sources, offline (no build isolation, no index)."""
    source = tmp / "src"
    shutil.copytree(CHECKOUT, source, symlinks=True, ignore=NOT_SOURCES)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(tmp / "wheel"),
            str(source),
        ],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        check=True,
    )
    (wheel,) = (tmp / "wheel").glob("tritonship-*.whl")
    return wheel


def _dependency_view(tmp: Path, site: Path) -> None:
    """Let ``site`` see this venv's packages, except tritonship and the bench extra."""
    dependency_view(site, tmp / "deps", hidden=HIDDEN_PREFIXES)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built and installed into a fresh venv (about 10 s)."""
    tmp = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    _dependency_view(tmp, site)
    work, state = tmp / "work", tmp / "xdg-state"
    work.mkdir()
    box = Installed(venv, site, work, state, wheel)
    pip = box.run("python", "-m", "pip", "install", "--no-deps", "--no-index", str(wheel))
    assert pip.returncode == 0, pip.stderr
    return box


def test_the_wheel_holds_the_assets(installed: Installed):
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assets = "tritonship/assets"
    assert {
        f"{assets}/container/sagemaker.env",
        f"{assets}/container/docker-compose.yml",
        f"{assets}/container/compose.local.yml",
        f"{assets}/container/compose.sim.yml",
        f"{assets}/container/backends/dali/model.py",
        f"{assets}/container/backends/tensorflow/model.py",
        f"{assets}/container/backends/identity/model.py",
        f"{assets}/container/backends/identity/identity_helpers.py",
        f"{assets}/dali/pipeline.py",
        f"{assets}/models/inception_v3.py",
    } <= names
    assert not [n for n in names if "/cache/" in n or "__pycache__" in n]
    compose = zipfile.ZipFile(installed.wheel).read(f"{assets}/container/docker-compose.yml")
    assert compose == (CHECKOUT / "container" / "docker-compose.yml").read_bytes()


def test_the_installed_package_finds_everything_in_its_venv(installed: Installed):
    script = (
        "import json, tritonship, tritonship.paths as p, tritonship.sagemaker.settings as s\n"
        "from tritonship.assets.models import inception_v3\n"
        "print(json.dumps({'module': tritonship.__file__, 'checkout': str(p.checkout_root()),"
        " 'assets': [str(s.PACKAGED_ENV_FILE), str(p.COMPOSE_FILE), str(p.BACKEND_SOURCES),"
        " str(p.DALI_PIPELINE_SOURCE), inception_v3.__file__],"
        " 'repository': str(p.DEFAULT_REPOSITORY), 'run_dir': str(s.run_dir()),"
        " 'cache': str(p.models_cache())}))\n"
    )
    result = installed.run("python", "-c", script)
    assert result.returncode == 0, result.stderr
    where = json.loads(result.stdout)
    assert Path(where["module"]).is_relative_to(installed.site), "not the checkout's package"
    assert where["checkout"] == "None"
    for asset in where["assets"]:
        assert Path(asset).is_relative_to(installed.site / "tritonship" / "assets"), asset
        assert Path(asset).exists(), asset
    assert where["repository"] == "model_repository", "relative to the working directory"
    assert Path(where["run_dir"]) == installed.state / "tritonship"
    assert Path(where["cache"]) == installed.work.parent / "xdg-cache/tritonship/models"


@pytest.fixture()
def served(installed: Installed) -> Iterator[dict[str, int]]:
    """Whatever the test leaves running is stopped; nothing may survive it."""
    record: dict[str, int] = {}
    try:
        yield record
    finally:
        installed.run("tritonship", "stop", timeout=60)
        pid = record.get("pid")
        left = pid is not None and runs(pid, b"tritonserver")
        if left:  # its own session (start_new_session): the group holds the stubs too
            os.killpg(pid, signal.SIGKILL)
        assert not left, "the installed tritonship left a server running"


def test_validate_package_serve_and_stop_from_the_wheel(
    installed: Installed, built_repository: Path, served: dict[str, int]
):
    started = time.monotonic()
    repo = installed.work / "model_repository"
    shutil.copytree(built_repository, repo)

    validate = installed.run("tritonship", "validate", "--repo", str(repo))
    assert validate.returncode == 0, validate.stdout + validate.stderr

    out = installed.work.parent / "out" / "model.tar.gz"
    package = installed.run(
        "tritonship", "package", "--repo", str(repo), "--out", str(out), "--allow-random-weights"
    )
    assert package.returncode == 0, package.stdout + package.stderr
    assert out.is_file() and out.with_name("model.manifest.json").is_file()

    port = free_port()
    serve = installed.run(
        "tritonship",
        "serve",
        "--repo",
        str(repo),
        "--port",
        str(port),
        "--runtime-port",
        "0",
        "--detach",
        timeout=180,
    )
    assert serve.returncode == 0, serve.stdout + serve.stderr
    assert "ready in" in serve.stdout + serve.stderr
    state_file = installed.state / "tritonship" / "native" / "server.json"
    served["pid"] = json.loads(state_file.read_text())["pid"]
    assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200

    stop = installed.run("tritonship", "stop", timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert not runs(served["pid"], b"tritonserver"), "stop ended the server"
    assert not state_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/ping", timeout=5)
    assert not (installed.work / ".tritonship").exists(), "run state never lands in the cwd"
    assert not list(installed.venv.rglob(".tritonship")), "nor in the interpreter's folders"
    print(f"validate, package, serve and stop from the wheel: {time.monotonic() - started:.1f} s")


def test_bench_without_its_extra_says_how_to_install_it(installed: Installed):
    bench = installed.run("tritonship", "bench", "--url", "http://127.0.0.1:9", "--no-ceiling")
    assert bench.returncode == 1
    assert bench.stderr.count("\n") == 1, bench.stderr
    assert "pip install 'tritonship[bench]'" in bench.stderr


def test_doctor_from_the_wheel_without_extras_or_docker(installed: Installed, tmp_path: Path):
    """A venv with only the wheel and its required dependencies, and no Docker engine."""
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    result = installed.run("tritonship", "doctor", "--json", extra_env=nowhere)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "installed in" in checks["tritonship"]["detail"]
    assert checks["bench extra"]["status"] == "warn"
    assert "tritonship[bench]" in checks["bench extra"]["fix"]
    assert checks["docker engine"]["status"] == "warn"
    assert checks["tritonserver"]["status"] == "ok"
    assert checks["built repository"]["status"] == "warn", "no repository in the work folder"
