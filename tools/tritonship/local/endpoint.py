"""A local endpoint: an engine (the container API) plus the local SageMaker runtime."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from tritonship.local.engine import Engine
from tritonship.local.runtime_proxy import RuntimeProxy, stop_recorded_runtime

Status = Callable[[str], AbstractContextManager[object]]


def _no_status(_: str) -> AbstractContextManager[object]:
    return nullcontext()


class LocalEndpoint:
    """Start, watch and stop an engine and, on ``runtime_port``, the local runtime."""

    def __init__(self, engine: Engine, runtime_port: int | None, detach: bool = False) -> None:
        """``runtime_port`` None: serve the container API only."""
        self.engine = engine
        log_hint = f"the container log ({getattr(engine, 'log_path', 'docker compose logs')})"
        self.runtime = (
            RuntimeProxy(engine.url, runtime_port, detach=detach, log_hint=log_hint)
            if runtime_port
            else None
        )

    def start(self, timeout: float, status: Status = _no_status) -> float:
        """Start everything and wait until ready; on any failure stop what started."""
        try:
            self.engine.start()
            with status(f"waiting for {self.engine.url}/ping (up to {timeout:.0f} s)"):
                seconds = self.engine.wait_ready(timeout)
            if self.runtime:
                self.runtime.start()
                self.runtime.wait_ready()
        except BaseException:
            self.stop()
            raise
        return seconds

    def is_alive(self) -> bool:
        """Whether the engine (and the runtime, if any) still run."""
        return self.engine.is_alive() and (self.runtime is None or self.runtime.is_alive())

    def heal(self, timeout: float = 300.0) -> str | None:
        """Restart the engine if it reports a health problem; return that problem or None."""
        check = getattr(self.engine, "health_problem", None)
        problem = check() if check else None
        if problem and self.engine.is_alive():
            self.engine.stop()
            self.engine.start()
            self.engine.wait_ready(timeout)
        return problem if problem and self.engine.is_alive() else None

    def stop(self) -> None:
        """Stop the runtime, then the engine."""
        if self.runtime:
            self.runtime.stop()
        self.engine.stop()

    def describe(self) -> list[str]:
        """Where the endpoint answers, for the user."""
        url = self.engine.url
        lines = [f"SageMaker container API: {url}/invocations  (health: {url}/ping)"]
        if self.runtime:
            lines.append(f"SageMaker runtime API:   {self.runtime.invocations_url}")
            lines.append(
                f"  boto3: AWS_ENDPOINT_URL={self.runtime.url} "
                f"invoke_endpoint(EndpointName='{self.runtime.endpoint_name}', ...)"
            )
        log = getattr(self.engine, "log_path", None)
        lines.append(f"server log: {log}" if log else "server log: docker compose logs")
        return lines


def stop_runtime() -> bool:
    """Stop a detached local runtime; False if none ran."""
    return stop_recorded_runtime()
