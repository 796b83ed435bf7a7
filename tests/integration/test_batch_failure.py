"""The faithful DALI stand-in on a real server: one bad image fails its whole dynamic batch.

A variant of the built repository puts a dynamic batcher on ``dali`` that waits for two
requests (``preferred_batch_size: 2``, up to 5 s), so a valid and a corrupt image sent at
the same time always run as one batch, as they would under load on the GPU container. The
real backend fails the batch as a whole (dali_backend r24.09 ``ExecuteBatched``); so must
the stand-in. The shipped repository has no batcher on ``dali`` for this reason
(tests/integration/test_isolation.py shows the same pair answered separately there).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonship.bench.hostile import HostileCase, corrupt_jpeg, http_sender
from tritonship.local.engine import free_port
from tritonship.local.native import NativeEngine
from tritonship.sagemaker.wire import encode_request
from tritonship.samples import photo_jpeg

ENSEMBLE = "ensemble_dali_inception"
WAIT_FOR_TWO_US = 5_000_000


def batching_variant(source: Path, target: Path) -> Path:
    """``source`` with a batcher on ``dali`` that joins two requests."""
    shutil.copytree(source, target)
    path = target / "dali" / "config.pbtxt"
    config = text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig())
    config.input[0].allow_ragged_batch = True
    config.dynamic_batching.max_queue_delay_microseconds = WAIT_FOR_TWO_US
    config.dynamic_batching.preferred_batch_size.append(2)
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def batching_url(built_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("batching")
    repo = batching_variant(built_repository, work / "model_repository")
    with NativeEngine(repo, port=free_port(), run_dir=work / "run") as engine:
        yield engine.url


def case(name: str, image: bytes) -> HostileCase:
    request = encode_request([image])
    return HostileCase(name, request.body, request.content_type)


def send_together(url: str, cases: list[HostileCase]) -> list:
    send = http_sender(f"{url}/invocations")
    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(lambda c: send(c.body, c.content_type), cases))


def test_one_corrupt_image_fails_every_request_of_its_batch(batching_url: str):
    good, bad = send_together(
        batching_url, [case("valid", photo_jpeg("chelsea")), case("corrupt", corrupt_jpeg())]
    )
    assert (good.status, bad.status) == (400, 400), "the valid request failed with its batch"
    assert good.message == bad.message, "one error for the whole batch"
    assert good.message.startswith(
        f"in ensemble '{ENSEMBLE}', Runtime error: Critical error in pipeline:"
    )


def test_a_batch_of_valid_images_is_answered(batching_url: str):
    first, second = send_together(
        batching_url, [case("a", photo_jpeg("chelsea")), case("b", photo_jpeg("coffee"))]
    )
    assert (first.status, second.status) == (200, 200)
