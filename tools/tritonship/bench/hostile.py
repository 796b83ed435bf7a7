"""A corpus of hostile requests, and a runner that checks the endpoint survives each one.

``tritonship bench hostile --url URL [--runtime URL] [--results DIR]`` prints the results
as a markdown table (the docs' table comes from it) and keeps it, stamped with the machine
and the date, in ``--results`` (default ``docs/results/`` in a checkout).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from tritonship.bench.report import (
    machine_stamp,
    server_version,
    write_results,
)
from tritonship.local.runtime import DEFAULT_ENDPOINT_NAME
from tritonship.sagemaker.wire import (
    BINARY_CONTENT_TYPE,
    MAX_PAYLOAD_BYTES,
    RAW_CONTENT_TYPE,
    encode_request,
)
from tritonship.samples import encode, photo_array, photo_jpeg

Sender = Callable[[bytes, str], "Result"]


@dataclass(frozen=True)
class HostileCase:
    """One bad (or merely unusual) request and what the endpoint must do with it."""

    name: str
    body: bytes
    content_type: str
    accept: bool = False  # True: a valid answer is expected (a decision, see ``note``)
    note: str = ""


@dataclass(frozen=True)
class Result:
    """An HTTP status and the error message (or "ok")."""

    status: int
    message: str


def _binary(images: Sequence[bytes]) -> tuple[bytes, str]:
    request = encode_request(images)
    return request.body, request.content_type


def _json(inputs: list[dict[str, object]]) -> tuple[bytes, str]:
    return json.dumps({"inputs": inputs}).encode(), "application/json"


def _uint8(shape: list[int], data: list[int], name: str = "INPUT", dtype: str = "UINT8"):
    return _json([{"name": name, "shape": shape, "datatype": dtype, "data": data}])


def jpeg_bomb(width: int = 65_500, height: int = 65_500) -> bytes:
    """A small real JPEG whose header declares a huge image (4.3 gigapixels by default)."""
    data = bytearray(photo_jpeg("chelsea", quality=50))
    marker = data.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
    data[marker + 5 : marker + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def corrupt_jpeg() -> bytes:
    """A JPEG whose header is intact and whose image data is garbage (passes a header check)."""
    return photo_jpeg("chelsea")[:600] + bytes(range(256)) * 8


def noise(size: int = 5000) -> bytes:
    """Random bytes (seeded): no image format at all."""
    return np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()


def raw_cases(photo: bytes) -> list[HostileCase]:
    """Raw requests (json-header-size=0): the body is the image, one per request."""
    return [
        HostileCase("raw JPEG", photo, RAW_CONTENT_TYPE, accept=True, note="one image"),
        HostileCase("raw empty body", b"", RAW_CONTENT_TYPE),
        HostileCase("raw truncated JPEG", photo[: len(photo) // 2], RAW_CONTENT_TYPE),
        HostileCase("raw random bytes", noise(), RAW_CONTENT_TYPE),
        HostileCase("raw decompression bomb", jpeg_bomb(), RAW_CONTENT_TYPE),
    ]


def _cmyk_jpeg(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


def corpus() -> list[HostileCase]:
    """At least twenty hostile or unusual requests, in a fixed order."""
    photo, cat = photo_jpeg("chelsea"), photo_array("chelsea")
    body, ctype = _binary([photo])
    header = f"{BINARY_CONTENT_TYPE};json-header-size="
    oversize = _binary([photo + bytes(MAX_PAYLOAD_BYTES)])
    return [
        HostileCase("empty body", b"", "application/json"),
        HostileCase("malformed JSON", b'{"inputs": [', "application/json"),
        HostileCase("unknown content type", b"hello", "text/plain"),
        HostileCase("json-header-size non-numeric", body, header + "abc"),
        HostileCase("json-header-size negative", body, header + "-5"),
        HostileCase("json-header-size larger than the body", body, header + str(len(body) + 9)),
        HostileCase("wrong input name", *_uint8([1, 3], [1, 2, 3], name="IMAGE")),
        HostileCase("wrong datatype", *_uint8([1, 3], [1, 2, 3], dtype="FP32")),
        HostileCase("wrong rank", *_uint8([3], [1, 2, 3])),
        HostileCase("shape does not match the data", *_uint8([1, 10], [1, 2, 3])),
        HostileCase("batch of 0", *_uint8([0, 3], [])),
        HostileCase("batch of 257 (> max_batch_size)", *_binary([photo[:64]] * 257)),
        HostileCase("zero-length image", *_uint8([1, 0], [])),
        HostileCase("truncated JPEG", *_binary([photo[: len(photo) // 2]])),
        HostileCase("corrupt JPEG (intact header)", *_binary([corrupt_jpeg()])),
        HostileCase("random bytes", *_binary([noise()])),
        HostileCase("PNG", *_binary([encode(cat, "PNG")]), accept=True, note="decoded"),
        HostileCase("GIF", *_binary([encode(cat, "GIF")]), note="DALI has no GIF decoder"),
        HostileCase(
            "grayscale JPEG",
            *_binary([encode(cat.mean(axis=2).astype(np.uint8))]),
            accept=True,
            note="converted to RGB",
        ),
        HostileCase("CMYK JPEG", *_binary([_cmyk_jpeg(cat)]), accept=True, note="converted to RGB"),
        HostileCase(
            "1x1 image", *_binary([encode(cat[:1, :1])]), accept=True, note="upscaled to 299x299"
        ),
        HostileCase("decompression bomb (65500x65500 JPEG header)", *_binary([jpeg_bomb()])),
        HostileCase(
            "payload above SageMaker's 6 MB limit",
            *oversize,
            accept=True,
            note="refused by the runtime, as on AWS; the container accepts it",
        ),
        *raw_cases(photo),
    ]


def http_sender(url: str, timeout: float = 120.0) -> Sender:
    """Send raw bodies to ``url`` and read the status and error message."""
    session = requests.Session()

    def send(body: bytes, content_type: str) -> Result:
        response = session.post(
            url, data=body, headers={"Content-Type": content_type}, timeout=timeout
        )
        return Result(response.status_code, _message(response))

    return send


def _message(response: requests.Response) -> str:
    """The error text of an answer ("ok" for a 200)."""
    if response.status_code == 200:
        return "ok"
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return str(payload.get("error") or payload.get("Message") or payload.get("message"))[:300]


def markdown_table(rows: Sequence[tuple[str, Result, Result | None]]) -> str:
    """Case, status and message on the container port and through the local runtime."""
    lines = [
        "| case | container port | local runtime (boto3 sees) | message (container) |",
        "|---|---|---|---|",
    ]
    for name, direct, runtime in rows:
        via = str(runtime.status) if runtime else "-"
        message = direct.message.replace("|", "/").replace("\n", " ")[:140]
        lines.append(f"| {name} | {direct.status} | {via} | {message} |")
    return "\n".join(lines)


def run_corpus(url: str, runtime: str | None = None) -> str:
    """Send every case to the container at ``url`` (and the local runtime): the table."""
    direct = http_sender(f"{url.rstrip('/')}/invocations")
    via = (
        http_sender(f"{runtime.rstrip('/')}/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations")
        if runtime
        else None
    )
    rows = [
        (
            case.name,
            direct(case.body, case.content_type),
            via(case.body, case.content_type) if via else None,
        )
        for case in corpus()
    ]
    return markdown_table(rows)


def write_hostile_results(results_dir: Path, url: str, table: str) -> Path:
    """Keep the table in ``results_dir``, stamped with the machine, the server and the date."""
    title = f"# tritonship hardening: hostile requests against {url}"
    stamp = machine_stamp(server=server_version(url))
    return write_results(results_dir, "hardening", f"{title}\n\n{table}", stamp)
