"""DALI preprocessing parity with TF-slim's Inception V3 preprocessing, on real photos.

Tolerance: both sides decode with libjpeg-turbo's accurate integer IDCT (TF's
``dct_method="INTEGER_ACCURATE"``, DALI's CPU decoder default), so the decoded pixels are
identical and the only differences are float32 rounding in resize and scaling: measured
max |diff| is about 6e-5 here. We allow 1e-3, an eighth of one 8-bit grey level in the
[-1, 1] scale (1 level = 2/255 = 0.0078). ImageNet mean/std normalisation (the AWS
example's) differs by up to about 1.1 and must fail the same check.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tritonship.paths import DALI_PIPELINE_SOURCE
from tritonship.repository.dali import load_pipeline_module, run_pipeline
from tritonship.samples import PHOTOS, photo_jpeg

ATOL = 1e-3


@pytest.fixture(scope="module")
def pipeline_module():
    return load_pipeline_module(DALI_PIPELINE_SOURCE)


@pytest.fixture(scope="module")
def jpegs() -> list[np.ndarray]:
    return [np.frombuffer(photo_jpeg(name), np.uint8) for name in PHOTOS]


def tf_inception_reference(jpeg: bytes) -> np.ndarray:
    """TF-slim ``preprocess_for_eval`` for Inception V3 (299x299, central fraction 0.875)."""
    image = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE")
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.central_crop(image, central_fraction=0.875)
    image = tf.image.resize(image[None], [299, 299], method="bilinear", antialias=False)[0]
    return ((image - 0.5) * 2.0).numpy()


def imagenet_mean_std(module, jpegs: list[np.ndarray]) -> list[np.ndarray]:
    """The AWS example's pipeline: decode, resize to 299x299, ImageNet mean/std."""
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    @pipeline_def(batch_size=len(jpegs), num_threads=1, device_id=None)
    def aws_example():
        encoded = fn.external_source(name="DALI_INPUT_0")
        images = fn.decoders.image(encoded, device="cpu", output_type=types.RGB)
        images = fn.resize(images, resize_x=299, resize_y=299)
        return fn.crop_mirror_normalize(
            images,
            dtype=types.FLOAT,
            output_layout="HWC",
            mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
            std=[0.229 * 255, 0.224 * 255, 0.225 * 255],
        )

    pipe = aws_example()
    pipe.build()
    pipe.feed_input("DALI_INPUT_0", jpegs)
    (out,) = pipe.run()
    return [np.array(out[i]) for i in range(len(jpegs))]


def test_dali_cpu_matches_tensorflow_reference(pipeline_module, jpegs):
    outputs = run_pipeline(pipeline_module, jpegs, device_id=None)
    for name, jpeg, out in zip(PHOTOS, jpegs, outputs, strict=True):
        reference = tf_inception_reference(jpeg.tobytes())
        assert out.shape == reference.shape == (299, 299, 3), name
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, reference, atol=ATOL, err_msg=name)


def test_imagenet_mean_std_fails_the_same_check(pipeline_module, jpegs):
    outputs = imagenet_mean_std(pipeline_module, jpegs)
    for name, jpeg, out in zip(PHOTOS, jpegs, outputs, strict=True):
        reference = tf_inception_reference(jpeg.tobytes())
        assert not np.allclose(out, reference, atol=ATOL), name
        assert np.abs(out - reference).max() > 0.5, name


def test_pipeline_output_range_and_batching(pipeline_module, jpegs):
    batch = run_pipeline(pipeline_module, jpegs, device_id=None)
    single = run_pipeline(pipeline_module, jpegs[:1], device_id=None)
    assert all(out.min() >= -1.0 - 1e-6 and out.max() <= 1.0 + 1e-6 for out in batch)
    np.testing.assert_array_equal(batch[0], single[0])
