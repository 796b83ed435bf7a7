"""Hostile requests: each gets a clear error, and the endpoint stays healthy and correct."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.integration.conftest import RUNTIME_ENDPOINT, Endpoint
from tritonship.bench.hostile import HostileCase, corpus, http_sender
from tritonship.sagemaker.client import HttpTransport
from tritonship.sagemaker.wire import decode_response, encode_request
from tritonship.samples import photo_jpeg

CASES = corpus()


@pytest.fixture(scope="module")
def baseline(endpoint: Endpoint) -> np.ndarray:
    """The correct answer for a valid photo, taken before any hostile request."""
    return valid_answer(endpoint)


def valid_answer(endpoint: Endpoint) -> np.ndarray:
    answer = HttpTransport(endpoint.url).send(encode_request([photo_jpeg("astronaut")]))
    return decode_response(answer.body, answer.content_type)


def assert_still_healthy(endpoint: Endpoint, baseline: np.ndarray) -> None:
    assert requests.get(f"{endpoint.url}/ping", timeout=10).status_code == 200
    np.testing.assert_allclose(valid_answer(endpoint), baseline, atol=1e-5)


def test_the_corpus_has_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_container_port(case: HostileCase, endpoint: Endpoint, baseline: np.ndarray):
    result = http_sender(f"{endpoint.url}/invocations")(case.body, case.content_type)
    if case.accept:
        assert result.status == 200, result.message
    else:
        assert 400 <= result.status < 600 and result.status != 200
        assert len(result.message) > 10 and "Traceback" not in result.message
    assert_still_healthy(endpoint, baseline)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_through_the_local_runtime(
    case: HostileCase, runtime: str, endpoint: Endpoint, baseline: np.ndarray
):
    url = f"{runtime}/endpoints/{RUNTIME_ENDPOINT}/invocations"
    result = http_sender(url)(case.body, case.content_type)
    if "6 MB" in case.name:
        assert result.status == 413 and "content length exceeded" in result.message
    elif case.accept:
        assert result.status == 200, result.message
    else:
        assert result.status == 424, "container errors reach callers as ModelError"
        assert result.message.startswith("Received ")
    assert_still_healthy(endpoint, baseline)


def test_accepted_oddities_give_real_answers(endpoint: Endpoint):
    for case in (c for c in CASES if c.accept and "6 MB" not in c.name):
        response = requests.post(
            f"{endpoint.url}/invocations",
            data=case.body,
            headers={"Content-Type": case.content_type},
            timeout=120,
        )
        output = decode_response(response.content, response.headers["Content-Type"])
        assert output.shape == (1, 1001), case.name
        assert output.sum() == pytest.approx(1.0, abs=1e-4), case.name


def test_the_bomb_is_refused_by_its_header(endpoint: Endpoint):
    bomb = next(c for c in CASES if "bomb" in c.name)
    assert len(bomb.body) < 100_000, "a small file ..."
    result = http_sender(f"{endpoint.url}/invocations")(bomb.body, bomb.content_type)
    assert result.status == 400 and "65500x65500" in result.message
