"""``tritonship serve`` / ``stop`` as a user runs them: detach, stop, refusals, failed start."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tritonship import cli
from tritonship.local.engine import free_port
from tritonship.local.native import native_run_dir, read_state
from tritonship.local.runtime_proxy import recorded_runtime

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private run-state folder; whatever a test leaves running is stopped afterwards."""
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    yield native_run_dir()
    cli.main(["stop"])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        return b"tritonserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_detach_then_stop_leaves_nothing_behind(built_repository: Path, run_dir: Path, capsys):
    port, runtime_port = free_port(), free_port()
    assert (
        cli.main(
            [
                "serve",
                "--repo",
                str(built_repository),
                "--port",
                str(port),
                "--runtime-port",
                str(runtime_port),
                "--detach",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}/invocations" in out and "server log:" in out
    assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200
    state = read_state(run_dir)
    assert state is not None and alive(int(state["pid"]))

    assert (
        cli.main(
            [
                "serve",
                "--repo",
                str(built_repository),
                "--port",
                str(free_port()),
                "--runtime-port",
                str(free_port()),
                "--detach",
            ]
        )
        == 1
    )
    assert "already runs" in capsys.readouterr().err
    assert read_state(run_dir) == state, "a refused serve leaves the running one recorded"
    runtime = recorded_runtime()
    assert runtime is not None and runtime["port"] == runtime_port

    assert cli.main(["stop"]) == 0
    out = capsys.readouterr().out
    assert "stopped the native server" in out and "stopped the local SageMaker runtime" in out
    assert not alive(int(state["pid"]))
    assert recorded_runtime() is None
    assert b"tritonship.local.runtime" not in _cmdline(int(runtime["pid"]))
    assert not (run_dir / "server.json").exists()
    assert not [p for p in Path("/dev/shm").glob(f"{state['shm_prefix']}*")]
    assert cli.main(["stop"]) == 0
    assert "no native server is running" in capsys.readouterr().out


def test_busy_port_is_refused_clearly(built_repository: Path, run_dir: Path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(
            [
                "serve",
                "--repo",
                str(built_repository),
                "--port",
                str(port),
                "--runtime-port",
                str(free_port()),
            ]
        )
    assert code == 1
    err = capsys.readouterr().err
    assert f"port {port} is already in use" in err and "Traceback" not in err


def test_fresh_checkout_is_refused_before_starting(tmp_path: Path, run_dir: Path, capsys):
    tracked = subprocess.run(
        ["git", "ls-files", "model_repository"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in tracked:  # the repository as a fresh clone has it: configs, no artifacts
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CHECKOUT / rel, tmp_path / rel)
    repo = tmp_path / "model_repository"
    assert cli.main(["serve", "--repo", str(repo), "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert "no numeric version folder" in err and "tritonship build" in err
    assert read_state(run_dir) is None


def test_failed_start_shows_the_log_lines_that_explain_why(repo_copy: Path, run_dir: Path, capsys):
    (repo_copy / "inception_graphdef/1/model.graphdef").write_bytes(b"not a graph")
    code = cli.main(
        ["serve", "--repo", str(repo_copy), "--port", str(free_port()), "--timeout", "120"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "exited before it was ready" in err
    assert "DecodeError" in err or "inception_graphdef" in err
    assert read_state(run_dir) is None
    assert "tritonserver" in (run_dir / "server.log").read_text()
