"""The smoke test of a deployed endpoint: one real photo through InvokeEndpoint.

The request is KServe v2 JSON, which every client speaks (and the only kind moto's
InvokeEndpoint accepts: it fails on a body that is not UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonship.cloud.aws import describe
from tritonship.errors import TritonshipError, UsageError
from tritonship.sagemaker.wire import ResponseError, decode_response, encode_request

CLASSES = 1001
#: What moto's InvokeEndpoint answers when no result was queued: (body, Content-Type).
MOTO_PLACEHOLDER = (b"body", "content_type")
SAMPLE_PHOTO = "chelsea"


class SmokeTestFailed(TritonshipError):
    """The endpoint did not classify the smoke-test photo."""


@dataclass(frozen=True)
class SmokeResult:
    """Whether the answer was checked, and what was seen."""

    verified: bool
    detail: str


def photo_bytes(path: Path | None) -> bytes:
    """The smoke-test photo: ``path``, else scikit-image's cat photo as JPEG."""
    if path is not None:
        try:
            return path.read_bytes()
        except OSError as err:
            raise UsageError(
                f"cannot read the smoke-test photo {path}: {err.strerror}",
                hint="pass --photo with an image file, or --skip-smoke-test",
            ) from err
    from tritonship.samples import photo_jpeg

    return photo_jpeg(SAMPLE_PHOTO)


def check_output(output: Any) -> str:
    """Raise unless OUTPUT is one softmax row of 1001 classes; describe it."""
    if tuple(output.shape) != (1, CLASSES):
        raise SmokeTestFailed(f"OUTPUT has shape {list(output.shape)}, expected [1, {CLASSES}]")
    total = float(output.sum())
    if abs(total - 1.0) > 1e-3:
        raise SmokeTestFailed(f"OUTPUT sums to {total:.4f}, not 1: not a softmax")
    best = int(output[0].argmax())
    return f"OUTPUT [1,{CLASSES}] sums to {total:.4f}; top class #{best} (p={output[0, best]:.3f})"


def smoke_test(runtime: Any, endpoint: str, photo: bytes) -> SmokeResult:
    """Send one photo as JSON; check the answer, or say it could not be checked."""
    body, content_type = _invoke(runtime, endpoint, photo)
    if (body, content_type) == MOTO_PLACEHOLDER:
        return SmokeResult(
            False,
            "NOT VERIFIED: the endpoint answered moto's canned placeholder, not a model's output",
        )
    try:
        output = decode_response(body, content_type)
    except ResponseError as err:
        raise SmokeTestFailed(str(err)) from err
    return SmokeResult(True, check_output(output))


def _invoke(runtime: Any, endpoint: str, photo: bytes) -> tuple[bytes, str | None]:
    """InvokeEndpoint with the photo as KServe v2 JSON: the answer's body and Content-Type."""
    request = encode_request([photo], binary=False)
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, Body=request.body, ContentType=request.content_type
        )
        return response["Body"].read(), response.get("ContentType")
    except Exception as err:
        raise SmokeTestFailed(f"InvokeEndpoint failed: {describe(err)}") from err
