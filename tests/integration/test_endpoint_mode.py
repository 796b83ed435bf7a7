"""``make test-endpoint`` exercised here: the live-endpoint suite against the local runtime.

The local SageMaker runtime stands in for a promoted endpoint: the suite runs in a child
pytest with TRITONSHIP_ENDPOINT and the service-specific AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME,
exactly as a user runs it after ``promote`` (only the URL and the fake credentials differ).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import RUNTIME_ENDPOINT, Endpoint
from tritonship.local.native import NativeEngine

SUITE = Path(__file__).with_name("test_live_endpoint.py")


def endpoint_mode_env(runtime: str, repository: Path) -> dict[str, str]:
    """The environment of ``TRITONSHIP_ENDPOINT=... make test-endpoint``, fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRITONSHIP_"))}
    return {
        **env,
        "TRITONSHIP_ENDPOINT": RUNTIME_ENDPOINT,
        "TRITONSHIP_REPO": str(repository),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def test_the_live_endpoint_suite_passes_against_the_local_runtime(runtime: str, endpoint: Endpoint):
    if endpoint.engine is not None and not isinstance(endpoint.engine, NativeEngine):
        pytest.skip("the live-endpoint suite runs once, in front of the native engine")
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(SUITE)]
    result = subprocess.run(  # noqa: S603 - our own test suite
        command,
        env=endpoint_mode_env(runtime, endpoint.repository),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tail = result.stdout[-4000:]
    assert result.returncode == 0, tail
    counts = dict(
        (kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|skipped|failed|error)", tail)
    )
    assert counts.get("passed", 0) >= 40, tail
    # A random-weight build: only the label checks skip, and they say why.
    assert counts.get("skipped", 0) == 3, tail
    assert "labels are meaningless without official weights" in tail
