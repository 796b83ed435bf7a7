"""The one definition of the Inception V3 preprocessing pipeline (NVIDIA DALI).

This file is copied unchanged to ``model_repository/dali/1/dali.py`` by ``tritonship
build``. Triton's DALI backend serializes it with the server's own DALI at load time
(autoserialization), so a DALI version mismatch between the build machine and the
server image cannot break loading. On a GPU server the image decoder runs on "mixed"
(nvJPEG, with libjpeg's chroma upsampling); without a GPU it runs on the CPU. The CPU
stand-in backend of the native engine calls the same function with ``device_id=None``.

What the TF-slim Inception V3 graph expects (and what this pipeline produces):
decode to RGB, central crop of 87.5% (``tf.image.central_crop``: start = size // 16),
bilinear resize to 299x299 without antialiasing, scale to [-1, 1] (x / 127.5 - 1),
HWC float32.
"""

import nvidia.dali as dali
import nvidia.dali.fn as fn
import nvidia.dali.types as types
from nvidia.dali.plugin.triton import autoserialize

INPUT_NAME = "DALI_INPUT_0"
OUTPUT_NAME = "DALI_OUTPUT_0"
IMAGE_SIZE = 299
#: tf.image.central_crop(0.875) trims size // 16 from each side.
CROP_DIVISOR = 16


def default_device_id() -> int | None:
    """GPU 0 where DALI sees a CUDA device, else None (a CPU-only pipeline).

    Autoserialization calls ``pipeline()`` with its defaults, so this choice is what lets
    the same file serialize on a GPU server (mixed decoder) and a CPU-only one.
    """
    try:
        return 0 if dali.backend.GetCUDADeviceCount() > 0 else None
    except RuntimeError:
        return None


def decoder_device() -> str:
    """Return "mixed" (GPU decoding) when the pipeline being defined has a GPU, else "cpu"."""
    pipe = dali.Pipeline.current()
    if pipe is None or pipe.device_id is None or pipe.device_id == types.CPU_ONLY_DEVICE_ID:
        return "cpu"
    return "mixed"


def decoder_arguments(device: str) -> dict:
    """The image decoder's arguments on ``device``.

    On "mixed", ``jpeg_fancy_upsampling=True``: nvJPEG then upsamples chroma as libjpeg does
    (the CPU decoder, and TensorFlow's reference decoding); its default, False, gives other
    colours for every chroma-subsampled (4:2:0, 4:2:2) JPEG. The CPU decoder gets nothing
    more: its output is unchanged.
    """
    arguments = {"device": device, "output_type": types.RGB}
    if device == "mixed":
        arguments["jpeg_fancy_upsampling"] = True
    return arguments


def inception_preprocess(encoded, device: str):
    """Decode, central-crop 87.5%, resize to 299x299 and scale to [-1, 1] (HWC float32)."""
    images = fn.decoders.image(encoded, **decoder_arguments(device))
    shape = fn.peek_image_shape(encoded, dtype=types.INT32)
    height, width = shape[0], shape[1]
    top, left = height // CROP_DIVISOR, width // CROP_DIVISOR
    anchor = fn.stack(top, left)
    size = fn.stack(height - 2 * top, width - 2 * left)
    cropped = fn.slice(images, anchor, size, axes=[0, 1], out_of_bounds_policy="error")
    resized = fn.resize(
        cropped,
        size=[IMAGE_SIZE, IMAGE_SIZE],
        interp_type=types.INTERP_LINEAR,
        antialias=False,
        dtype=types.FLOAT,
    )
    return resized / 127.5 - 1.0


@autoserialize
@dali.pipeline_def(batch_size=256, num_threads=4, device_id=default_device_id())
def pipeline():
    """Triton model ``dali``: encoded image bytes in, Inception V3 input tensor out."""
    encoded = fn.external_source(device="cpu", name=INPUT_NAME, no_copy=True)
    return inception_preprocess(encoded, decoder_device())
