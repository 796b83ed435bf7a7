"""A local moto server for the promote tests, and Triton answers to feed it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

_LISTENING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


def start_moto(log: Path, timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """Start ``python -m moto.server`` on port 0; return it and its URL once it answers."""
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited ({process.returncode}):\n{log.read_text()}")
        match = _LISTENING.search(log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        time.sleep(0.1)
    stop_moto(process)
    raise RuntimeError(f"moto did not start within {timeout} s:\n{log.read_text()}")


def stop_moto(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _post(url: str, payload: dict | None = None) -> None:
    data = json.dumps(payload or {}).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
        pass


def reset_moto(url: str) -> None:
    """Forget every resource (and queued answer) of previous tests."""
    _post(f"{url}/moto-api/reset")


def queue_invoke_answer(url: str, body: str, content_type: str = "application/json") -> None:
    """Make moto's next InvokeEndpoint answer ``body`` instead of its placeholder."""
    result = {
        "Body": body,
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
        "CustomAttributes": "",
    }
    _post(f"{url}/moto-api/static/sagemaker/endpoint-results", {"results": [result]})


def triton_answer(classes: int = 1001, rows: int = 1) -> str:
    """A KServe v2 JSON response whose OUTPUT rows are softmax distributions."""
    logits = np.random.default_rng(0).normal(size=(rows, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    output = {
        "name": "OUTPUT",
        "datatype": "FP32",
        "shape": [rows, classes],
        "data": probabilities.astype(np.float32).ravel().tolist(),
    }
    return json.dumps({"model_name": "ensemble_dali_inception", "outputs": [output]})
