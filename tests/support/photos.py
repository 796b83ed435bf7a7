"""Real photos that scikit-image ships, encoded to JPEG (no network)."""

from __future__ import annotations

import io

import numpy as np
import skimage.data
from PIL import Image

#: Colour photographs in skimage/data with their sizes (H x W).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_array(name: str) -> np.ndarray:
    """The RGB uint8 array of one of skimage's sample photos."""
    return np.asarray(getattr(skimage.data, name)())


def encode(array: np.ndarray, fmt: str = "JPEG", **options: object) -> bytes:
    """Encode an image array with Pillow."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_jpeg(name: str, quality: int = 90) -> bytes:
    """One of skimage's sample photos as JPEG bytes."""
    return encode(photo_array(name), "JPEG", quality=quality)
