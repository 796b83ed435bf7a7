"""The DALI stand-in's pure helpers: no ``triton_python_backend_utils``, so tests import them.

``model.py`` (loaded by the Python backend stub) imports this sibling module; the unit tests
load it by file path (tests/unit/test_standins.py).
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Largest image (width x height) decoded; TRITONSHIP_MAX_IMAGE_PIXELS overrides.
MAX_PIXELS = int(os.environ.get("TRITONSHIP_MAX_IMAGE_PIXELS", 40_000_000))
#: What DALI's image decoder reads (GIF, for one, is not among them).
SUPPORTED_FORMATS = "JPEG, PNG, BMP, TIFF, WebP, JPEG 2000, PNM"
#: Per-request samples: one list of 1-D uint8 arrays per config input.
Samples = dict[str, list[np.ndarray]]


def load_pipeline_factory(path: Path) -> Callable[..., Any]:
    """Import ``path`` and return its ``@autoserialize`` pipeline_def (or ``pipeline``)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"DALI pipeline source {path} does not exist (run tritonship build)"
        )
    spec = importlib.util.spec_from_file_location(f"_tritonship_dali_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True  # never write __pycache__ into the model repository
    spec.loader.exec_module(module)
    marked = [f for f in vars(module).values() if getattr(f, "_is_autoserialize", False)]
    if len(marked) == 1:
        return marked[0]
    if callable(getattr(module, "pipeline", None)):
        return module.pipeline
    raise ValueError(f"{path} must define exactly one @autoserialize pipeline_def")


def describe_dali_error(error: Exception) -> str:
    """Reduce a multi-line DALI error to the operator and the cause."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    operator = next((line for line in lines if line.startswith("Error in ")), "")
    causes = [line for line in lines if "no longer valid" not in line and line != "encountered:"]
    cause = causes[-1] if causes else type(error).__name__
    return f"{operator.rstrip(',')}: {cause}" if operator else cause


def split_rows(array: np.ndarray, batching: bool) -> list[np.ndarray]:
    """Split one request's tensor into per-image byte arrays (padded rows or ragged)."""
    if not batching or array.ndim == 1:
        return [np.ascontiguousarray(array.reshape(-1))]
    return [np.ascontiguousarray(row.reshape(-1)) for row in array]


def decode_failure(index: int, count: int, error: Exception) -> str:
    """The message for an image DALI could not decode (``index`` counts from 0)."""
    return (
        f"dali: image {index + 1} of {count} cannot be decoded (corrupt, truncated or "
        f"not {SUPPORTED_FORMATS}): {describe_dali_error(error)}"
    )


def screen_request(samples: Samples) -> str | None:
    """Refuse a request before decoding: an empty image, or one declaring too many pixels.

    Image headers are read with Pillow (no decoding), so a small file that declares a
    huge image (a decompression bomb) is refused without allocating its pixels.
    """
    for images in samples.values():
        for index, image in enumerate(images, 1):
            problem = screen_image(image)
            if problem:
                return f"dali: image {index} of {len(images)} {problem}"
    return None


def screen_image(image: np.ndarray) -> str | None:
    """Why one encoded image must not be decoded, or None."""
    if image.size == 0 or not image.any():
        return "is empty (no bytes)"
    width, height = declared_size(image.tobytes())
    if width * height > MAX_PIXELS:
        return (
            f"declares {width}x{height} pixels, more than the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels (a decompression bomb?)"
        )
    return None


def declared_size(data: bytes) -> tuple[int, int]:
    """Width and height from the image header, (0, 0) when Pillow cannot tell."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, without Pillow's warning
    try:
        with Image.open(io.BytesIO(data)) as header:
            return header.size
    except Exception:  # unknown or corrupt: DALI decides and reports it
        return 0, 0
