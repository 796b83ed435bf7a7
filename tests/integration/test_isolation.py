"""No collateral failures: on the shipped repository, bad clients never fail good ones.

The guard step refuses empty images, unknown formats and bomb headers request by request;
``dali`` has no dynamic batcher, so an image only the decoder can refuse (truncated, or
corrupt behind an intact header) fails its own request alone. Both run on the faithful
stand-ins here and unchanged on the SageMaker container.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from tests.integration.conftest import Endpoint
from tests.support.load import Tally
from tritonship.bench.hostile import corrupt_jpeg, jpeg_bomb, noise
from tritonship.local.native import NativeEngine
from tritonship.sagemaker.wire import decode_response, encode_as
from tritonship.samples import PHOTOS, encode, photo_array, photo_jpeg

#: How long valid and hostile clients share the server (at least 30 s; the test stays <= 40 s).
SECONDS = float(os.environ.get("TRITONSHIP_MIXED_SECONDS", "30"))
VALID_CLIENTS = HOSTILE_CLIENTS = 3


def hostile_requests() -> list[tuple[str, bytes, str]]:
    """Truncated and corrupt JPEGs, a bomb header, random bytes, in binary and raw form."""
    photo = photo_jpeg("rocket")
    images = {
        "truncated JPEG": photo[: len(photo) // 2],
        "corrupt JPEG": corrupt_jpeg(),
        "bomb header": jpeg_bomb(),
        "random bytes": noise(),
        "empty image": b"",
        "GIF": encode(photo_array("coffee"), "GIF"),
    }
    return [
        (f"{name} ({fmt})", request.body, request.content_type)
        for name, image in images.items()
        for fmt in ("binary", "raw")
        for request in [encode_as([image], fmt)]
    ]


def valid_requests() -> list[tuple[str, bytes, str]]:
    return [
        (name, request.body, request.content_type)
        for name in PHOTOS
        for request in [encode_as([photo_jpeg(name)], "raw" if name == "coffee" else "binary")]
    ]


def readable_refusal(response: requests.Response) -> str | None:
    """None when the answer is a readable non-200 error, else what is wrong with it."""
    if response.status_code == 200:
        return "accepted"
    try:
        message = str(response.json()["error"])
    except (ValueError, KeyError):
        return f"{response.status_code} without a JSON error: {response.text[:100]!r}"
    if len(message) < 20 or "Traceback" in message:
        return f"{response.status_code} unreadable: {message[:100]!r}"
    return None


def run_clients(deadline: float, work: Callable[[requests.Session, int], None]) -> None:
    session = requests.Session()
    for turn in itertools.count():
        if time.monotonic() >= deadline:
            return
        work(session, turn)


def test_a_corrupt_image_fails_only_its_own_request(endpoint: Endpoint):
    good = encode_as([photo_jpeg("chelsea")], "binary")
    bad = encode_as([corrupt_jpeg()], "binary")
    url = f"{endpoint.url}/invocations"

    def post(request):
        return requests.post(
            url, data=request.body, headers={"Content-Type": request.content_type}, timeout=120
        )

    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            answers = list(pool.map(post, [good, bad, good, bad]))
            assert [a.status_code for a in answers] == [200, 400, 200, 400]
            assert "Runtime error: Critical error in pipeline" in answers[1].json()["error"]
    error = answers[1].json()["error"]
    if isinstance(endpoint.engine, NativeEngine) and endpoint.engine.paths_mapped:
        # the native server sees the container's paths (its private mount namespace), so
        # clients read the path they would read in production, never the host's
        assert 'File "/opt/ml/model/dali/1/dali.py"' in error
        assert str(endpoint.repository) not in error


@pytest.mark.slow
def test_valid_clients_are_unharmed_by_hostile_ones(endpoint: Endpoint):
    url = f"{endpoint.url}/invocations"
    valid, hostile = valid_requests(), hostile_requests()
    expected = {}
    for name, body, content_type in valid:
        answer = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=120)
        expected[name] = decode_response(answer.content, answer.headers["Content-Type"])
    tally = Tally()

    def valid_client(offset: int) -> Callable[[requests.Session, int], None]:
        def work(session: requests.Session, turn: int) -> None:
            name, body, content_type = valid[(offset + turn) % len(valid)]
            answer = session.post(
                url, data=body, headers={"Content-Type": content_type}, timeout=120
            )
            if answer.status_code != 200:
                tally.add("valid", f"{name}: {answer.status_code} {answer.text[:200]}")
                return
            output = decode_response(answer.content, answer.headers["Content-Type"])
            right = np.allclose(output, expected[name], atol=1e-5)
            tally.add("valid", None if right else f"{name}: wrong answer")

        return work

    def hostile_client(offset: int) -> Callable[[requests.Session, int], None]:
        def work(session: requests.Session, turn: int) -> None:
            name, body, content_type = hostile[(offset + turn) % len(hostile)]
            answer = session.post(
                url, data=body, headers={"Content-Type": content_type}, timeout=120
            )
            problem = readable_refusal(answer)
            tally.add("hostile", f"{name}: {problem}" if problem else None)

        return work

    deadline = time.monotonic() + SECONDS
    clients = [valid_client(i) for i in range(VALID_CLIENTS)]
    clients += [hostile_client(i * 5) for i in range(HOSTILE_CLIENTS)]
    threads = [
        threading.Thread(target=run_clients, args=(deadline, work), daemon=True) for work in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    print(f"mixed load, {SECONDS:.0f} s: {dict(tally.counts)}")
    assert tally.failures == [], tally.failures
    assert tally.counts["valid"] >= VALID_CLIENTS and tally.counts["hostile"] >= len(hostile)
