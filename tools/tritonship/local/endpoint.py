"""A local endpoint: an engine (the container API) plus the local SageMaker runtime.

This module owns the serving policy: :meth:`LocalEndpoint.open` unpacks an archive
safely, validates the repository before any server starts, then starts the engine and
the runtime and waits until they answer; :meth:`LocalEndpoint.serve_forever` supervises
them as SageMaker supervises an instance; :func:`stop_detached` stops what a detached
``serve`` left running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tritonship.artifact.unpack import Unpacked
from tritonship.errors import UsageError, render
from tritonship.local.async_inference import AsyncConfig
from tritonship.local.engine import Engine, EngineError
from tritonship.local.runtime import DEFAULT_ENDPOINT_NAME, check_endpoint_name
from tritonship.local.runtime_proxy import RuntimeProxy, stop_recorded_runtime
from tritonship.local.target_models import FolderModelData, MultiModelConfig, model_data
from tritonship.local.traffic_tap import TrafficOptions, check_runtime
from tritonship.paths import DEFAULT_MODEL_DATA_DIR, DEFAULT_REPOSITORY
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.settings import (
    EnvSources,
    SageMakerEnv,
    models_dir,
    run_dir,
    sagemaker_env,
)

if TYPE_CHECKING:
    from tritonship.repository.config import Repository

Status = Callable[[str], AbstractContextManager[object]]
ENGINES = ("native", "docker")
#: One health check per tick while serving in the foreground.
SUPERVISE_INTERVAL_SECONDS = 1.0
#: How long a restarted server may take to answer ``/ping`` again.
RESTART_TIMEOUT_SECONDS = 300.0
#: Server log lines shown when the server dies while serving.
DEATH_LOG_LINES = 30


@dataclass(frozen=True)
class ServeOptions:
    """What ``tritonship serve`` asks for (the local counterpart of ``PromoteOptions``)."""

    repo: Path = DEFAULT_REPOSITORY
    archive: Path | None = None  # a model.tar.gz to serve instead of ``repo``
    engine: str = "native"
    port: int = 8080
    runtime_port: int = 8081  # 0: the container API only
    detach: bool = False
    timeout: float = 300.0
    profile: str = "gpu"
    image: str | None = None
    endpoint_name: str = DEFAULT_ENDPOINT_NAME  # the EndpointName the local runtime answers to
    env_sources: EnvSources = EnvSources()  # --env, --env-file, --multi-model
    models_dir: Path | None = None  # multi-model: where target models are unpacked
    model_data: str | None = None  # multi-model: the prefix of the archives (folder or s3://)
    bind_all: bool = False  # native: no namespace, every interface (an explicit opt-out)
    async_output: str | None = None  # asynchronous: S3OutputPath
    async_failure: str | None = None  # asynchronous: S3FailurePath (default: under the output)
    async_max_concurrent: int = 1  # asynchronous: MaxConcurrentInvocationsPerInstance
    traffic: TrafficOptions | None = None  # --capture DIR, --mirror URL (the runtime's)

    def sagemaker_env(self, repository: Path) -> SageMakerEnv:
        """The container's merged SageMaker variables for ``repository``."""
        return sagemaker_env(self.env_sources, repository)


def _no_status(_: str) -> AbstractContextManager[object]:
    return nullcontext()


EngineFactory = Callable[[ServeOptions, Path, "Repository | None"], Engine]


def make_engine(options: ServeOptions, repository: Path, loaded: Repository | None) -> Engine:
    """The engine ``options`` ask for, serving ``repository``; nothing starts yet.

    ``loaded``: the repository's configs as the command parsed them (None: not parsed,
    as for a multi-model server's folder).
    """
    if options.engine == "docker":
        from tritonship.local.docker import DockerEngine

        if options.bind_all:
            raise UsageError(
                "--bind-all is for the native engine",
                hint="the docker engine publishes its port on 127.0.0.1 only",
            )
        return DockerEngine(
            repository,
            port=options.port,
            image=options.image,
            profile=options.profile,
            sagemaker_env=options.sagemaker_env(repository),
            models_dir=options.models_dir,
        )
    if options.engine == "native":
        from tritonship.local.native import NativeEngine

        return NativeEngine(
            repository,
            port=options.port,
            detach=options.detach,
            sagemaker_env=options.sagemaker_env(repository),
            models_dir=options.models_dir,
            bind_all=options.bind_all,
            loaded=loaded,
        )
    raise UsageError(f"unknown engine {options.engine!r}", hint=f"use {' or '.join(ENGINES)}")


def _unpacked(options: ServeOptions, say: Reporter) -> tuple[Path, Unpacked | None]:
    """The repository to serve, and the unpack of ``options.archive`` (None: a folder)."""
    if options.archive is None:
        return options.repo, None
    from tritonship.artifact.unpack import unpack_timed

    unpacked = unpack_timed(options.archive, run_dir())
    say(f"serving the unpacked archive {options.archive} from {unpacked.repository}")
    return unpacked.repository, unpacked


def record_startup(options: ServeOptions, unpacked: Unpacked, load: float, say: Reporter) -> None:
    """Record how long the archive took to unpack and to load, for promote's preflight."""
    from tritonship.artifact.timings import record_timing

    timing = record_timing(unpacked.sha256, unpacked.seconds, load, options.engine)
    if unpacked.seconds is not None:
        unpack = f"unpacked in {unpacked.seconds:.1f} s"
    elif timing.unpack_seconds is not None:
        unpack = f"unpacked earlier, in {timing.unpack_seconds:.1f} s"
    else:
        unpack = "unpacked earlier (time not measured)"
    say(
        f"{options.archive}: {unpack}, loaded in {load:.1f} s ({options.engine} engine); "
        "promote's preflight compares its startup and download budgets with these"
    )


def async_config(options: ServeOptions, env: SageMakerEnv) -> AsyncConfig | None:
    """The asynchronous endpoint's S3 paths (None without ``--async-output``)."""
    from tritonship.sagemaker.asynchronous import default_failure_path, split_s3

    if options.async_output is None:
        if options.async_failure is not None:
            raise UsageError("--async-failure needs --async-output", hint="add --async-output S3")
        return None
    if env.multi_model:
        raise UsageError(
            "an asynchronous endpoint cannot be a multi-model one",
            hint="SageMaker runs asynchronous inference on single-model endpoints: drop one",
        )
    if not options.runtime_port:
        raise UsageError(
            "--async-output needs the local runtime", hint="leave --runtime-port at its default"
        )
    failure = options.async_failure or default_failure_path(options.async_output)
    for uri in (options.async_output, failure):
        split_s3(uri)
    if options.async_max_concurrent < 1:
        raise UsageError("--async-max-concurrent must be 1 or more")
    return AsyncConfig(options.async_output, failure, options.async_max_concurrent)


def multi_model_config(
    options: ServeOptions, env: SageMakerEnv, engine: Engine
) -> MultiModelConfig | None:
    """Where the runtime of a multi-model endpoint finds target models and unpacks them.

    None for a single-model endpoint. The model data prefix is ``options.model_data``, by
    default the folder ``package --multi-model`` writes; a folder must exist (an empty one
    is fine: adding a model is copying an archive there, as it is an S3 upload).
    """
    if not env.multi_model:
        if options.model_data is not None:
            raise UsageError("--model-data is for a multi-model endpoint", hint="add --multi-model")
        return None
    if not options.runtime_port:
        return None  # no runtime: the client drives the container's /models API itself
    location = str(options.model_data or DEFAULT_MODEL_DATA_DIR)
    source = model_data(location)
    if isinstance(source, FolderModelData):
        if not source.root.is_dir():
            raise UsageError(
                f"the model data folder {source.root} does not exist",
                hint="write archives there (tritonship package --multi-model) or pass "
                "--model-data DIR|s3://BUCKET/PREFIX/",
            )
        location = str(source.root.resolve())
    # The engine's own folder where it has one (it maps that one into the server).
    host = Path(getattr(engine, "models_dir", None) or models_dir(options.models_dir)).resolve()
    return MultiModelConfig(location, host, server_models_dir(engine, host))


def _unused_model_dir(repository: Path) -> Path:
    """``/opt/ml/model`` of a multi-model endpoint: the script never reads it.

    SageMaker mounts no single model there; the engines still mount a folder, so one that
    does not exist is replaced by an empty folder in the run folder.
    """
    if repository.is_dir():
        return repository
    empty = run_dir() / "multi-model-no-model"
    empty.mkdir(parents=True, exist_ok=True)
    return empty


def server_models_dir(engine: Engine, host: Path) -> str:
    """The models folder as the server sees it: ``/opt/ml/models`` where the engine maps it.

    An engine without that mapping sees the host folder itself.
    """
    return str(getattr(engine, "container_models_dir", None) or host)


def validated(repository: Path, env: SageMakerEnv | None = None) -> Repository:
    """The repository, parsed once; refused with every finding, so no server starts on it."""
    from tritonship.repository.config import load_repository
    from tritonship.repository.validate import refuse_findings, validate_repository

    loaded = load_repository(repository)
    hint = "fix them (tritonship validate) or rebuild (tritonship build)"
    refuse_findings(loaded, validate_repository(loaded, env=env), hint)
    return loaded


class LocalEndpoint:
    """Start, watch and stop an engine and, on ``runtime_port``, the local runtime."""

    def __init__(
        self,
        engine: Engine,
        runtime_port: int | None,
        detach: bool = False,
        endpoint_name: str = DEFAULT_ENDPOINT_NAME,
        multi_model: MultiModelConfig | None = None,
        asynchronous: AsyncConfig | None = None,
        traffic: TrafficOptions | None = None,
    ) -> None:
        """``runtime_port`` None: serve the container API only.

        ``multi_model``: the runtime plays SageMaker's part for these target models;
        ``asynchronous``: it takes InvokeEndpointAsync, with these S3 paths; ``traffic``: what
        it captures and mirrors (``serve --capture``, ``--mirror``).
        """
        self.engine = engine
        self.multi_model = multi_model
        self.asynchronous = asynchronous
        self.traffic = traffic
        self.ready_seconds: float | None = None
        self.env: SageMakerEnv | None = None  # what the container was started with
        log_hint = f"the container log ({engine.log_location})"
        self.runtime = (
            RuntimeProxy(
                engine.url,
                runtime_port,
                endpoint_name=endpoint_name,
                detach=detach,
                log_hint=log_hint,
                multi_model=multi_model,
                asynchronous=asynchronous,
                extra_args=traffic.runtime_args(run_dir()) if traffic else (),
            )
            if runtime_port
            else None
        )

    @classmethod
    def open(
        cls,
        options: ServeOptions,
        status: Status = _no_status,
        say: Reporter = quiet,
        engines: EngineFactory = make_engine,
    ) -> LocalEndpoint:
        """Unpack, validate, start the engine and the runtime, wait until both answer.

        A repository with findings is refused before any server starts; a failed start
        stops whatever did start. ``ready_seconds`` says how long the server took.
        """
        check_endpoint_name(options.endpoint_name)
        check_runtime(options.traffic, options.runtime_port)
        repository, unpacked = _unpacked(options, say)
        env = options.sagemaker_env(repository)
        asynchronous = async_config(options, env)
        loaded = None
        if env.multi_model:
            repository = _unused_model_dir(repository)
        else:
            loaded = validated(repository, env)
        engine = engines(options, repository, loaded)
        endpoint = cls(
            engine,
            options.runtime_port or None,
            options.detach,
            endpoint_name=options.endpoint_name,
            multi_model=multi_model_config(options, env, engine),
            asynchronous=asynchronous,
            traffic=options.traffic,
        )
        endpoint.env = env
        seconds = endpoint.start(options.timeout, status)
        if unpacked is not None:
            record_startup(options, unpacked, seconds, say)
        return endpoint

    def start(self, timeout: float, status: Status = _no_status) -> float:
        """Start everything and wait until ready; on any failure stop what started."""
        try:
            self.engine.start()
            with status(f"waiting for {self.engine.url}/ping (up to {timeout:.0f} s)"):
                seconds = self.engine.wait_ready(timeout)
            if self.runtime:
                self.runtime.start()
                self.runtime.wait_ready()
        except BaseException as failure:
            self._stop_after(failure)
            raise
        self.ready_seconds = seconds
        return seconds

    def is_alive(self) -> bool:
        """Whether the engine (and the runtime, if any) still run."""
        return self.engine.is_alive() and self._runtime_alive()

    def _runtime_alive(self) -> bool:
        return self.runtime is None or self.runtime.is_alive()

    def heal(self, timeout: float = RESTART_TIMEOUT_SECONDS) -> str | None:
        """Restart the engine if it runs but reports a health problem; return that problem."""
        problem = self.engine.health_problem()
        if problem is None or not self.engine.is_alive():
            return None
        self._restart(timeout)
        return problem

    def _restart(self, timeout: float = RESTART_TIMEOUT_SECONDS) -> None:
        """Replace the server, as SageMaker replaces an unhealthy instance."""
        self.engine.stop()
        self.engine.start()
        self.engine.wait_ready(timeout)

    def serve_forever(self, say: Reporter, interval: float = SUPERVISE_INTERVAL_SECONDS) -> int:
        """Supervise until Ctrl-C (stop cleanly, return 0) or until the server dies (return 1).

        One health check every ``interval`` s: a server that runs but reports a problem
        (a dead backend stub) is restarted; a dead server or runtime ends the loop with
        the server's last log lines. Everything is stopped on the way out.
        """
        try:
            death = self._supervise(say, interval)
        except KeyboardInterrupt:
            say("stopping ...")
            self.stop()
            return 0
        except BaseException as failure:
            self._stop_after(failure)
            raise
        say(death)
        self.stop()
        return 1

    def _supervise(self, say: Reporter, interval: float) -> str:
        """Restart an unhealthy engine; return what died, once the engine or runtime has."""
        while True:
            time.sleep(interval)
            problem = self.heal()
            if problem:
                say(f"{problem}: restarted the server (as SageMaker replaces an instance)")
            elif not self.engine.is_alive():
                return f"the server exited:\n{self.engine.logs(DEATH_LOG_LINES)}"
            elif self.runtime is not None and not self.runtime.is_alive():
                return f"the local SageMaker runtime exited (its log: {self.runtime.log_path})"

    def stop(self) -> None:
        """Stop the runtime, then the engine."""
        if self.runtime:
            self.runtime.stop()
        self.engine.stop()

    def _stop_after(self, failure: BaseException) -> None:
        """Stop everything after ``failure``; a stop that fails is noted on it, not raised."""
        try:
            self.stop()
        except EngineError as err:
            note = f"stopping what had started failed too: {render(err)}"
            # PEP 678's notes (BaseException.add_note from Python 3.11; set directly on 3.10).
            setattr(failure, "__notes__", [*getattr(failure, "__notes__", []), note])  # noqa: B010

    def describe(self) -> list[str]:
        """Where the endpoint answers, for the user."""
        url = self.engine.url
        lines = [f"SageMaker container API: {url}/invocations  (health: {url}/ping)"]
        exposure = getattr(self.engine, "exposure", None)  # the native engine's reach
        if exposure is not None:
            lines.append(exposure())
        if self.runtime:
            lines.append(f"SageMaker runtime API:   {self.runtime.invocations_url}")
            lines.extend(runtime_client_hints(self.runtime.url, self.runtime.endpoint_name))
        if self.runtime and self.multi_model:
            lines.extend(multi_model_lines(self.multi_model))
        if self.runtime and self.asynchronous:
            lines.append(
                f"asynchronous endpoint: InvokeEndpointAsync at {self.runtime.url}/endpoints/"
                f"{self.runtime.endpoint_name}/async-invocations; outputs to "
                f"{self.asynchronous.output_path}, failures to {self.asynchronous.failure_path}"
            )
        if self.runtime and self.traffic:
            name, variant = self.runtime.endpoint_name, self.runtime.variant_name
            lines.extend(self.traffic.describe(name, variant, self.runtime.run_dir))
        if self.env is not None:
            lines.append("SageMaker environment (--env, --env-file, exported, defaults):")
            lines.extend(f"  {line}" for line in self.env.describe())
        lines.append(f"server log: {self.engine.log_location}")
        return lines


def runtime_client_hints(url: str, endpoint_name: str) -> list[str]:
    """How boto3, the AWS CLI and the SageMaker SDK reach the local runtime (docs/invoking.md).

    The service-specific variable, not ``AWS_ENDPOINT_URL``: that one would send S3 and
    ``aws sagemaker ...`` to this port too. Clients outside the toolkit also need a region
    (``AWS_DEFAULT_REGION``: boto3 and AWS CLI v1 ignore ``AWS_REGION``) and some
    credentials (any will do: the runtime does not check signatures).
    """
    return [
        f"  clients: export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={url} AWS_DEFAULT_REGION=us-east-1",
        f"    boto3: boto3.client('sagemaker-runtime').invoke_endpoint("
        f"EndpointName='{endpoint_name}', ...)",
        f"    AWS CLI: aws sagemaker-runtime invoke-endpoint --endpoint-name {endpoint_name} "
        "--no-sign-request ...",
        "    outside the toolkit, clients need a region and some credentials (any: the local "
        "runtime does not check them) or --no-sign-request; recipes: docs/invoking.md",
    ]


def multi_model_lines(config: MultiModelConfig, shown: int = 5) -> list[str]:
    """Where target models come from and go, for the user (and a few a folder holds)."""
    source = model_data(config.model_data)
    found = []
    if isinstance(source, FolderModelData):
        archives = sorted(source.root.rglob("*.tar.gz"))
        found = [path.relative_to(source.root).as_posix() for path in archives]
    example = found[0] if found else "model.tar.gz"
    lines = [
        f"multi-model endpoint: TargetModel names an archive under {config.model_data}",
        f"  e.g. invoke_endpoint(..., TargetModel='{example}'); loaded on first use into "
        f"{config.models_dir} (the server sees {config.container_models_dir})",
    ]
    if found:
        more = f" (and {len(found) - shown} more)" if len(found) > shown else ""
        lines.append(f"  target models there now: {', '.join(found[:shown])}{more}")
    return lines


def stop_detached(engine_name: str) -> list[str]:
    """Stop a detached runtime and the native or docker server; the lines to print."""
    lines = ["stopped the local SageMaker runtime"] if stop_recorded_runtime() else []
    if engine_name == "docker":
        from tritonship.local.docker import DockerEngine

        DockerEngine().stop()
        return [*lines, "stopped the tritonship Docker Compose project"]
    from tritonship.local.native import read_state, stop_recorded

    state = read_state()
    if not stop_recorded():
        return [*lines, "no native server is running"]
    return [*lines, f"stopped the native server (pid {state['pid'] if state else '?'})"]
