"""A local moto server for the promote tests, what they create in it, and Triton answers.

moto lacks Service Quotas' ListServiceQuotas: :func:`with_quotas` gives the clients a
client stubbed with botocore's Stubber beside the moto ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import boto3
import numpy as np
from botocore.stub import Stubber

from tritonship.cloud.aws import AwsClients
from tritonship.cloud.endpoints import Waiting

_LISTENING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")
BUCKET = "tritonship-test-models"
#: moto's endpoints are InService at once: a short wait is enough.
MOTO_WAITING = Waiting(delay=0.01, attempts=5)
#: A bucket's public access block with all four blocks on (promote refuses it otherwise).
ALL_BLOCKED = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


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


def with_quotas(clients: AwsClients, handed: list[Stubber], value: float = 4.0) -> AwsClients:
    """``clients`` with a stubbed Service Quotas client answering one ListServiceQuotas."""
    client = boto3.client("service-quotas", region_name="us-east-1")
    stubber = Stubber(client)
    quota = {
        "ServiceCode": "sagemaker",
        "QuotaCode": "L-1234ABCD",
        "QuotaName": "ml.g4dn.xlarge for endpoint usage",
        "Value": value,
    }
    stubber.add_response("list_service_quotas", {"Quotas": [quota]}, {"ServiceCode": "sagemaker"})
    stubber.activate()
    handed.append(stubber)
    return replace(clients, quotas=client)
