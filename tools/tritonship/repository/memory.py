"""The DALI step's GPU memory budget: how many decoded pixels one GPU may be asked to hold.

On a GPU instance the ``mixed`` decoder writes every image of a run into GPU memory (3
bytes per pixel, RGB), then crops and resizes it there. The ``dali`` model has no dynamic
batcher (docs/hardening.md), so a run holds the images of one request: at most
``max_batch_size`` images, each at most the guard's ``max_pixels``. With the shipped
values that is 256 x 40 megapixels x 3 bytes = 30.7 GB, more than a T4 (16 GiB) or an A10G
(24 GiB) has. DALI also keeps what it once allocated until the process exits
(dali_backend r24.09 ``docs/config.md``, "release_after_unload"), so one such request
would leave the classifier short of memory for good.

A GPU build therefore gives the decoded images of one run a budget, a share of one GPU's
memory, and makes the guard refuse a request whose images would decode to more
(``max_request_pixels``); ``validate`` checks that nothing can exceed it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes of one decoded pixel (uint8 RGB, the decoder's output).
BYTES_PER_PIXEL = 3
#: The share of one GPU's memory the decoded images of the DALI step may take. Reasoned, not
#: measured: the decoded images are the largest buffer a request controls; DALI's other
#: buffers (nvJPEG's, the crop) are of the same order, and the classifier, its CUDA context
#: and a TensorRT workspace need the rest.
DALI_SHARE = 0.25


@dataclass(frozen=True)
class DecodeBound:
    """What bounds the decoded images of one DALI run on one GPU."""

    images: int
    max_pixels: int
    max_request_pixels: int | None
    instances: int

    @property
    def pixels_per_run(self) -> int:
        """The most pixels one run may decode: a full batch, or the per-request limit."""
        full = self.images * self.max_pixels
        return full if self.max_request_pixels is None else min(full, self.max_request_pixels)

    @property
    def bytes(self) -> int:
        """The decoded bytes all DALI instances of one GPU may hold at once."""
        return self.instances * self.pixels_per_run * BYTES_PER_PIXEL


def dali_budget(gpu_memory_bytes: int) -> int:
    """The decoded-image budget on a GPU of ``gpu_memory_bytes``."""
    return int(gpu_memory_bytes * DALI_SHARE)


def request_pixel_limit(budget_bytes: int, instances: int = 1) -> int:
    """The guard's ``max_request_pixels`` that keeps ``instances`` runs within the budget."""
    return budget_bytes // (BYTES_PER_PIXEL * max(instances, 1))


def gib(size: int) -> str:
    """``4.0 GiB``-style text."""
    return f"{size / (1 << 30):.1f} GiB"
