"""The wire format and limits of ``/invocations``, encoded with tritonclient.

Several images travel as one request: a UINT8 ``[N, L]`` batch, each row one encoded
image zero-padded to the longest (JPEG, PNG and GIF decoders stop at their end marker, so
the padding is ignored). One request lets Triton batch the whole set through DALI and
TensorFlow at once; it costs at most the padding of the shorter images.

A raw request (``json-header-size=0``) is the third format: the encoded image is the whole
body, with no JSON header at all. Triton takes the body as the model's single input, a
batch of one, and answers every output in binary (server r24.10
``docs/protocol/extension_binary_data.md``, "Raw Binary Request"). It carries one image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tritonclient.http as triton_http

from tritonship.errors import TritonshipError, UsageError

#: InvokeEndpoint's Body limit (``max`` of the Body shape in botocore's service model).
MAX_PAYLOAD_BYTES = 6_291_456
#: How long SageMaker waits for a real-time container's answer.
CONTAINER_TIMEOUT_SECONDS = 60.0
INPUT_NAME = "INPUT"
OUTPUT_NAME = "OUTPUT"
BINARY_CONTENT_TYPE = "application/vnd.sagemaker-triton.binary+json"
JSON_CONTENT_TYPE = "application/json"
#: A raw request: the body is one encoded image, no JSON header (json-header-size=0).
RAW_CONTENT_TYPE = f"{BINARY_CONTENT_TYPE};json-header-size=0"
#: The request formats: binary+json, plain JSON, and one raw image.
FORMATS = ("binary", "json", "raw")
_HEADER_SIZE = re.compile(r"json-header-size\s*=\s*([^;\s]*)", re.IGNORECASE)


class ResponseError(TritonshipError):
    """The endpoint answered something that is not a valid inference response."""


@dataclass(frozen=True)
class EncodedRequest:
    """A request body and the Content-Type it must be sent with."""

    body: bytes
    content_type: str


def image_batch(images: Sequence[bytes]) -> np.ndarray:
    """Stack encoded images into one zero-padded UINT8 ``[N, L]`` array."""
    if not images:
        raise UsageError("no images to send")
    width = max(len(image) for image in images)
    batch = np.zeros((len(images), width), dtype=np.uint8)
    for row, image in zip(batch, images, strict=True):
        row[: len(image)] = np.frombuffer(image, dtype=np.uint8)
    return batch


def encode_request(images: Sequence[bytes], binary: bool = True) -> EncodedRequest:
    """Encode images as a KServe v2 request: binary+json (default) or plain JSON."""
    batch = image_batch(images)
    tensor = triton_http.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    output = triton_http.InferRequestedOutput(OUTPUT_NAME, binary_data=binary)
    body, json_size = triton_http.InferenceServerClient.generate_request_body(
        [tensor], outputs=[output]
    )
    return EncodedRequest(body, content_type_for(json_size))


def encode_raw(image: bytes) -> EncodedRequest:
    """One encoded image as a raw request: the bytes are the whole body, unchanged."""
    return EncodedRequest(bytes(image), RAW_CONTENT_TYPE)


def encode_as(images: Sequence[bytes], fmt: str) -> EncodedRequest:
    """Encode ``images`` in one of :data:`FORMATS` (``raw`` takes exactly one image)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown request format {fmt!r}", f"choose from {', '.join(FORMATS)}")
    if fmt != "raw":
        return encode_request(images, binary=fmt == "binary")
    if len(images) != 1:
        raise UsageError(
            f"a raw request carries exactly one image, not {len(images)}",
            hint="send one image per raw request, or use --format binary to batch them",
        )
    return encode_raw(images[0])


def content_type_for(json_size: int | None) -> str:
    """SageMaker's Content-Type: binary+json with the header size, or JSON when None."""
    if json_size is None:
        return JSON_CONTENT_TYPE
    return f"{BINARY_CONTENT_TYPE};json-header-size={json_size}"


def header_size(content_type: str | None) -> int | None:
    """The JSON header size a binary+json Content-Type declares (None for plain JSON)."""
    if not content_type or BINARY_CONTENT_TYPE not in content_type.lower():
        return None
    match = _HEADER_SIZE.search(content_type)
    if not match or not match.group(1).isdigit():
        raise ResponseError(f"malformed Content-Type {content_type!r}: no json-header-size=N")
    return int(match.group(1))


def decode_response(body: bytes, content_type: str | None) -> np.ndarray:
    """Decode an inference response's ``OUTPUT`` tensor (binary+json or JSON)."""
    size = header_size(content_type)
    if size is not None and size > len(body):
        raise ResponseError(f"json-header-size={size} exceeds the {len(body)}-byte body")
    try:
        result = triton_http.InferenceServerClient.parse_response_body(body, header_length=size)
        output = result.as_numpy(OUTPUT_NAME)
    except Exception as err:  # tritonclient raises plain errors for malformed bodies
        raise ResponseError(f"cannot decode the response: {err}") from err
    if output is None:
        raise ResponseError(f"the response has no {OUTPUT_NAME} tensor")
    return output


def error_text(text: str) -> str:
    """Triton's ``{"error": "..."}`` message, or the raw text: one line, shortened."""
    try:
        message = str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        message = text
    return " ".join(message.split())[:500]
