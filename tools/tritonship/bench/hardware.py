"""How close to the hardware the served path runs: the machine's compute rate, the model's cost.

The rate is what this machine's CPUs reach with the best compiled kernel: a large matmul
and an Inception-sized convolution, each traced once as a ``tf.function`` (graph mode, the
kernels a frozen graph runs), best of several short timed runs (other processes slow some
of them down; the best is the machine's). Slower paths understate it: on the 2-core machine
of docs/benchmarking.md numpy's 2048x2048 matmul reached 131 GFLOP/s against the compiled
matmul's 414 (eager TensorFlow 363, the convolution 493); against them the served path
would look faster than the hardware.

Inception V3 costs 5.71 G multiply-adds per 299x299 image (``models/inception_v3.py``),
2 operations each: 11.42 GFLOP. Images/s x 11.42 is the GFLOP/s the classifier computes;
over the rate, the share of the hardware it uses; the rate over 11.42, the images/s the
classifier alone could reach at best.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tritonship.assets.models.inception_v3 import MULTIPLY_ADDS

#: A multiply-add is two floating-point operations.
FLOP_PER_MULTIPLY_ADD = 2
#: Inception V3's cost per image, in GFLOP.
INCEPTION_GFLOP = FLOP_PER_MULTIPLY_ADD * MULTIPLY_ADDS / 1e9
#: The matmul: two square float32 matrices of this side (about 40 ms a product here).
MATMUL_SIDE = 2048
#: The convolution: a 3x3, stride 1, of 8 maps of 35x35x288 into 384 channels (the size of
#: the network's 35x35 blocks).
CONVOLUTION = (8, 35, 35, 288, 3, 3, 384)


@dataclass(frozen=True)
class ComputeRate:
    """The best GFLOP/s of the kernels tried, which kernel gave it, and each kernel's."""

    gflops: float
    kernel: str
    kernels: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, kernels: dict[str, float]) -> ComputeRate:
        """The best of ``kernels`` ({name: GFLOP/s})."""
        name = max(kernels, key=lambda kernel: kernels[kernel])
        return cls(kernels[name], name, dict(kernels))


def matmul_flop(side: int) -> int:
    """Floating-point operations of one ``side`` x ``side`` matrix product."""
    return FLOP_PER_MULTIPLY_ADD * side**3


def convolution_flop(
    batch: int, height: int, width: int, channels: int, kernel_h: int, kernel_w: int, filters: int
) -> int:
    """Floating-point operations of a stride-1 "same" convolution."""
    return FLOP_PER_MULTIPLY_ADD * batch * height * width * channels * kernel_h * kernel_w * filters


def gflops(flop: float, runs: int, seconds: float) -> float:
    """GFLOP/s of ``runs`` kernels of ``flop`` each in ``seconds``."""
    return flop * runs / seconds / 1e9 if seconds > 0 else 0.0


def served_gflops(images_per_second: float, gflop_per_image: float = INCEPTION_GFLOP) -> float:
    """The GFLOP/s a classifier computes at ``images_per_second``."""
    return images_per_second * gflop_per_image


def hardware_share(
    images_per_second: float, rate: ComputeRate, gflop_per_image: float = INCEPTION_GFLOP
) -> float:
    """The share of the machine's compute rate that ``images_per_second`` uses."""
    return served_gflops(images_per_second, gflop_per_image) / rate.gflops


def images_at_full_rate(rate: ComputeRate, gflop_per_image: float = INCEPTION_GFLOP) -> float:
    """The images/s the classifier alone could reach if it ran at the machine's rate."""
    return rate.gflops / gflop_per_image


def time_kernel(run: Callable[[], object], flop: float, seconds: float, repeats: int) -> float:
    """The best GFLOP/s of ``repeats`` timings of ``run`` (each at least ``seconds`` long)."""
    run()  # traces the function and warms the caches: not timed
    found = 0.0
    for _ in range(repeats):
        runs, began = 0, time.perf_counter()
        while runs == 0 or time.perf_counter() - began < seconds:
            run()
            runs += 1
        found = max(found, gflops(flop, runs, time.perf_counter() - began))
    return found


def measure_compute_rate(seconds: float = 0.3, repeats: int = 5) -> ComputeRate:
    """The compute rate here: the best of the matmul and the convolution."""
    import tensorflow as tf

    side = MATMUL_SIDE
    left, right = tf.random.uniform((side, side)), tf.random.uniform((side, side))
    batch, height, width, channels, kernel_h, kernel_w, filters = CONVOLUTION
    maps = tf.random.uniform((batch, height, width, channels))
    weights = tf.random.uniform((kernel_h, kernel_w, channels, filters))

    @tf.function(autograph=False)
    def product() -> tf.Tensor:
        return tf.matmul(left, right)

    @tf.function(autograph=False)
    def convolution() -> tf.Tensor:
        return tf.nn.conv2d(maps, weights, strides=1, padding="SAME")

    kernels = {
        f"tf.function matmul {side}x{side}": time_kernel(
            lambda: product().numpy(), matmul_flop(side), seconds, repeats
        ),
        f"tf.function conv 3x3 {height}x{width}x{channels}->{filters} (batch {batch})": time_kernel(
            lambda: convolution().numpy(), convolution_flop(*CONVOLUTION), seconds, repeats
        ),
    }
    return ComputeRate.of(kernels)
