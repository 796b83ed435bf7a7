"""Read a request body back: the inputs of a KServe v2 request, and the images inside them.

tritonclient encodes requests and decodes responses; nothing in it decodes a request, which
is what a captured request is. The layout (server r24.10
``docs/protocol/extension_binary_data.md``, "Binary Tensor Request"): with binary+json the
body is the JSON request (``json-header-size`` bytes) followed by the binary data of the
inputs that carry a ``binary_data_size`` parameter, in the order the JSON lists them,
little-endian, row-major, BYTES elements as a 4-byte length and the bytes; with
``json-header-size=0`` (a raw request) the whole body is the model's single input; any
other body is JSON, each input's ``data`` a (possibly nested) list.

Images: our clients send encoded images as a UINT8 ``[N, L]`` batch, each row zero-padded
to the longest (:func:`tritonship.sagemaker.wire.image_batch`), or one image as a raw
body. A row that starts like a JPEG, PNG or GIF is that file with the padding stripped:
the three formats end in a non-zero byte (JPEG's EOI ``FF D9``, PNG's IEND CRC ``AE 42 60
82``, GIF's trailer ``3B``), so trailing zeros are padding, never image bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tritonship.errors import TritonshipError
from tritonship.sagemaker.wire import ResponseError, header_size

#: Image signatures (first bytes) and the file extension they get.
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
)
#: The name a raw request's one input is shown under (the body names none).
RAW_INPUT = "(raw body)"


class RequestDecodeError(TritonshipError):
    """A request body that is not a valid inference request."""


@dataclass(frozen=True)
class RequestTensor:
    """One input of a request: its name, datatype, shape and values."""

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray
    binary: bool = False


@dataclass(frozen=True)
class DecodedRequest:
    """A request's inputs, the outputs it asked for, and its JSON header (None: raw)."""

    inputs: list[RequestTensor]
    outputs: list[str]
    header: dict[str, Any] | None
    kind: str  # "binary+json", "json" or "raw"


def decode_request(body: bytes, content_type: str | None) -> DecodedRequest:
    """The inputs of a request body sent with ``content_type``."""
    try:
        size = header_size(content_type)
    except ResponseError as err:
        raise RequestDecodeError(str(err)) from err
    if size == 0:
        array = np.frombuffer(body, dtype=np.uint8)
        tensor = RequestTensor(RAW_INPUT, "UINT8", [1, len(body)], array.reshape(1, -1), True)
        return DecodedRequest([tensor], [], None, "raw")
    if size is not None and size > len(body):
        raise RequestDecodeError(f"json-header-size={size} exceeds the {len(body)}-byte body")
    header = _header(body[:size] if size is not None else body)
    inputs = _inputs(header, body, size)
    outputs = [str(o.get("name")) for o in header.get("outputs") or [] if isinstance(o, dict)]
    return DecodedRequest(inputs, outputs, header, "json" if size is None else "binary+json")


def _header(text: bytes) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestDecodeError(f"the request's JSON does not parse: {err}") from err
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise RequestDecodeError("the request's JSON has no inputs list")
    return header


def _inputs(header: dict[str, Any], body: bytes, size: int | None) -> list[RequestTensor]:
    """Every input, its binary data taken in order from after the header."""
    offset = size or 0
    tensors = []
    for spec in header["inputs"]:
        length = (spec.get("parameters") or {}).get("binary_data_size")
        if length is None:
            tensors.append(_json_tensor(spec))
            continue
        if size is None or offset + int(length) > len(body):
            raise RequestDecodeError(
                f"input {spec.get('name')} declares {length} binary bytes the body does not hold"
            )
        tensors.append(_binary_tensor(spec, body[offset : offset + int(length)]))
        offset += int(length)
    if size is not None and offset != len(body):
        raise RequestDecodeError(
            f"the body has {len(body) - offset} bytes after its tensors: it was not captured "
            "byte for byte (binary+json captured as text?)"
        )
    return tensors


def _spec(spec: dict[str, Any]) -> tuple[str, str, list[int]]:
    try:
        return str(spec["name"]), str(spec["datatype"]), [int(d) for d in spec["shape"]]
    except (KeyError, TypeError, ValueError) as err:
        raise RequestDecodeError(f"an input lacks name, datatype or shape: {err}") from err


def _numpy_type(datatype: str) -> Any:
    from tritonclient.utils import triton_to_np_dtype

    dtype = triton_to_np_dtype(datatype)
    if dtype is None:
        raise RequestDecodeError(f"unknown datatype {datatype}")
    return dtype


def _binary_tensor(spec: dict[str, Any], data: bytes) -> RequestTensor:
    from tritonclient.utils import deserialize_bytes_tensor

    name, datatype, shape = _spec(spec)
    try:
        if datatype == "BYTES":
            flat = deserialize_bytes_tensor(data)
        else:
            flat = np.frombuffer(data, dtype=_numpy_type(datatype))
        array = flat.reshape(shape)
    except (ValueError, TypeError) as err:
        raise RequestDecodeError(f"input {name}: {len(data)} bytes are not {shape}: {err}") from err
    return RequestTensor(name, datatype, shape, array, True)


def _json_tensor(spec: dict[str, Any]) -> RequestTensor:
    name, datatype, shape = _spec(spec)
    dtype = np.object_ if datatype == "BYTES" else _numpy_type(datatype)
    try:
        array = np.array(spec.get("data"), dtype=dtype).reshape(shape)
    except (ValueError, TypeError) as err:
        raise RequestDecodeError(f"input {name}: its data is not {shape}: {err}") from err
    return RequestTensor(name, datatype, shape, array)


# --- images ---------------------------------------------------------------------------------


def image_extension(data: bytes) -> str | None:
    """``.jpg``, ``.png`` or ``.gif`` when ``data`` starts like one, else None."""
    return next((ext for magic, ext in IMAGE_SIGNATURES if data.startswith(magic)), None)


def images_in(tensor: RequestTensor) -> list[tuple[bytes, str]] | None:
    """The encoded images a UINT8 tensor carries, one per row; None when it carries none.

    Every row must start like an image: a tensor of pixels or other bytes is no image batch.
    """
    if tensor.datatype != "UINT8" or tensor.array.ndim not in (1, 2) or tensor.array.size == 0:
        return None
    rows = tensor.array.reshape(1, -1) if tensor.array.ndim == 1 else tensor.array
    found = []
    for row in rows:
        data = row.tobytes()
        ext = image_extension(data)
        if ext is None:
            return None
        found.append((data.rstrip(b"\0"), ext))
    return found
