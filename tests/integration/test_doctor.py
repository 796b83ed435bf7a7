"""``tritonship doctor`` as a user runs it: on this machine, and in a bare shell without Docker.

The third way, the wheel in a venv without the extras, is in test_install.py. Each check on
its own: tests/unit/test_doctor.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TRITONSHIP = Path(sys.executable).parent / "tritonship"


def doctor(env: dict[str, str], cwd: Path | None = None) -> tuple[int, dict]:
    done = subprocess.run(
        [str(TRITONSHIP), "doctor", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stderr == "" or "Traceback" not in done.stderr, done.stderr
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    done = subprocess.run([docker, "info"], capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def test_on_this_machine_the_essentials_are_there():
    code, checks = doctor(dict(os.environ))
    assert code == 0
    essentials = [c for c in checks.values() if c["essential"]]
    assert essentials and all(c["status"] == "ok" for c in essentials)
    if not docker_answers():
        if os.environ.get("CI") == "true":
            pytest.fail("CI has a Docker engine: doctor must find it")
        pytest.skip("no Docker engine answers here: the bare test covers that case")
    assert checks["docker engine"]["status"] == "ok"
    assert checks["compose"]["status"] == "ok"
    assert checks["memlock override"]["status"] in ("ok", "warn", "info")


def test_a_bare_shell_without_docker_gets_the_fixes_and_exit_0(tmp_path: Path):
    """PATH with the venv only (no docker, no docker-compose), DOCKER_HOST pointing nowhere,
    an empty HOME: no AWS configuration at all."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": str(TRITONSHIP.parent),
        "HOME": str(home),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TRITONSHIP_RUN_DIR": str(tmp_path / "run"),
    }
    code, checks = doctor(env, cwd=tmp_path)
    assert code == 0, "Docker, AWS and the repository are not essentials"
    assert checks["docker engine"]["status"] == "warn" and checks["docker engine"]["fix"]
    assert checks["compose"]["status"] == "warn", "neither docker compose nor docker-compose"
    assert checks["stand-in image"]["detail"].startswith("not checked")
    assert checks["credentials"]["status"] == "warn" and checks["region"]["status"] == "warn"
    assert checks["loopback confinement"]["status"] == "warn", "no unshare on this PATH"
    assert "--engine docker" in checks["loopback confinement"]["fix"]
