"""The container's paths, set up for real in private user and mount namespaces.

Each test runs a small script under ``unshare --user --map-root-user --mount`` that applies a
:class:`~tritonship.local.mounts.PathPlan` and reports what it sees as JSON; the host's
folders are checked afterwards to be exactly as before. Skipped (with the reason) where the
OS refuses these namespaces; the engine then falls back to host paths
(tests/unit/local/test_native_paths.py).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tritonship.local import mounts

NAMESPACES = ("unshare", "--user", "--map-root-user", "--mount")

#: Applies the plan given as JSON in argv[1], then reports what the namespace sees.
REPORT = textwrap.dedent(
    """
    import errno, json, os, sys
    from pathlib import Path
    from tritonship.local import mounts

    plan = json.loads(sys.argv[1])
    warnings = mounts.apply(mounts.PathPlan.from_args(plan["binds"], plan["dirs"]))
    report = {"warnings": warnings, "seen": {}, "read_only": {}, "made": []}
    for path in plan["look"]:
        p = Path(path)
        report["seen"][path] = (
            os.readlink(p) if p.is_symlink()
            else sorted(os.listdir(p)) if p.is_dir() else p.read_text() if p.is_file() else None
        )
    for target in [target for _, target in plan["binds"]]:
        try:
            (Path(target) / "written").write_text("x")
            report["read_only"][target] = False
        except OSError as err:
            report["read_only"][target] = err.errno == errno.EROFS
    for path in plan.get("make", []):
        Path(path).mkdir()
        report["made"].append(Path(path).is_dir())
    if plan.get("drop_locked"):
        target = plan["binds"][0][1]
        try:
            mounts.mount(None, target, None, mounts.MS_REMOUNT | mounts.MS_BIND | mounts.MS_RDONLY)
            report["drop_locked"] = "allowed"
        except OSError as err:
            report["drop_locked"] = errno.errorcode[err.errno]
    print(json.dumps(report))
    """
)


@functools.cache
def refused() -> str | None:
    """Why these namespaces cannot be used here, or None."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run([*NAMESPACES, "true"], capture_output=True, text=True, check=False)
    return probe.stderr.strip() or None if probe.returncode else None


@pytest.fixture(autouse=True)
def _namespaces():
    if refused():
        pytest.skip(f"user and mount namespaces are refused here: {refused()}")


def in_namespace(plan: dict, outer_setup: str = "") -> dict:
    """Run REPORT on ``plan`` in new namespaces.

    ``outer_setup``: shell commands run first in enclosing namespaces of their own.
    """
    command = [*NAMESPACES, sys.executable, "-c", REPORT, json.dumps(plan)]
    if outer_setup:
        command = [*NAMESPACES, "sh", "-c", f"{outer_setup} && exec {shlex.join(command)}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def snapshot(folder: Path) -> list[str]:
    """Every path under ``folder``, to compare the host before and after."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    """A stand-in for /opt: a folder, a file and a link, and a repository elsewhere."""
    opt = tmp_path / "opt"
    (opt / "venv" / "bin").mkdir(parents=True)
    (opt / "venv" / "bin" / "python").write_text("interpreter")
    (opt / "notes.txt").write_text("kept")
    (opt / "link").symlink_to("venv")
    repo = tmp_path / "repo" / "sm_model"
    repo.mkdir(parents=True)
    (repo / "config.pbtxt").write_text('name: "sm_model"')
    return tmp_path


def test_paths_appear_read_only_and_the_host_is_untouched(host: Path):
    opt, repo = host / "opt", host / "repo"
    (host / "tmp-like").mkdir()
    plan = {
        "binds": [[str(repo), str(opt / "ml" / "model")], [str(repo), str(opt / "ml" / "models")]],
        "dirs": [str(host / "tmp-like" / "sagemaker")],
        "look": [
            str(opt),
            str(opt / "ml" / "model"),
            str(opt / "ml" / "models" / "sm_model" / "config.pbtxt"),
            str(opt / "venv" / "bin" / "python"),
            str(opt / "notes.txt"),
            str(opt / "link"),
            str(host / "tmp-like"),
        ],
        "make": [str(opt / "ml" / "extra")],
    }
    before = snapshot(host)
    report = in_namespace(plan)
    seen = report["seen"]
    assert seen[str(opt)] == ["link", "ml", "notes.txt", "venv"], "the parent keeps its entries"
    assert seen[str(opt / "ml" / "model")] == ["sm_model"]
    assert seen[str(opt / "ml" / "models" / "sm_model" / "config.pbtxt")] == 'name: "sm_model"'
    assert seen[str(opt / "venv" / "bin" / "python")] == "interpreter"
    assert seen[str(opt / "notes.txt")] == "kept" and seen[str(opt / "link")] == "venv"
    assert seen[str(host / "tmp-like")] == ["sagemaker"]
    assert all(report["read_only"].values()), report["read_only"]
    assert report["made"] == [True] and report["warnings"] == []
    assert snapshot(host) == before, "nothing was created, written or removed on the host"


def test_an_existing_target_is_bound_over_not_changed(host: Path):
    target = host / "opt" / "model"
    target.mkdir()
    (target / "host-file").write_text("host")
    plan = {"binds": [[str(host / "repo"), str(target)]], "dirs": [], "look": [str(target)]}
    before = snapshot(host)
    report = in_namespace(plan)
    assert report["seen"][str(target)] == ["sm_model"]
    assert snapshot(host) == before


def test_a_read_only_bind_keeps_the_locked_flags_of_its_source(host: Path):
    """A source on a nosuid,nodev,noexec mount of a more privileged namespace: the remount
    must keep those flags (statvfs), else the kernel refuses it (EPERM)."""
    locked = host / "locked"
    locked.mkdir()
    target = host / "opt" / "ml" / "model"
    plan = {
        "binds": [[str(locked / "src"), str(target)]],
        "dirs": [],
        "look": [str(target)],
        "drop_locked": True,
    }
    # An outer namespace mounts the flagged tmpfs; the inner one (the plan's) inherits it locked.
    outer = (
        f"mount -t tmpfs -o nosuid,nodev,noexec tmpfs {shlex.quote(str(locked))} "
        f"&& mkdir {shlex.quote(str(locked / 'src'))} "
        f"&& touch {shlex.quote(str(locked / 'src' / 'file'))}"
    )
    report = in_namespace(plan, outer)
    assert report["seen"][str(target)] == ["file"]
    assert report["read_only"][str(target)] is True
    assert report["drop_locked"] == "EPERM", "the test's source must really be locked"


def test_a_private_directory_is_empty_even_where_the_host_has_one(host: Path):
    """As ``mkdir -p /tmp/sagemaker`` in a fresh container: empty, whatever the host holds."""
    existing = host / "tmp-like" / "sagemaker"
    existing.mkdir(parents=True)
    (existing / "host-model").mkdir()
    plan = {"binds": [], "dirs": [str(existing)], "look": [str(existing)]}
    before = snapshot(host)
    assert in_namespace(plan)["seen"][str(existing)] == []
    assert snapshot(host) == before


def test_a_missing_source_fails_the_setup(host: Path):
    plan = {"binds": [[str(host / "absent"), str(host / "opt" / "ml" / "model")]], "dirs": []}
    command = [*NAMESPACES, sys.executable, "-c", REPORT, json.dumps({**plan, "look": []})]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "is not a directory" in result.stderr
    assert not (host / "opt" / "ml").exists()


def test_the_plan_travels_as_wrapper_arguments():
    plan = mounts.PathPlan(
        ((Path("/r"), Path("/opt/ml/model")), (Path("/m"), Path("/opt/ml/models"))),
        (Path("/tmp/sagemaker"),),
    )
    args = plan.args()
    assert args == [
        "--mkdir",
        "/tmp/sagemaker",
        "--bind-ro",
        "/r",
        "/opt/ml/model",
        "--bind-ro",
        "/m",
        "/opt/ml/models",
    ]
    binds = [args[i + 1 : i + 3] for i, a in enumerate(args) if a == "--bind-ro"]
    assert mounts.PathPlan.from_args(binds, ["/tmp/sagemaker"]) == plan


def test_locked_flags_follow_statvfs(monkeypatch):
    class Result:
        f_flag = os.ST_NOSUID | os.ST_NODEV | os.ST_RELATIME | os.ST_RDONLY

    monkeypatch.setattr(mounts.os, "statvfs", lambda _: Result)
    assert mounts.locked_flags("/x") == mounts.MS_NOSUID | mounts.MS_NODEV | mounts.MS_RELATIME
    Result.f_flag = os.ST_NOEXEC  # strictatime: neither noatime nor relatime
    assert mounts.locked_flags("/x") == mounts.MS_NOEXEC | mounts.MS_STRICTATIME
