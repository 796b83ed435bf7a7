"""The ensemble's first step: refuse images that must never reach the decoder, one by one.

A Python-backend model (``backend: "python"``), part of the repository, so it runs on the
SageMaker container exactly as on the native engine. It uses numpy and the standard
library only: the Triton image's Python backend has numpy, not Pillow.

For every image of every request it reads the header (no decoding) and refuses, with
TRITONSERVER_ERROR_INVALID_ARG (HTTP 400) for that request alone:

- an empty image (no bytes, or only zero padding);
- a format other than JPEG, PNG, BMP, WebP, TIFF or PNM (DALI decodes those and JPEG
  2000; GIF, random bytes and JSON sent as raw bytes stop here);
- a header that cannot be read, or declares a zero width or height;
- a header that declares more than ``max_pixels`` (config parameter, 40 megapixels): a
  decompression bomb, a small file whose decoding would allocate gigabytes;
- with the ``max_request_pixels`` parameter (a GPU build sets it from the GPU's memory,
  tools/tritonship/repository/memory.py), a request whose images declare more pixels in
  all: the GPU decoder holds every image of a request at once.

Accepted images pass on unchanged. What the header cannot show (a truncated or corrupt
body) is left to the decoder; the ``dali`` model runs without a dynamic batcher so that
such a failure reaches only the request that carried the image (docs/hardening.md).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton: the unit tests of the header checks
    pb_utils = None

INPUT_NAME = "IMAGE"
OUTPUT_NAME = "CHECKED_IMAGE"
DEFAULT_MAX_PIXELS = 40_000_000
#: A PNM header: magic number, then width and height (whitespace or comments between).
_PNM = re.compile(rb"P[1-6](?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)")
#: JPEG start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (not DHT C4, JPG C8, DAC CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field: TEM, RST0-7, SOI.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


class HeaderError(ValueError):
    """The image's header is missing, cut short or inconsistent."""


# --- image headers --------------------------------------------------------------------------


def _jpeg(data: bytes) -> tuple[int, int]:
    """Walk the marker segments up to the first start-of-frame: ``(width, height)``."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise HeaderError("a JPEG marker is missing (corrupt header)")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):
            raise HeaderError("the JPEG has no frame header before its image data")
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in _SOF and position + 9 <= len(data):
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width, height
        position += 2 + length
    raise HeaderError("the JPEG header is cut short")


def _png(data: bytes) -> tuple[int, int]:
    """IHDR, the first chunk: ``(width, height)``."""
    if data[12:16] != b"IHDR":
        raise HeaderError("the PNG has no IHDR chunk")
    if len(data) < 24:
        raise HeaderError("the PNG header is cut short")
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _bmp(data: bytes) -> tuple[int, int]:
    """The DIB header after the 14-byte file header: ``(width, |height|)``."""
    if len(data) < 26:
        raise HeaderError("the BMP header is cut short")
    (size,) = struct.unpack_from("<I", data, 14)
    if size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)


def _webp(data: bytes) -> tuple[int, int]:
    """The first chunk of a RIFF/WEBP file: VP8 (lossy), VP8L (lossless) or VP8X."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise HeaderError("the WebP header is cut short or of an unknown kind")


def _tiff(data: bytes) -> tuple[int, int]:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, offset)
        sizes = {}
        for entry in range(offset + 2, offset + 2 + 12 * count, 12):
            tag, kind = struct.unpack_from(order + "HH", data, entry)
            if tag in (256, 257):
                code = "H" if kind == 3 else "I"
                (sizes[tag],) = struct.unpack_from(order + code, data, entry + 8)
    except struct.error as err:
        raise HeaderError("the TIFF directory is cut short") from err
    if 256 not in sizes or 257 not in sizes:
        raise HeaderError("the TIFF directory has no image width or length")
    return sizes[256], sizes[257]


def _pnm(data: bytes) -> tuple[int, int]:
    """The width and height after the magic number (comments allowed)."""
    match = _PNM.match(data[:1024])
    if match is None:
        raise HeaderError("the PNM header is cut short")
    return int(match.group(1)), int(match.group(2))


#: (format, test on the first bytes, header reader); the formats the dali step decodes.
FORMATS: tuple[tuple[str, Callable[[bytes], bool], Callable[[bytes], tuple[int, int]]], ...] = (
    ("JPEG", lambda d: d[:3] == b"\xff\xd8\xff", _jpeg),
    ("PNG", lambda d: d[:8] == b"\x89PNG\r\n\x1a\n", _png),
    ("BMP", lambda d: d[:2] == b"BM", _bmp),
    ("WebP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    ("TIFF", lambda d: d[:4] in (b"II*\x00", b"MM\x00*"), _tiff),
    ("PNM", lambda d: d[:1] == b"P" and d[1:2] in b"123456" and len(d) > 2, _pnm),
)
ACCEPTED = ", ".join(name for name, _, _ in FORMATS[:-1]) + f" or {FORMATS[-1][0]}"


def declared_size(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header; HeaderError when it cannot tell."""
    for name, matches, read in FORMATS:
        if matches(data):
            try:
                width, height = read(data)
            except (struct.error, IndexError) as err:
                raise HeaderError(f"the {name} header is cut short") from err
            return name, width, height
    raise HeaderError(f"not a {ACCEPTED} image")


def image_problem(image: np.ndarray, max_pixels: int) -> str | None:
    """Why one encoded image must not be decoded, or None."""
    if image.size == 0 or not image.any():
        return "is empty (no bytes)"
    try:
        kind, width, height = declared_size(image.tobytes())
    except HeaderError as err:
        return f"cannot be read: {err}"
    if width == 0 or height == 0:
        return f"declares a {width}x{height} {kind} image (no pixels)"
    if width * height > max_pixels:
        return (
            f"declares {width}x{height} pixels, more than the limit of "
            f"{max_pixels / 1_000_000:g} megapixels (a decompression bomb?)"
        )
    return None


def request_problem(
    images: np.ndarray, max_pixels: int, max_request_pixels: int | None = None
) -> str | None:
    """The first refused image of one request (rows of a padded batch), or None.

    With ``max_request_pixels``, a request whose images declare more pixels in all is
    refused too: the decoder holds all of them at once.
    """
    rows = images.reshape(1, -1) if images.ndim == 1 else images.reshape(len(images), -1)
    for index, row in enumerate(rows, 1):
        problem = image_problem(row, max_pixels)
        if problem:
            return f"guard: image {index} of {len(rows)} {problem}"
    if max_request_pixels is None:
        return None
    total = sum(width * height for _, width, height in map(declared_size, map(bytes, rows)))
    if total > max_request_pixels:
        return (
            f"guard: the {len(rows)} images declare {total / 1_000_000:g} megapixels in all, "
            f"more than the limit of {max_request_pixels / 1_000_000:g} megapixels per "
            "request (the decoder's memory budget): send fewer or smaller images per request"
        )
    return None


# --- the Triton model -----------------------------------------------------------------------


class TritonPythonModel:
    """Check every request's images; pass the accepted ones on unchanged."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the limits: ``max_pixels`` per image, ``max_request_pixels`` per request."""
        parameters = json.loads(args["model_config"]).get("parameters", {})
        limit = parameters.get("max_pixels", {}).get("string_value")
        self.max_pixels = int(limit) if limit else DEFAULT_MAX_PIXELS
        per_request = parameters.get("max_request_pixels", {}).get("string_value")
        self.max_request_pixels = int(per_request) if per_request else None

    def execute(self, requests: list) -> list:
        """One response per request: its images unchanged, or why they are refused."""
        return [self._check(request) for request in requests]

    def _check(self, request) -> object:
        """Check one request; never raise (an exception would fail the whole batch)."""
        try:
            images = pb_utils.get_input_tensor_by_name(request, INPUT_NAME).as_numpy()
            problem = request_problem(images, self.max_pixels, self.max_request_pixels)
        except Exception as err:  # a bug here must cost one request, not the batch
            problem = f"guard: the request cannot be checked: {err}"
        if problem:
            error = pb_utils.TritonError(problem, pb_utils.TritonError.INVALID_ARG)
            return pb_utils.InferenceResponse(error=error)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(OUTPUT_NAME, images)])
