"""``tritonship doctor``'s checks, one by one, with the machine's answers staged.

tests/integration/test_doctor.py runs the command itself: on this machine (a Docker engine
answers) and in a bare environment without Docker, and from the wheel without the extras.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.staged import stage_repository
from tritonship import cli
from tritonship.local import doctor
from tritonship.local.doctor import MISSING, OK, WARN, Check


def fake_proc(tmp_path: Path, comm: str, memlock: str) -> Path:
    """A /proc with one process: its name and its 'Max locked memory' line."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    entry = proc / "4242"
    entry.mkdir()
    (entry / "comm").write_text(f"{comm}\n")
    (entry / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        f"Max locked memory         {memlock}              {memlock}              bytes     \n"
    )
    return proc


@pytest.mark.parametrize(
    ("comm", "memlock", "expected"),
    [("dockerd", "8388608", "8388608"), ("dockerd", "unlimited", "unlimited"), ("sshd", "1", None)],
)
def test_dockerd_memlock_is_read_from_the_daemons_limits(tmp_path, comm, memlock, expected):
    assert doctor.dockerd_memlock(fake_proc(tmp_path, comm, memlock)) == expected


LOCAL_DOCKER = SimpleNamespace(api=SimpleNamespace(base_url="http+docker://localhost"))


@pytest.mark.parametrize(
    ("limit", "files", "status"),
    [
        ("8388608", "", WARN),
        ("8388608", "compose.local.yml:compose.sim.yml", OK),
        ("unlimited", "", OK),
        (None, "", "info"),
    ],
)
def test_memlock_override_is_needed_where_dockerd_cannot_lock(monkeypatch, limit, files, status):
    monkeypatch.setattr(doctor, "dockerd_memlock", lambda: limit)
    monkeypatch.setenv("TRITONSHIP_COMPOSE_FILES", files)
    check = doctor._memlock_check(LOCAL_DOCKER)
    assert check.status == status
    if status == WARN:
        assert "rlimit type 8" in check.detail
        assert "TRITONSHIP_COMPOSE_FILES=compose.local.yml" in check.fix


def clean_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_only_aws_region_warns_that_boto3_scripts_miss_it(monkeypatch, tmp_path):
    """The moto recipe's trap: boto3 reads AWS_DEFAULT_REGION, not AWS_REGION."""
    clean_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    check = doctor.region_check()
    assert check.status == WARN and "AWS_DEFAULT_REGION" in check.detail
    assert check.fix == "export AWS_DEFAULT_REGION=eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert doctor.region_check().status == OK


def test_no_region_and_no_credentials_say_how_to_set_them(monkeypatch, tmp_path):
    clean_aws(monkeypatch, tmp_path)
    region, credentials = doctor.region_check(), doctor.credentials_check()
    assert region.status == WARN and "AWS_DEFAULT_REGION" in region.fix
    assert credentials.status == WARN and "AWS_ACCESS_KEY_ID=testing" in credentials.fix
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    found = doctor.credentials_check()
    assert found.status == OK and "testing" not in found.detail, "never the values"


def test_a_local_endpoint_override_must_answer(monkeypatch, tmp_path):
    clean_aws(monkeypatch, tmp_path)
    assert doctor.endpoint_checks()[0].status == "info"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        [answering] = doctor.endpoint_checks()
    assert answering.status == OK and answering.name == "AWS_ENDPOINT_URL"
    [silent] = doctor.endpoint_checks()  # the listener is closed now
    assert silent.status == WARN and f"python -m moto.server -p {port}" in silent.fix
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "https://example.com")
    names = {c.name: c.status for c in doctor.endpoint_checks()}
    assert names["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "info"


def test_the_repository_check_reads_the_build_manifest(tmp_path):
    missing = doctor.repository_check(tmp_path / "nothing")
    assert missing.status == WARN and "make artifacts WEIGHTS=random" in missing.fix
    repo = stage_repository(tmp_path / "model_repository")
    staged = doctor.repository_check(repo)
    assert staged.status == WARN and "random weights" in staged.detail
    (repo / "dali" / "config.pbtxt").write_text("# edited\n")
    changed = doctor.repository_check(repo)
    assert changed.status == WARN and "dali/config.pbtxt" in changed.detail


def test_a_missing_dependency_is_an_essential_failure(monkeypatch):
    from packaging.requirements import Requirement

    needed = [Requirement("numpy>=1"), Requirement("no-such-package-here==1.0")]
    monkeypatch.setattr(doctor, "_requirements", lambda extra=None: needed)
    check = doctor.dependencies_check()
    assert check.status == MISSING and check.failed
    assert "no-such-package-here==1.0 (not installed)" in check.detail
    assert "make setup" in check.fix


def test_the_bench_extra_is_optional(monkeypatch):
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(
        doctor.importlib.util, "find_spec", lambda n: None if n == "aiohttp" else real(n)
    )
    check = doctor.bench_extra_check()
    assert check.status == WARN and not check.failed and "tritonship[bench]" in check.fix


def test_no_docker_engine_is_a_warning_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    checks = {c.name: c for c in doctor.docker_checks()}
    assert checks["docker engine"].status == WARN and "docker info" in checks["docker engine"].fix
    assert checks["stand-in image"].detail.startswith("not checked")
    assert not any(c.failed for c in checks.values())


@pytest.mark.parametrize(("essential_missing", "code"), [(False, 0), (True, 1)])
def test_doctor_exits_1_only_when_an_essential_is_missing(
    monkeypatch, capsys, essential_missing, code
):
    checks = [
        Check("python", "python", OK, "3.11", essential=True),
        Check("docker", "docker engine", WARN, "none answers", fix="install Docker"),
        Check("native", "tritonserver", MISSING if essential_missing else OK, "x", "fix it", True),
    ]
    monkeypatch.setattr(doctor, "run_checks", lambda repository: checks)
    assert cli.main(["doctor"]) == code
    out = capsys.readouterr().out
    assert "warn    docker engine: none answers" in out and "fix: install Docker" in out
    assert ("missing essentials: tritonserver" in out) is essential_missing
    assert cli.main(["doctor", "--json"]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is not essential_missing
    assert [c["name"] for c in report["checks"]] == ["python", "docker engine", "tritonserver"]
