"""Real photos that scikit-image ships, encoded to JPEG (no network)."""

from tritonship.samples import PHOTOS, encode, photo_array, photo_jpeg

__all__ = ["PHOTOS", "encode", "photo_array", "photo_jpeg"]
