"""Real sample photos that scikit-image ships (``skimage/data``), encoded to JPEG.

``python -m tritonship.samples DIR`` writes them to DIR (used by ``make demo``).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

from tritonship.errors import UsageError

#: Colour photographs in skimage/data: an astronaut (512x512), a coffee cup (400x600),
#: a tabby cat (300x451) and a rocket (427x640).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_array(name: str) -> np.ndarray:
    """The RGB uint8 array of one of scikit-image's sample photos."""
    import skimage.data

    if name not in PHOTOS:
        raise UsageError(f"unknown sample photo {name!r}", hint=f"choose from {', '.join(PHOTOS)}")
    return np.asarray(getattr(skimage.data, name)())


def encode(array: np.ndarray, fmt: str = "JPEG", **options: object) -> bytes:
    """Encode an image array with Pillow (JPEG, PNG, GIF, ...)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_jpeg(name: str, quality: int = 90) -> bytes:
    """One of the sample photos as JPEG bytes."""
    return encode(photo_array(name), "JPEG", quality=quality)


def write_samples(folder: Path, names: tuple[str, ...] = PHOTOS) -> list[Path]:
    """Write the sample photos as ``<name>.jpg`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.jpg"
        path.write_bytes(photo_jpeg(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "samples")):
        print(written)
