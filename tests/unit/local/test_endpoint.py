"""The serving policy of :class:`LocalEndpoint` with a fake engine: no server, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonship.artifact.timings import read_timing
from tritonship.errors import TritonshipError, render
from tritonship.local.endpoint import LocalEndpoint, ServeOptions, stop_detached
from tritonship.local.engine import Engine, EngineError
from tritonship.repository.config import Repository

STUB_DIED = "1 backend stub process(es) died"


class FakeEngine:
    """An :class:`Engine` whose health follows a script, one entry per health check.

    Entries: None (healthy), a problem string (runs but unhealthy), "die" (the server
    exits), "ctrl-c" (the user presses Ctrl-C), "fail-restart" (the next start fails).
    """

    url = "http://127.0.0.1:1"
    log_location = "/var/fake/server.log"

    def __init__(self, script: list[str | None] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[str] = []
        self.alive = False
        self.fail_start = False

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise EngineError("the server exited before it was ready")
        self.alive = True

    def wait_ready(self, timeout: float) -> float:
        self.calls.append("wait_ready")
        return 1.5

    def is_alive(self) -> bool:
        return self.alive

    def health_problem(self) -> str | None:
        event = self.script.pop(0) if self.script else "die"
        if event == "ctrl-c":
            raise KeyboardInterrupt
        if event == "fail-restart":
            self.fail_start, event = True, STUB_DIED
        if event == "die":
            self.alive = False
        return "the server exited" if not self.alive else event

    def logs(self, n: int = 50) -> str:
        return "E0101 the last log line"

    def stop(self) -> None:
        self.calls.append("stop")
        self.alive = False


def _opened(engine: FakeEngine) -> LocalEndpoint:
    as_engine: Engine = engine  # the fake satisfies the protocol
    endpoint = LocalEndpoint(as_engine, runtime_port=None)
    endpoint.start(timeout=5)
    engine.calls.clear()
    return endpoint


def _factory(engine: FakeEngine, seen: list[Path]):
    def make(options: ServeOptions, repository: Path, loaded: Repository | None) -> Engine:
        assert loaded is None or loaded.root == repository, "the configs of what is served"
        seen.append(repository)
        return engine

    return make


def test_open_refuses_an_invalid_repository_before_any_engine_starts(repo_copy: Path):
    (repo_copy / "inception_graphdef/config.pbtxt").write_text("max_batch_size: -", "utf-8")
    engine, seen = FakeEngine(), []
    options = ServeOptions(repo=repo_copy, runtime_port=0)
    with pytest.raises(TritonshipError) as refused:
        LocalEndpoint.open(options, engines=_factory(engine, seen))
    message = str(refused.value)
    assert message.startswith(f"{repo_copy} has ") and "inception_graphdef" in message
    assert "tritonship validate" in message
    assert seen == [] and engine.calls == [], "no engine was made, none started"


def test_open_starts_the_engine_and_reports_readiness(staged_repository: Path):
    engine, seen = FakeEngine(), []
    options = ServeOptions(repo=staged_repository, runtime_port=0, timeout=7)
    statuses: list[str] = []

    def status(text: str):
        from contextlib import nullcontext

        statuses.append(text)
        return nullcontext()

    endpoint = LocalEndpoint.open(options, status=status, engines=_factory(engine, seen))
    assert seen == [staged_repository] and engine.calls == ["start", "wait_ready"]
    assert endpoint.ready_seconds == 1.5 and endpoint.runtime is None
    assert statuses == [f"waiting for {engine.url}/ping (up to 7 s)"]
    assert endpoint.describe()[-1] == "server log: /var/fake/server.log"


def test_open_serves_an_archive_unpacked_into_the_run_folder(
    packaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    engine, seen, said = FakeEngine(), [], []
    options = ServeOptions(archive=packaged.archive, runtime_port=0)
    LocalEndpoint.open(options, say=said.append, engines=_factory(engine, seen))
    [repository] = seen
    assert repository.is_relative_to(tmp_path / "run" / "archives")
    assert (repository / "inception_graphdef/config.pbtxt").is_file()
    assert said[0] == f"serving the unpacked archive {packaged.archive} from {repository}"
    # How long the unpack and the load took, recorded for promote's preflight.
    assert said[1].startswith(f"{packaged.archive}: unpacked in ")
    assert ", loaded in 1.5 s (native engine)" in said[1]
    timing = read_timing(packaged.sha256, tmp_path / "run")
    assert timing is not None and timing.load_seconds == 1.5 and timing.unpack_seconds >= 0
    LocalEndpoint.open(options, say=said.append, engines=_factory(engine, seen))
    assert f"unpacked earlier, in {timing.unpack_seconds:.1f} s" in said[-1]  # the first run's
    assert read_timing(packaged.sha256, tmp_path / "run").unpack_seconds == timing.unpack_seconds


def test_a_failed_start_stops_what_started(staged_repository: Path):
    engine = FakeEngine()
    engine.fail_start = True
    options = ServeOptions(repo=staged_repository, runtime_port=0)
    with pytest.raises(EngineError):
        LocalEndpoint.open(options, engines=_factory(engine, []))
    assert engine.calls == ["start", "stop"]


def test_a_stop_that_fails_after_a_failed_start_is_noted_not_raised(staged_repository: Path):
    """The user reads why the start failed first, and that something may be left running."""
    engine = FakeEngine()
    engine.fail_start = True

    def stop() -> None:
        engine.calls.append("stop")
        raise EngineError("could not remove container c1 of Compose project p")

    engine.stop = stop  # type: ignore[method-assign]
    options = ServeOptions(repo=staged_repository, runtime_port=0)
    with pytest.raises(EngineError) as info:
        LocalEndpoint.open(options, engines=_factory(engine, []))
    assert engine.calls == ["start", "stop"]
    first, *below = render(info.value).splitlines()
    assert first == "the server exited before it was ready"
    assert below == [
        "stopping what had started failed too: could not remove container c1 of Compose project p"
    ]


def test_serve_forever_returns_1_with_the_log_tail_when_the_server_dies():
    engine, said = FakeEngine([None, None, "die"]), []
    assert _opened(engine).serve_forever(said.append, interval=0) == 1
    assert said == ["the server exited:\nE0101 the last log line"]
    assert engine.calls == ["stop"] and engine.script == []


def test_serve_forever_restarts_an_unhealthy_server():
    engine, said = FakeEngine([None, STUB_DIED, None, "die"]), []
    assert _opened(engine).serve_forever(said.append, interval=0) == 1
    assert said[0] == f"{STUB_DIED}: restarted the server (as SageMaker replaces an instance)"
    assert said[1].startswith("the server exited:")
    assert engine.calls == ["stop", "start", "wait_ready", "stop"]


def test_ctrl_c_stops_cleanly_and_returns_0():
    engine, said = FakeEngine([None, "ctrl-c"]), []
    assert _opened(engine).serve_forever(said.append, interval=0) == 0
    assert said == ["stopping ..."] and engine.calls == ["stop"]


def test_a_failed_restart_stops_everything_and_raises():
    engine = FakeEngine(["fail-restart"])
    with pytest.raises(EngineError):
        _opened(engine).serve_forever(lambda _: None, interval=0)
    assert engine.calls == ["stop", "start", "stop"] and not engine.alive


def test_heal_restarts_only_a_running_unhealthy_server():
    engine = FakeEngine([None, STUB_DIED, "die"])
    endpoint = _opened(engine)
    assert endpoint.heal() is None and engine.calls == []
    assert endpoint.heal() == STUB_DIED and engine.calls == ["stop", "start", "wait_ready"]
    assert endpoint.heal() is None, "a dead server is not healed"


def test_stop_detached_with_nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path))
    assert stop_detached("native") == ["no native server is running"]


def test_engines_say_where_their_log_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tritonship.local.docker import DockerEngine
    from tritonship.local.native import NativeEngine

    native = NativeEngine(tmp_path, port=18080, run_dir=tmp_path / "run")
    assert native.log_location == str(tmp_path / "run" / "server.log")
    docker = DockerEngine(tmp_path, port=18080, image="img:1", profile="cpu")
    assert " -p tritonship -f " in docker.log_location  # the command the engine itself runs
    assert docker.log_location.endswith(" --profile cpu logs triton-cpu")
    monkeypatch.setattr(DockerEngine, "is_alive", lambda self: False)
    assert docker.health_problem() == "the container exited"
    monkeypatch.setattr(DockerEngine, "is_alive", lambda self: True)
    assert docker.health_problem() is None


def test_a_multi_model_endpoint_needs_no_repository(tmp_path: Path, monkeypatch):
    """The serve script never reads /opt/ml/model in multi-model mode: nothing to validate."""
    from tritonship.sagemaker.settings import EnvSources

    monkeypatch.setenv("TRITONSHIP_RUN_DIR", str(tmp_path / "run"))
    engine, seen = FakeEngine(), []
    options = ServeOptions(
        repo=tmp_path / "absent", runtime_port=0, env_sources=EnvSources(multi_model=True)
    )
    endpoint = LocalEndpoint.open(options, engines=_factory(engine, seen))
    assert seen == [tmp_path / "run" / "multi-model-no-model"] and seen[0].is_dir()
    assert endpoint.env is not None and endpoint.env.multi_model
