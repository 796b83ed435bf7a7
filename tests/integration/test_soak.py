"""Sustained load: 8 clients for 60 s mixing valid and hostile requests (loopback only)."""

from __future__ import annotations

import itertools
import os
import threading
import time

import numpy as np
import pytest
import requests

from tests.integration.conftest import Endpoint
from tests.support.load import Tally, tree_rss_bytes
from tritonship.bench.hostile import corpus
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import PHOTOS, photo_jpeg

CLIENTS = 8
SECONDS = float(os.environ.get("TRITONSHIP_SOAK_SECONDS", "60"))
WARMUP_SECONDS = 10.0
MAX_REQUESTS = 200_000  # a hard bound besides the clock


def workload() -> list[tuple[str, bytes, str, np.ndarray | None]]:
    """Valid photos (with their expected answer, filled later) and hostile requests."""
    valid = [(name, *_encoded(photo_jpeg(name)), None) for name in PHOTOS]
    hostile = [
        (c.name, c.body, c.content_type, None)
        for c in corpus()
        if not c.accept and len(c.body) < 1_000_000
    ]
    return list(itertools.chain.from_iterable(zip(valid * 3, hostile, strict=False))) + valid


def _encoded(image: bytes) -> tuple[bytes, str]:
    request = encode_request([image])
    return request.body, request.content_type


def client(
    url: str,
    items: list,
    expected: dict[str, np.ndarray],
    deadline: float,
    tally: Tally,
    offset: int,
) -> None:
    session = requests.Session()
    for index in itertools.islice(itertools.count(offset), MAX_REQUESTS // CLIENTS):
        if time.monotonic() >= deadline:
            return
        name, body, content_type, _ = items[index % len(items)]
        response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=120)
        if name not in expected:
            ok = response.status_code != 200
            tally.add("hostile", None if ok else f"{name}: accepted")
            continue
        failure = None
        if response.status_code != 200:
            failure = f"{name}: {response.status_code} {response.text[:200]}"
        elif not np.allclose(
            decode_response(response.content, response.headers.get("Content-Type")),
            expected[name],
            atol=1e-5,
        ):
            failure = f"{name}: wrong answer"
        tally.add("valid" if failure is None else "valid-failed", failure)


def run_load(endpoint: Endpoint, seconds: float, expected: dict[str, np.ndarray]) -> Tally:
    tally, items = Tally(), workload()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=client,
            daemon=True,
            args=(f"{endpoint.url}/invocations", items, expected, deadline, tally, i * 7),
        )
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 180)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return tally


def expected_answers(endpoint: Endpoint) -> dict[str, np.ndarray]:
    answers = {}
    for name in PHOTOS:
        body, content_type = _encoded(photo_jpeg(name))
        response = requests.post(
            f"{endpoint.url}/invocations",
            data=body,
            headers={"Content-Type": content_type},
            timeout=120,
        )
        answers[name] = decode_response(response.content, response.headers["Content-Type"])
    return answers


@pytest.mark.soak
def test_sustained_mixed_load(endpoint: Endpoint):
    expected = expected_answers(endpoint)
    warm = run_load(endpoint, WARMUP_SECONDS, expected)
    assert warm.failures == []
    pid = endpoint.engine.pid if endpoint.engine else None
    rss_warm = tree_rss_bytes(pid) if pid else None
    tally = run_load(endpoint, SECONDS, expected)
    assert tally.failures == [], tally.failures
    assert tally.counts["valid"] > 0 and tally.counts["hostile"] > 0
    assert requests.get(f"{endpoint.url}/ping", timeout=10).status_code == 200
    if rss_warm:
        rss_after = tree_rss_bytes(pid)
        growth = (rss_after - rss_warm) / rss_warm
        print(
            f"soak: {dict(tally.counts)} in {SECONDS:.0f} s; server RSS "
            f"{rss_warm / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB ({growth:+.1%})"
        )
        assert abs(growth) <= 0.10
