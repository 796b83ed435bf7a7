"""Confining the native server to loopback: the plan, without starting a server.

tests/integration/test_loopback.py reads the listening sockets of a real, confined server.
Where the namespaces are not permitted the engine fails closed: the probe is forced to fail
here (``unshare`` replaced by ``false``) and no server may be spawned.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tritonship.cli import main
from tritonship.errors import TritonshipError
from tritonship.local import confine
from tritonship.local.engine import free_port
from tritonship.local.mounts import PathPlan
from tritonship.local.native import NativeEngine

SERVE_LIKE = [
    "/x/tritonserver",
    "--allow-sagemaker=true",
    "--allow-http=false",
    "--model-control-mode=explicit",
    "--sagemaker-port=9090",
    "--allow-grpc=false",
    "--allow-metrics=true",
    "--metrics-port=9102",
    "--backend-config=python,shm-default-byte-size=16777216",
]


def test_listening_ports_follow_the_enabled_frontends():
    assert confine.listening_ports(SERVE_LIKE) == [9090, 9102]
    assert confine.listening_ports(["t", "--allow-sagemaker=true"]) == [8080, 8000]  # http on
    grpc = ["t", "--allow-http=false", "--allow-grpc=true", "--allow-metrics=false"]
    assert confine.listening_ports(grpc) == [8001]


def test_the_confined_command_forwards_each_port_then_runs_the_server():
    command = confine.confined_command(SERVE_LIKE, {9090: 5, 9102: 6}, attached=True)
    assert command[:6] == ["unshare", "--user", "--map-root-user", "--net", "--mount", "--"]
    assert command[6:9] == [sys.executable, "-m", "tritonship.local.confine"]
    assert command[9:14] == ["--forward", "5:9090", "--forward", "6:9102", "--die-with-parent"]
    assert command[14] == "--" and command[15:] == SERVE_LIKE
    detached = confine.confined_command(SERVE_LIKE, {9090: 5}, attached=False)
    assert "--die-with-parent" not in detached


def test_the_confined_command_carries_the_path_plan():
    plan = PathPlan(((Path("/host/repo"), Path("/opt/ml/model")),), (Path("/tmp/sagemaker"),))
    command = confine.confined_command(SERVE_LIKE, {9090: 5}, attached=False, paths=plan)
    wrapper = command[: command.index("--", 6)]
    assert wrapper[-5:] == ["--mkdir", "/tmp/sagemaker", "--bind-ro", "/host/repo", "/opt/ml/model"]
    args = confine._parser().parse_args(command[9:])
    assert PathPlan.from_args(args.bind_ro, args.mkdir) == plan
    assert args.command[1:] == SERVE_LIKE


def test_the_loopback_listener_binds_127_0_0_1_only():
    with confine.loopback_listener(0) as listener:
        host, _ = listener.getsockname()
        assert host == "127.0.0.1" and listener.get_inheritable()
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


@pytest.fixture()
def fresh_probe():
    """A probe that runs again, then is forgotten (it is cached per process)."""
    confine.unavailable_reason.cache_clear()
    yield confine.unavailable_reason
    confine.unavailable_reason.cache_clear()


def test_confinement_can_be_switched_off(monkeypatch, fresh_probe):
    monkeypatch.setenv(confine.DISABLE_VARIABLE, "0")
    assert fresh_probe() == f"{confine.DISABLE_VARIABLE}=0"


def test_the_probe_enters_every_namespace_the_server_needs(monkeypatch, fresh_probe):
    """The probe does the mounts itself: without a mount namespace it must fail, where a
    mere ``unshare ... true`` would pass."""
    monkeypatch.delenv(confine.DISABLE_VARIABLE, raising=False)
    if subprocess.run([*confine.UNSHARE, "true"], check=False).returncode != 0:
        pytest.skip("user, network and mount namespaces are refused here")
    assert fresh_probe() is None
    fresh_probe.cache_clear()
    monkeypatch.setattr(confine, "UNSHARE", ("unshare", "--user", "--map-root-user", "--net"))
    reason = fresh_probe()
    assert reason is not None and "Operation not permitted" in reason
    assert "mount namespaces are not permitted here" in reason


def test_the_banner_says_when_the_server_is_exposed(tmp_path):
    engine = NativeEngine(tmp_path, port=9090, run_dir=tmp_path / "run", confined=False)
    line = engine.exposure()
    assert not engine.confined and line.startswith("WARNING: tritonserver listens on ALL")
    assert "--engine docker (binds 127.0.0.1)" in line and "confined=False" in line


@pytest.fixture()
def refused_probe(monkeypatch, fresh_probe):
    """The probe forced to fail (as under AppArmor's restriction); spawning fails the test."""
    monkeypatch.delenv(confine.DISABLE_VARIABLE, raising=False)
    monkeypatch.setattr(confine, "UNSHARE", ("false",))

    def spawned(*args, **kwargs):
        raise AssertionError("a server was spawned on every interface")

    monkeypatch.setattr(NativeEngine, "_spawn", spawned)
    assert fresh_probe() is not None


def test_a_refused_probe_refuses_to_start(tmp_path, refused_probe):
    engine = NativeEngine(tmp_path, port=free_port(), run_dir=tmp_path / "run")
    with pytest.raises(TritonshipError, match="refusing to start tritonserver") as caught:
        engine.start()
    assert "not permitted here" in str(caught.value)
    assert "--bind-all" in caught.value.hint and "--engine docker" in caught.value.hint
    assert not engine.is_alive() and not (tmp_path / "run" / "server.json").exists()


def test_serve_refuses_in_one_line_with_the_way_out(staged_repository, refused_probe, capsys):
    argv = ["serve", "--repo", str(staged_repository), "--port", str(free_port())]
    assert main([*argv, "--runtime-port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tritonship: error: refusing to start tritonserver")
    assert "--bind-all" in err[-1] and "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("how", ["bind_all", "variable"])
def test_an_explicit_opt_out_serves_on_every_interface_and_says_so(
    tmp_path, refused_probe, monkeypatch, how
):
    if how == "variable":
        monkeypatch.setenv(confine.DISABLE_VARIABLE, "0")
    engine = NativeEngine(tmp_path, port=9090, run_dir=tmp_path / "run", bind_all=how == "bind_all")
    engine._refuse_unconfined()  # no refusal: the user asked for it
    line = engine.exposure()
    assert line.startswith("WARNING: tritonserver listens on ALL network interfaces")
    assert ("--bind-all" if how == "bind_all" else "TRITONSHIP_NATIVE_CONFINE=0") in line


def test_a_failing_confinement_step_is_one_line_with_a_hint(capsys):
    """The wrapper between unshare and tritonserver: no traceback in the server log."""
    with pytest.raises(SystemExit) as caught:
        confine.main(["--forward", "987:8080", "--", "/bin/true"])  # fd 987 is not open
    assert caught.value.code == confine.CONFINE_FAILED
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("tritonship: cannot confine tritonserver: taking over the host's")
    assert "--engine docker" in line and "--bind-all" in line


def test_the_probe_reports_a_loopback_it_cannot_bring_up(tmp_path, monkeypatch, capsys):
    def denied() -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(confine, "bring_loopback_up", denied)
    with pytest.raises(SystemExit):
        confine.probe(tmp_path)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "bringing loopback up failed: [Errno 1] Operation not permitted" in line


def test_the_banner_of_a_confined_server(tmp_path, monkeypatch):
    monkeypatch.setattr(confine, "unavailable_reason", lambda: None)
    engine = NativeEngine(tmp_path, port=9090, run_dir=tmp_path / "run")
    assert engine.confined and engine.exposure().startswith("listening on 127.0.0.1 only")


@pytest.mark.parametrize("argv", [["--forward", "3:80"], ["--forward", "3:80", "--"]])
def test_the_wrapper_needs_a_command(argv):
    with pytest.raises(SystemExit):
        confine.main(argv)
