"""The native engine: the real tritonserver of the ``nvidia-pytriton`` wheel, no Docker.

The wheel ships tritonserver 2.51 with the SageMaker frontend and the Python backend, but
no DALI, TensorFlow, ONNX Runtime or identity backend. The engine assembles a backend
directory holding the wheel's Python backend plus the CPU stand-ins from
``container/backends`` (Python-based backends named ``dali``, ``tensorflow``,
``onnxruntime`` and ``identity``), and starts the server with the flags the SageMaker
image's ``serve`` script would use (:mod:`tritonship.sagemaker.serve`), so the unmodified
repository is served on ``/ping`` and ``/invocations``. A model whose backend has no
stand-in is refused before the server starts (:func:`native_gaps`).

The server runs in private user, network and mount namespaces
(:mod:`tritonship.local.confine`): reachable on 127.0.0.1 only, and seeing the container's
paths: the repository at ``/opt/ml/model``, in multi-model mode the models folder at
``/opt/ml/models`` and the dummy repository ``/tmp/sagemaker``, set up inside the namespace
and never on the host. Where the OS does not permit those namespaces (Ubuntu 24.04's
AppArmor restriction of unprivileged user namespaces, many containers), the engine fails
closed: it refuses to start rather than serve unauthenticated on every interface, unless the
user opts out explicitly (``bind_all``: ``serve --bind-all`` or ``TRITONSHIP_NATIVE_CONFINE=0``).
Then it runs on host paths and every interface, and :meth:`NativeEngine.exposure` says so.

Run state lives in ``<run_dir>``: ``backends/``, ``server.log`` and ``server.json`` (pid,
port), which lets ``tritonship stop`` find a server started with ``--detach``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tritonship.local import confine
from tritonship.local.engine import EngineError, PortInUseError, ensure_port_free, wait_for_ping
from tritonship.local.mounts import PathPlan
from tritonship.local.process import (
    children,
    die_with_parent,
    runs,
    tail,
    terminate,
    wait_gone,
)
from tritonship.paths import BACKEND_SOURCES, DEFAULT_REPOSITORY
from tritonship.sagemaker import settings
from tritonship.sagemaker.serve import (
    CONTAINER_MODEL_DIR,
    CONTAINER_MODELS_DIR,
    MULTI_MODEL_REPOSITORY,
    is_multi_model,
    serve_args,
    serve_env,
)
from tritonship.sagemaker.settings import SageMakerEnv, packaged_env, server_environ

if TYPE_CHECKING:
    from tritonship.repository.config import Repository

#: The CPU stand-ins of container/backends, one Python-based backend each.
STANDIN_BACKENDS = ("dali", "tensorflow", "onnxruntime", "identity")
#: Every backend the native engine runs: the stand-ins, the wheel's own Python backend and
#: the ensemble scheduler (part of the server core).
NATIVE_BACKENDS = frozenset({*STANDIN_BACKENDS, "python", "ensemble"})
#: Platforms whose backend has a stand-in that cannot load them.
UNSERVED_PLATFORMS = {"tensorflow_savedmodel": "the TensorFlow stand-in loads GraphDefs only"}
#: What the server sees as its multi-model dummy repository when paths cannot be mapped
#: (a folder of the run state, instead of creating /tmp/sagemaker on the host).
FALLBACK_MULTI_MODEL_REPOSITORY = "sagemaker-dummy-repository"
STATE_FILE = "server.json"
STUB_MARKER = b"triton_python_backend_stub"
LOG_FILE = "server.log"
#: How long a killed stub may take to be gone (SIGKILL is delivered, the exit takes a moment).
STUB_EXIT_SECONDS = 10.0
DEFAULT_READY_TIMEOUT = 180.0
#: Triton waits up to 30 s (--exit-timeout-secs) for in-flight requests after SIGINT.
DEFAULT_STOP_TIMEOUT = 40.0


@dataclass(frozen=True)
class TritonDistribution:
    """The tritonserver files inside the installed ``nvidia-pytriton`` wheel."""

    root: Path

    @classmethod
    def locate(cls) -> TritonDistribution:
        """Find ``pytriton/tritonserver`` without importing pytriton."""
        spec = importlib.util.find_spec("pytriton")
        if spec is None or spec.origin is None:
            raise EngineError(
                "the nvidia-pytriton wheel (it carries tritonserver) is not installed",
                hint="run make setup (pip install -e '.[dev]')",
            )
        dist = cls(Path(spec.origin).parent / "tritonserver")
        if not dist.server.is_file():
            raise EngineError(f"{dist.server} is missing", hint="reinstall nvidia-pytriton")
        return dist

    @property
    def server(self) -> Path:
        """The tritonserver executable."""
        return self.root / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        """The wheel's shared libraries (``nvidia_pytriton.libs``)."""
        return self.root.parent.parent / "nvidia_pytriton.libs"

    @property
    def python_backend(self) -> Path:
        """The Python backend (``libtriton_python.so``, ``triton_python_backend_utils.py``)."""
        return self.root / "backends" / "python"

    def stub(self, version: str) -> Path:
        """The Python backend stub built for Python ``version`` (``X.Y``)."""
        stub = self.root / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.is_file():
            raise EngineError(
                f"nvidia-pytriton has no Python backend stub for Python {version}",
                hint="use a Python version it supports (3.8 to 3.13)",
            )
        return stub


def stub_wrapper(stub: Path, library_path: str = "") -> str:
    """Return a shell script that runs ``stub`` as an embedded copy of this interpreter.

    The Python backend starts ``<backend-dir>/python/triton_python_backend_stub`` with the
    server's environment. Two things make the embedded Python this (venv) interpreter:
    this Python's own ``libpython`` first on LD_LIBRARY_PATH (else the loader may pick
    another build of the same X.Y, e.g. the system's 3.11.2 under a pyenv 3.11.7, whose
    missing symbols break ``import ssl``: ``undefined symbol: _PyModule_Add``), and this
    interpreter's ``bin`` first on PATH (the embedded Python looks ``python3`` up there,
    finds the venv's ``pyvenv.cfg`` and so imports numpy, TensorFlow and DALI from the
    venv). ``library_path`` is the caller's own LD_LIBRARY_PATH, kept after it; the
    server's ``nvidia_pytriton.libs`` entry is dropped.
    """
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if not (Path(libdir) / str(sysconfig.get_config_var("LDLIBRARY"))).is_file():
        libdir = ""  # a static interpreter: the stub uses the system's libpython X.Y
    bindir = str(Path(sys.executable).parent)
    return (
        "#!/bin/sh\n"
        "# Written by tritonship (native engine): the nvidia-pytriton stub for Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, run as {sys.executable}.\n"
        f"LD_LIBRARY_PATH={shlex.quote(':'.join(filter(None, [libdir, library_path])))}\n"
        f'PATH={shlex.quote(bindir)}:"$PATH"\n'
        "export LD_LIBRARY_PATH PATH\n"
        f'exec {shlex.quote(str(stub))} "$@"\n'
    )


def assemble_backends(target: Path, dist: TritonDistribution, sources: Path) -> Path:
    """Create ``target`` as a backend directory: the Python backend plus the stand-ins."""
    if target.exists():
        shutil.rmtree(target)
    python_dir = target / "python"
    python_dir.mkdir(parents=True)
    for item in dist.python_backend.iterdir():
        if item.is_file():  # copies: Triton refuses a backend library that "escapes" the dir
            shutil.copy2(item, python_dir / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    wrapper = python_dir / "triton_python_backend_stub"
    library_path = os.environ.get("LD_LIBRARY_PATH", "")
    wrapper.write_text(stub_wrapper(dist.stub(version), library_path), encoding="utf-8")
    wrapper.chmod(0o755)
    for name in STANDIN_BACKENDS:
        if not (sources / name / "model.py").is_file():
            raise EngineError(
                f"{sources / name / 'model.py'} is missing",
                hint="reinstall tritonship (in a checkout: git checkout container/backends)",
            )
        (target / name).symlink_to(sources.resolve() / name, target_is_directory=True)
    return target


@dataclass(frozen=True)
class NativeGap:
    """A model the native engine cannot run: no stand-in for its backend (or platform)."""

    model: str
    backend: str
    reason: str

    def __str__(self) -> str:
        """``model 'm' (backend 'pytorch': no CPU stand-in for it here)``."""
        return f"model '{self.model}' (backend '{self.backend}': {self.reason})"


def native_gaps(
    repository: Repository, env: SageMakerEnv | Mapping[str, str] | None = None
) -> list[NativeGap]:
    """The models of ``repository`` the native server would load but cannot run.

    In single-model mode with a default model (``env``), the server loads that model and,
    for an ensemble, its steps (transitively): only those count, as only those are loaded
    (``--load-model``). Otherwise every model of the repository counts. Configs that cannot
    be read are left to ``validate``.
    """
    values = env.values if isinstance(env, SageMakerEnv) else dict(env or {})
    models = repository.models
    default = values.get("SAGEMAKER_TRITON_DEFAULT_MODEL_NAME")
    names = list(models)
    if default and default in models and not is_multi_model(values):
        names = _loaded_models(models, default)
    return [gap for name in names if (gap := _gap(models[name])) is not None]


def _loaded_models(models: Mapping[str, Any], root: str) -> list[str]:
    """``root`` and the models its ensemble steps name, transitively (those in ``models``)."""
    seen: list[str] = []
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in models:
            continue
        seen.append(name)
        todo += [step.model_name for step in models[name].config.ensemble_scheduling.step]
    return seen


def _gap(model: Any) -> NativeGap | None:
    """Why the native engine cannot run ``model`` (a validate ``Model``), or None."""
    if model.config.platform in UNSERVED_PLATFORMS:
        return NativeGap(model.name, model.backend, UNSERVED_PLATFORMS[model.config.platform])
    if model.backend and model.backend not in NATIVE_BACKENDS:
        return NativeGap(model.name, model.backend, "no CPU stand-in for it here")
    return None


#: Where to serve a repository the native engine cannot run.
DOCKER_HINT = (
    "serve it with the SageMaker image instead: tritonship serve --engine docker; "
    "the repository itself is fine for SageMaker"
)


def refuse_gaps(repository: Repository, env: SageMakerEnv | Mapping[str, str] | None) -> None:
    """Raise :class:`EngineError` naming each model :func:`native_gaps` finds."""
    gaps = native_gaps(repository, env)
    if gaps:
        raise EngineError(
            f"the native engine cannot serve {', '.join(str(gap) for gap in gaps)}",
            hint=DOCKER_HINT,
        )


class ConfinementRefused(EngineError):
    """The server cannot be kept off the network here, and the user did not opt out."""


#: How to get out of a refusal, most contained first.
CONFINEMENT_HINT = (
    "use --engine docker (it binds 127.0.0.1), allow unprivileged user namespaces (Ubuntu "
    "24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
    "for python), or accept a server on every interface with --bind-all "
    f"(or {settings.CONFINE_VARIABLE}=0)"
)


class NativeEngine:
    """One tritonserver process serving a repository on the SageMaker port."""

    def __init__(
        self,
        repository: Path = DEFAULT_REPOSITORY,
        port: int = 8080,
        sagemaker_env: SageMakerEnv | Mapping[str, str] | None = None,
        run_dir: Path | None = None,
        detach: bool = False,
        backend_sources: Path = BACKEND_SOURCES,
        confined: bool | None = None,
        models_dir: Path | None = None,
        bind_all: bool = False,
        loaded: Repository | None = None,
    ) -> None:
        """Describe a server; nothing starts before :meth:`start`.

        ``sagemaker_env`` holds the ``SAGEMAKER_*`` variables (default: the packaged
        defaults, :func:`~tritonship.sagemaker.settings.packaged_env`); ``port`` overrides
        SAGEMAKER_BIND_TO_PORT. With
        ``detach`` the server outlives this process (``tritonship serve --detach``).
        ``confined``: run tritonserver in private user, network and mount namespaces,
        reached through 127.0.0.1 only and seeing the container's paths
        (:mod:`tritonship.local.confine`); None means always, refusing to start where the OS
        does not allow it. ``bind_all`` (or ``confined=False``, or
        ``TRITONSHIP_NATIVE_CONFINE=0``) is the explicit opt-out: no namespaces, every
        interface. In multi-model mode (``SAGEMAKER_MULTI_MODEL=true``) ``models_dir`` (default:
        ``models/`` in the run folder) is what the server sees as ``/opt/ml/models``.
        ``loaded``: the repository's configs, when the caller has parsed them already.
        """
        self.repository = Path(repository).resolve()
        self._loaded = loaded
        self.port = port
        self.run_dir = Path(run_dir or native_run_dir()).resolve()
        self.detach = detach
        self.backend_sources = Path(backend_sources)
        if sagemaker_env is None:
            sagemaker_env = packaged_env(self.repository)
        if isinstance(sagemaker_env, SageMakerEnv):
            sagemaker_env = sagemaker_env.values
        self.sagemaker_env = {**sagemaker_env, "SAGEMAKER_BIND_TO_PORT": str(port)}
        self.multi_model = is_multi_model(self.sagemaker_env)
        self.models_dir = settings.models_dir(models_dir).resolve()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = self.run_dir / LOG_FILE
        self._process: subprocess.Popen[bytes] | None = None
        self._stubs: set[int] = set()
        self._shm_prefix = f"tritonship_{os.getpid()}_{port}_"
        self.bind_all, reason = _opt_out(bind_all, confined)
        if reason is None:
            reason = confine.unavailable_reason()
        self.confined, self._unconfined_reason = reason is None, reason

    @property
    def paths_mapped(self) -> bool:
        """Whether the server sees the container's paths (it runs in the namespaces)."""
        return self.confined

    @property
    def container_models_dir(self) -> str:
        """The models folder as the server sees it: ``/opt/ml/models``, else the host path.

        A ``POST /models`` load names ``<container_models_dir>/<hash>/model``. On host paths
        (no namespaces) the SageMaker frontend's ``/opt/ml/models/...`` URL rule cannot
        match (server r24.09 src/sagemaker_server.h ``model_path_regex_``).
        """
        if self.paths_mapped and self.multi_model:
            return CONTAINER_MODELS_DIR
        return str(self.models_dir)

    @property
    def model_repository(self) -> str:
        """The ``--model-repository`` the server gets, as it sees it.

        As the ``serve`` script: ``/opt/ml/model/``, or ``/tmp/sagemaker`` in multi-model
        mode. On host paths: the repository itself, or a dummy folder of the run state
        (``/tmp/sagemaker`` is never created on the host).
        """
        if self.paths_mapped:
            return str(MULTI_MODEL_REPOSITORY) if self.multi_model else CONTAINER_MODEL_DIR
        if self.multi_model:
            return str(self.run_dir / FALLBACK_MULTI_MODEL_REPOSITORY)
        return str(self.repository)

    def path_plan(self) -> PathPlan:
        """What the confined server sees (:mod:`tritonship.local.mounts`).

        The repository read-only at ``/opt/ml/model`` (in multi-model mode only when it
        exists: SageMaker puts nothing there then); in multi-model mode the models folder
        read-only at ``/opt/ml/models`` and an empty ``/tmp/sagemaker``, which the ``serve``
        script creates (r24.09 L49-52).
        """
        binds: list[tuple[Path, Path]] = []
        if not self.multi_model or self.repository.is_dir():
            binds.append((self.repository, Path(CONTAINER_MODEL_DIR)))
        if not self.multi_model:
            return PathPlan(tuple(binds))
        binds.append((self.models_dir, Path(CONTAINER_MODELS_DIR)))
        return PathPlan(tuple(binds), (MULTI_MODEL_REPOSITORY,))

    def command(self) -> list[str]:
        """The full tritonserver command line (raises ServeRefused like ``serve``)."""
        dist = TritonDistribution.locate()
        return [
            str(dist.server),
            *serve_args(self.sagemaker_env, self.repository, repository=self.model_repository),
            f"--backend-directory={self.run_dir / 'backends'}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment: ours without secrets or SAGEMAKER_*, plus serve's."""
        env = {k: v for k, v in server_environ().items() if not k.startswith("SAGEMAKER_")}
        env.update(serve_env(self.sagemaker_env, self.repository))
        libs = str(TritonDistribution.locate().libs)
        env["LD_LIBRARY_PATH"] = ":".join(filter(None, [libs, env.get("LD_LIBRARY_PATH")]))
        return env

    def _configs(self) -> Repository:
        """The repository's parsed configs (read once, unless the caller gave them)."""
        if self._loaded is None:
            from tritonship.repository.config import load_repository

            self._loaded = load_repository(self.repository)
        return self._loaded

    def start(self) -> None:
        """Start tritonserver in the background; its output goes to ``server.log``."""
        if self.is_alive():
            raise EngineError(f"this engine already runs a server on port {self.port}")
        self._refuse_unconfined()
        self._refuse_running()
        if not self.multi_model:
            refuse_gaps(self._configs(), self.sagemaker_env)
        ensure_port_free(self.port)
        command, env = self.command(), self.environment()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.multi_model:  # ours to create: the run folder's, or the user's --models-dir
            self.models_dir.mkdir(parents=True, exist_ok=True)
            if not self.paths_mapped:
                Path(self.model_repository).mkdir(exist_ok=True)
        assemble_backends(
            self.run_dir / "backends", TritonDistribution.locate(), self.backend_sources
        )
        with self.log_path.open("wb") as log:
            self._process = self._spawn(command, env, log)
        self._write_state()
        if not self.detach:
            atexit.register(self.stop)

    def _spawn(self, command: list[str], env: dict[str, str], log: Any) -> subprocess.Popen:
        """Start tritonserver, confined to loopback when it can be (see :meth:`exposure`)."""
        ports = confine.listening_ports(command) if self.confined else []
        listeners: list[Any] = []
        try:
            for port in ports:
                listeners.append(self._listener(port))
            if self.confined:
                fds = {port: sock.fileno() for port, sock in zip(ports, listeners, strict=True)}
                command = confine.confined_command(
                    command, fds, attached=not self.detach, paths=self.path_plan()
                )
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.run_dir,
                start_new_session=True,
                preexec_fn=None if self.detach else die_with_parent,
                pass_fds=tuple(listener.fileno() for listener in listeners),
            )
        finally:
            for listener in listeners:  # the forwarder holds them now
                listener.close()

    @staticmethod
    def _listener(port: int) -> Any:
        """Hold ``127.0.0.1:port`` for the forwarder of a confined server."""
        try:
            return confine.loopback_listener(port)
        except OSError as err:
            raise PortInUseError(
                f"port {port} is already in use", hint="stop what listens there or pick --port"
            ) from err

    def exposure(self) -> str:
        """Who can reach the server and which paths it sees (with what to do if not confined)."""
        if self.confined:
            return (
                f"listening on 127.0.0.1 only (tritonserver in private namespaces, "
                f"port {self.port} forwarded from loopback); {self.paths()}"
            )
        return (
            f"WARNING: tritonserver listens on ALL network interfaces (port {self.port}), "
            f"unauthenticated, as asked ({self._unconfined_reason}); anyone who can reach "
            f"this machine can use it: use --engine docker (binds 127.0.0.1) or a host "
            f"firewall. {self.paths()}"
        )

    def _refuse_unconfined(self) -> None:
        """Fail closed: no start on every interface unless the user opted out explicitly."""
        if self.confined or self.bind_all:
            return
        raise ConfinementRefused(
            f"refusing to start tritonserver: it listens on every network interface, and it "
            f"cannot be kept on 127.0.0.1 here ({self._unconfined_reason})",
            hint=CONFINEMENT_HINT,
        )

    def paths(self) -> str:
        """Which paths the server sees: the container's, or (said plainly) the host's."""
        if self.paths_mapped:
            seen = f"the server sees the container's paths: /opt/ml/model = {self.repository}"
            if self.multi_model:
                seen += f", /opt/ml/models = {self.models_dir}, /tmp/sagemaker (private)"
            return seen
        seen = (
            f"The server sees HOST paths, not the container's: its repository is "
            f"{self.model_repository}, and its messages name host paths"
        )
        if self.multi_model:
            seen += (
                f"; multi-model loads must name {self.models_dir}/<hash>/model, and "
                "/opt/ml/models/... URLs cannot work"
            )
        return seen

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Wait for ``GET /ping`` == 200; fail fast if the server exits. Returns seconds."""
        seconds = wait_for_ping(self.url, timeout, self.is_alive, lambda: self.logs(40))
        self._stubs = set(self.stub_pids())
        return seconds

    def stub_pids(self) -> list[int]:
        """The Python backend stub processes (one per model instance) of this server."""
        pid = self.pid
        return [c for c in children(pid) if runs(c, STUB_MARKER)] if pid else []

    def health_problem(self) -> str | None:
        """Why the server can no longer answer correctly (a stub died), or None.

        Triton 2.51's Python backend does not restart a dead stub and keeps ``/ping`` at
        200 while that model fails every request; the caller restarts the server instead,
        as SageMaker replaces an unhealthy instance.
        """
        if not self.is_alive():
            return "the server exited"
        missing = self._stubs - set(self.stub_pids())
        return f"{len(missing)} backend stub process(es) died" if missing else None

    def is_alive(self) -> bool:
        """Whether the server process still runs."""
        if self._process is not None:
            return self._process.poll() is None
        return False

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self.is_alive() and self._process else None

    @property
    def shm_prefix(self) -> str:
        """The prefix of this server's shared-memory regions (its stubs name it too)."""
        return self._shm_prefix

    @property
    def log_location(self) -> str:
        """The server log file."""
        return str(self.log_path)

    def logs(self, n: int = 50) -> str:
        """The last ``n`` lines of the server log."""
        return tail(self.log_path, n)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGINT, wait up to ``timeout`` s, then SIGKILL; clean up run state. Idempotent."""
        atexit.unregister(self.stop)
        if self._process is None:
            return
        terminate(self._process.pid, timeout, self._process.wait, "tritonserver")
        clean_up_after(self._shm_prefix)
        state = read_state(self.run_dir, only_alive=False)
        if state is not None and state.get("pid") == self._process.pid:
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        self._process = None

    def __enter__(self) -> NativeEngine:
        """Start and wait until ready; a failed start stops the server again."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _refuse_running(self) -> None:
        """Refuse to start next to a recorded server that still runs."""
        state = read_state(self.run_dir)
        if state is not None:
            raise EngineError(
                f"a native server already runs (pid {state['pid']}, port {state['port']})",
                hint="stop it first: tritonship stop --engine native",
            )

    def _write_state(self) -> None:
        """Record pid, port and log so another process can find and stop the server."""
        assert self._process is not None
        state = {
            "pid": self._process.pid,
            "port": self.port,
            "url": self.url,
            "log": str(self.log_path),
            "shm_prefix": self._shm_prefix,
            "confined": self.confined,
            "repository": str(self.repository),
            "model_repository": self.model_repository,
            "multi_model": self.multi_model,
            "models_dir": str(self.models_dir),
            "container_models_dir": self.container_models_dir,
            "started": time.time(),
        }
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")


def _opt_out(bind_all: bool, confined: bool | None) -> tuple[bool, str | None]:
    """Whether the caller opted out of confinement, and how (None: not opted out)."""
    if bind_all:
        return True, "--bind-all"
    if confined is False:
        return True, "confined=False"
    if settings.confinement_disabled():
        return True, f"{settings.CONFINE_VARIABLE}=0"
    return False, None


def _is_tritonserver(pid: int) -> bool:
    """Whether ``pid`` is a live tritonserver process."""
    return runs(pid, b"tritonserver")


def native_run_dir() -> Path:
    """The native engine's run state folder (under ``TRITONSHIP_RUN_DIR``)."""
    return settings.run_dir() / "native"


def read_state(run_dir: Path | None = None, only_alive: bool = True) -> dict[str, Any] | None:
    """Return the recorded server's state (by default only if that server still runs)."""
    path = Path(run_dir or native_run_dir()) / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        alive = _is_tritonserver(int(state["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if alive or not only_alive else None


def stop_recorded(run_dir: Path | None = None, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
    """Stop the server recorded in ``run_dir`` (e.g. started detached). False if none ran."""
    folder = Path(run_dir or native_run_dir())
    state = read_state(folder)
    (folder / STATE_FILE).unlink(missing_ok=True)
    if state is None:
        return False
    pid = int(state["pid"])

    def wait(seconds: float) -> None:
        wait_gone(pid, seconds, lambda: _is_tritonserver(pid))

    terminate(pid, timeout, wait, "tritonserver")
    clean_up_after(str(state.get("shm_prefix", "")))
    return True


def stub_processes(shm_prefix: str) -> list[int]:
    """Python backend stubs of the server whose regions start with ``shm_prefix``.

    A stub names its shared-memory region on its command line, so the prefix (unique per
    engine) finds them even once their server has died and they were re-parented.
    """
    if not shm_prefix:
        return []
    marker = shm_prefix.encode()
    return [
        int(entry.parent.name)
        for entry in Path("/proc").glob("[0-9]*/cmdline")
        if _holds(entry, STUB_MARKER) and _holds(entry, marker)
    ]


def _holds(cmdline: Path, marker: bytes) -> bool:
    try:
        return marker in cmdline.read_bytes()
    except OSError:
        return False


def clean_up_after(shm_prefix: str) -> None:
    """What a stopped or killed server leaves: its stubs, then their shared memory.

    A server killed hard (SIGKILL, a crash) leaves its stubs running: the Python backend's
    stub does not always notice its parent is gone (one busy with a batch ran on for
    minutes, re-parented to init). SageMaker replaces the whole container, stubs included.
    """
    for pid in stub_processes(shm_prefix):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a signal is not an exit yet
            wait_gone(pid, STUB_EXIT_SECONDS, functools.partial(_is_stub, pid, shm_prefix))
    _remove_shm(shm_prefix)


def _is_stub(pid: int, shm_prefix: str) -> bool:
    """Whether ``pid`` still runs a stub of the server with this prefix."""
    return pid in stub_processes(shm_prefix)


def _remove_shm(prefix: str) -> None:
    """Remove Python backend shared-memory regions left behind by a killed server."""
    if not prefix:
        return
    for region in Path("/dev/shm").glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            region.unlink()
