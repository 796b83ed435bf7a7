"""The local SageMaker runtime (:mod:`tritonship.local.runtime`) as a background process."""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tritonship.local.async_inference import AsyncConfig
from tritonship.local.engine import ensure_port_free, wait_for_ping
from tritonship.local.process import (
    die_with_parent,
    runs,
    tail,
    terminate,
    wait_gone,
)
from tritonship.local.runtime import DEFAULT_ENDPOINT_NAME, DEFAULT_VARIANT_NAME
from tritonship.local.target_models import MultiModelConfig, S3ModelData, model_data
from tritonship.sagemaker.settings import platform_environ, server_environ
from tritonship.sagemaker.settings import run_dir as settings_run_dir

STATE_FILE = "runtime.json"
_MARKER = b"tritonship.local.runtime"


class RuntimeProxy:
    """``python -m tritonship.local.runtime`` in front of a container URL."""

    def __init__(
        self,
        upstream: str,
        port: int,
        endpoint_name: str = DEFAULT_ENDPOINT_NAME,
        detach: bool = False,
        log_hint: str = "the container log",
        run_dir: Path | None = None,
        variant_name: str = DEFAULT_VARIANT_NAME,
        multi_model: MultiModelConfig | None = None,
        asynchronous: AsyncConfig | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """Describe the proxy; nothing starts before :meth:`start`.

        ``multi_model``: the endpoint is a multi-model endpoint with these target models.
        ``asynchronous``: it is an asynchronous endpoint writing to these S3 paths.
        ``extra_args``: more options of the runtime (capture and mirror: ``serve --capture``).
        """
        self.upstream, self.port, self.detach = upstream, port, detach
        self.endpoint_name, self.log_hint = endpoint_name, log_hint
        self.variant_name = variant_name
        self.multi_model = multi_model
        self.asynchronous = asynchronous
        self.extra_args = tuple(extra_args)
        self.url = f"http://127.0.0.1:{port}"
        self.run_dir = run_dir or settings_run_dir()
        self.log_path = self.run_dir / "runtime.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def invocations_url(self) -> str:
        """Where InvokeEndpoint lands for this endpoint."""
        return f"{self.url}/endpoints/{self.endpoint_name}/invocations"

    def start(self) -> None:
        """Start the proxy process (its log: ``runtime.log`` in the run folder)."""
        ensure_port_free(self.port)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "tritonship.local.runtime",
            "--upstream",
            self.upstream,
            "--port",
            str(self.port),
            "--endpoint-name",
            self.endpoint_name,
            "--log-hint",
            self.log_hint,
            "--variant-name",
            self.variant_name,
            *self._multi_model_args(),
            *self._async_args(),
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                command,
                env=self._environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=None if self.detach else die_with_parent,  # noqa: PLW1509
            )
        state = {"pid": self._process.pid, "port": self.port, "url": self.url}
        (self.run_dir / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        if not self.detach:
            atexit.register(self.stop)

    def _multi_model_args(self) -> list[str]:
        if self.multi_model is None:
            return []
        return [
            "--model-data",
            self.multi_model.model_data,
            "--models-dir",
            str(self.multi_model.models_dir),
            "--container-models-dir",
            self.multi_model.container_models_dir,
        ]

    def _async_args(self) -> list[str]:
        if self.asynchronous is None:
            return []
        return [
            "--async-output",
            self.asynchronous.output_path,
            "--async-failure",
            self.asynchronous.failure_path,
            "--async-max-concurrent",
            str(self.asynchronous.max_concurrent),
        ]

    def _environ(self) -> dict[str, str]:
        """Credentials only where the runtime uses S3, as SageMaker's role does."""
        reads_s3 = self.asynchronous is not None or (
            self.multi_model is not None
            and isinstance(model_data(self.multi_model.model_data), S3ModelData)
        )
        return platform_environ() if reads_s3 else server_environ()

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until the proxy answers ``/ping`` with the container's 200."""
        return wait_for_ping(self.url, timeout, self.is_alive, lambda: tail(self.log_path, 20))

    def is_alive(self) -> bool:
        """Whether the proxy process still runs."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the proxy (SIGINT, then SIGKILL). Idempotent."""
        if self._process is not None:  # only a proxy we started: never another's state
            terminate(self._process.pid, 10.0, self._process.wait, "local runtime")
            self._process = None
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        atexit.unregister(self.stop)


def recorded_runtime() -> dict[str, Any] | None:
    """The state of a detached proxy that still runs, else None."""
    try:
        state = json.loads((settings_run_dir() / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if runs(int(state["pid"]), _MARKER) else None


def stop_recorded_runtime() -> bool:
    """Stop a detached proxy. False when none ran."""
    state = recorded_runtime()
    (settings_run_dir() / STATE_FILE).unlink(missing_ok=True)
    if state is None:
        return False
    pid = int(state["pid"])

    def wait(seconds: float) -> None:
        wait_gone(pid, seconds, lambda: runs(pid, _MARKER))

    terminate(pid, 10.0, wait, "local runtime")
    return True
