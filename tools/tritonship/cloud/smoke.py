"""The smoke test of a deployed endpoint: one request through InvokeEndpoint, its answer checked.

For our Inception ensemble the request is a real photo and the answer must be one softmax
row of 1001 classes. For any other model the request is made up from the inputs its
package manifest records (zeros of each input's type, free dimensions 1), and the answer
must be a valid inference response carrying every output the config declares: the model
loaded and ran, whatever its numbers mean. A model with a BYTES input gets no made-up
request (zeros are no valid string for most such models): its smoke test is skipped, and
the plan says so.

The request names the promoted production variant (``TargetVariant``): otherwise the
variants' weights decide which one answers, and a new variant at weight 0.1 would rarely
be the one tested (InvokeEndpoint's ``TargetVariant`` overrides the weights: API reference
"InvokeEndpoint"). On a multi-model endpoint it also names its target model
(``TargetModel``, the archive's name under the prefix); the first call loads it.

The request is KServe v2 JSON, which every client speaks (and the only kind moto's
InvokeEndpoint accepts: it fails on a body that is not UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonship.artifact.manifest import InputSpec, Invocation
from tritonship.cloud.aws import describe
from tritonship.errors import TritonshipError, UsageError
from tritonship.sagemaker import local_aws
from tritonship.sagemaker.wire import (
    JSON_CONTENT_TYPE,
    ResponseError,
    decode_response,
    encode_request,
)

CLASSES = 1001
#: What moto's InvokeEndpoint answers when no result was queued: (body, Content-Type).
MOTO_PLACEHOLDER = local_aws.MOTO_PLACEHOLDER
#: What moto's InvokeEndpointAsync writes as the output when no result was queued
#: (moto 5.2 sagemakerruntime/models.py, invoke_endpoint_async).
MOTO_ASYNC_PLACEHOLDER = b'{"default": "response"}'
SAMPLE_PHOTO = "chelsea"
#: The folder name of our own ensemble: the only model the photo check applies to.
CLASSIFIER_ENSEMBLE = "ensemble_dali_inception"


class SmokeTestFailed(TritonshipError):
    """The endpoint did not answer the smoke-test request as it should."""


@dataclass(frozen=True)
class SmokeResult:
    """Whether the answer was checked, and what was seen."""

    verified: bool
    detail: str


@dataclass(frozen=True)
class SmokeRequest:
    """One smoke-test request: the body, how to check the answer, and where it goes.

    ``outputs`` empty: the Inception check (OUTPUT [1,1001], a softmax row); otherwise the
    output names the answer must carry. ``target_model``: the archive a multi-model
    endpoint loads for it.
    """

    body: bytes
    content_type: str
    description: str
    outputs: tuple[str, ...] = ()
    target_model: str | None = None


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


def photo_request(path: Path | None, target_model: str | None = None) -> SmokeRequest:
    """The Inception smoke test: one photo as KServe v2 JSON."""
    request = encode_request([photo_bytes(path)], binary=False)
    what = f"{path} as JSON" if path else "scikit-image's cat photo as JSON"
    return SmokeRequest(request.body, request.content_type, what, (), target_model)


def generic_request(
    invocation: Invocation, target_model: str | None = None
) -> tuple[SmokeRequest | None, str]:
    """A made-up request for the recorded inputs, or None and the reason there is none."""
    import tritonclient.http as triton_http

    model = invocation.model
    unusable = [i for i in invocation.inputs if _dtype(i.datatype) is None]
    if unusable:
        spec = unusable[0]
        kind = f"{spec.datatype} input {spec.name}"
        return None, f"{model} takes {kind}: no request of zeros would be valid for it"
    tensors = [_zeros(spec) for spec in invocation.inputs]
    names = tuple(invocation.outputs)
    outputs = [triton_http.InferRequestedOutput(name, binary_data=False) for name in names]
    body, _ = triton_http.InferenceServerClient.generate_request_body(tensors, outputs=outputs)
    shapes = ", ".join(f"{t.name()} {t.datatype()} {t.shape()}" for t in tensors)
    what = f"zeros for {model}'s inputs ({shapes}) as JSON"
    return SmokeRequest(body, JSON_CONTENT_TYPE, what, names, target_model), ""


def _dtype(datatype: str) -> Any:
    """The numpy type of a KServe datatype; None for BYTES (and anything unknown)."""
    from tritonclient.utils import triton_to_np_dtype

    return None if datatype == "BYTES" else triton_to_np_dtype(datatype)


def _zeros(spec: InputSpec) -> Any:
    """One input of zeros, its free dimensions (-1) set to 1, as JSON data."""
    import tritonclient.http as triton_http

    shape = [1 if dim < 0 else dim for dim in spec.shape]
    tensor = triton_http.InferInput(spec.name, shape, spec.datatype)
    tensor.set_data_from_numpy(np.zeros(shape, dtype=_dtype(spec.datatype)), binary_data=False)
    return tensor


def check_output(output: Any) -> str:
    """Raise unless OUTPUT is one softmax row of 1001 classes; describe it."""
    if tuple(output.shape) != (1, CLASSES):
        raise SmokeTestFailed(f"OUTPUT has shape {list(output.shape)}, expected [1, {CLASSES}]")
    total = float(output.sum())
    if abs(total - 1.0) > 1e-3:
        raise SmokeTestFailed(f"OUTPUT sums to {total:.4f}, not 1: not a softmax")
    best = int(output[0].argmax())
    return f"OUTPUT [1,{CLASSES}] sums to {total:.4f}; top class #{best} (p={output[0, best]:.3f})"


def check_outputs(body: bytes, content_type: str | None, names: tuple[str, ...]) -> str:
    """Raise unless the answer is an inference response with every output in ``names``."""
    import tritonclient.http as triton_http

    from tritonship.sagemaker.wire import header_size

    try:
        result = triton_http.InferenceServerClient.parse_response_body(
            body, header_length=header_size(content_type)
        )
        arrays = {name: result.as_numpy(name) for name in names}
    except Exception as err:  # tritonclient raises plain errors for malformed bodies
        raise SmokeTestFailed(f"cannot decode the answer: {err}") from err
    missing = [name for name, array in arrays.items() if array is None]
    if missing:
        raise SmokeTestFailed(f"the answer has no {', '.join(missing)}")
    return ", ".join(f"{name} {list(array.shape)}" for name, array in arrays.items()) + " answered"


def smoke_test(
    runtime: Any, endpoint: str, request: SmokeRequest, variant: str | None = None
) -> SmokeResult:
    """Send the request to ``variant``; check the answer, or say it could not be checked."""
    body, content_type = _invoke(runtime, endpoint, request, variant)
    return check_answer(body, content_type, request)


def check_answer(body: bytes, content_type: str | None, request: SmokeRequest) -> SmokeResult:
    """Check an answer to the smoke-test request (moto's placeholders: not verified)."""
    if local_aws.is_placeholder(body, content_type) or body == MOTO_ASYNC_PLACEHOLDER:
        return SmokeResult(
            False,
            "NOT VERIFIED: the endpoint answered moto's canned placeholder, not a model's output",
        )
    if request.outputs:
        return SmokeResult(True, check_outputs(body, content_type, request.outputs))
    try:
        output = decode_response(body, content_type)
    except ResponseError as err:
        raise SmokeTestFailed(str(err)) from err
    return SmokeResult(True, check_output(output))


def invoke_arguments(
    endpoint: str, request: SmokeRequest, variant: str | None = None
) -> dict[str, Any]:
    """InvokeEndpoint's arguments: ``TargetVariant``, and ``TargetModel`` on a multi-model one."""
    arguments = {
        "EndpointName": endpoint,
        "Body": request.body,
        "ContentType": request.content_type,
    }
    if variant:
        arguments["TargetVariant"] = variant
    if request.target_model:
        arguments["TargetModel"] = request.target_model
    return arguments


def _invoke(
    runtime: Any, endpoint: str, request: SmokeRequest, variant: str | None
) -> tuple[bytes, str | None]:
    """InvokeEndpoint: the answer's body and Content-Type."""
    try:
        response = runtime.invoke_endpoint(**invoke_arguments(endpoint, request, variant))
        return response["Body"].read(), response.get("ContentType")
    except Exception as err:
        raise SmokeTestFailed(f"InvokeEndpoint failed: {describe(err)}") from err
