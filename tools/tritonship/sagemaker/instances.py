"""SageMaker GPU instance types: vCPUs, GPUs and GPU memory, for sizing a GPU build.

``tritonship build --device gpu --instance-type T`` sizes the DALI step's CPU threads and
its GPU memory budget for ``T``; ``promote`` deploys to ``T``. Both default to
:data:`DEFAULT_INSTANCE_TYPE`, so a build and a promote without the option agree.

The figures are AWS's (per instance: GPUs, total GPU memory, vCPUs): the Amazon EC2 G4 and
G5 instance pages (https://aws.amazon.com/ec2/instance-types/g4/,
https://aws.amazon.com/ec2/instance-types/g5/) and the table of GPU instance types in the
AWS Batch user guide ("GPU jobs": g4dn.xlarge 1 GPU, 16 GiB, 4 vCPUs; g5.xlarge 1 GPU,
24 GiB, 4 vCPUs; g4dn.12xlarge 4 GPUs, 64 GiB, 48 vCPUs; ...). SageMaker's ``ml.`` types
are these EC2 types.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritonship.errors import UsageError

#: A GPU type the 24.09 GPU image runs on (moto's list rejects ml.g5.*; AWS accepts both).
DEFAULT_INSTANCE_TYPE = "ml.g4dn.xlarge"

_GIB = 1 << 30


@dataclass(frozen=True)
class InstanceType:
    """One SageMaker instance type as a GPU build sees it."""

    name: str
    vcpus: int
    gpus: int
    gpu: str
    gpu_memory_gib: int
    """Memory of ONE GPU (AWS lists the instance's total: divided by ``gpus`` here)."""

    @property
    def gpu_memory_bytes(self) -> int:
        """Memory of one GPU, in bytes."""
        return self.gpu_memory_gib * _GIB

    @property
    def vcpus_per_gpu(self) -> int:
        """The vCPUs each GPU's model instances share (Triton puts one instance per GPU)."""
        return max(1, self.vcpus // self.gpus)


def _family(prefix: str, gpu: str, memory: int, sizes: dict[str, tuple[int, int]]) -> dict:
    """``{ml.<prefix>.<size>: InstanceType}`` from ``{size: (vcpus, gpus)}``."""
    return {
        f"ml.{prefix}.{size}": InstanceType(f"ml.{prefix}.{size}", vcpus, gpus, gpu, memory)
        for size, (vcpus, gpus) in sizes.items()
    }


#: The GPU instance types tritonship sizes builds for (T4: 16 GiB, A10G: 24 GiB per GPU).
INSTANCE_TYPES: dict[str, InstanceType] = {
    **_family(
        "g4dn",
        "NVIDIA T4",
        16,
        {
            "xlarge": (4, 1),
            "2xlarge": (8, 1),
            "4xlarge": (16, 1),
            "8xlarge": (32, 1),
            "12xlarge": (48, 4),
            "16xlarge": (64, 1),
        },
    ),
    **_family(
        "g5",
        "NVIDIA A10G",
        24,
        {
            "xlarge": (4, 1),
            "2xlarge": (8, 1),
            "4xlarge": (16, 1),
            "8xlarge": (32, 1),
            "12xlarge": (48, 4),
            "16xlarge": (64, 1),
            "24xlarge": (96, 4),
            "48xlarge": (192, 8),
        },
    ),
}


def instance_type(name: str) -> InstanceType:
    """The table's entry for ``name`` (``ml.g4dn.xlarge``; ``g4dn.xlarge`` is accepted too)."""
    key = name if name.startswith("ml.") else f"ml.{name}"
    found = INSTANCE_TYPES.get(key)
    if found is None:
        raise UsageError(
            f"--instance-type {name}: not a GPU instance type tritonship knows",
            hint=f"one of {', '.join(INSTANCE_TYPES)} (add others to "
            "tools/tritonship/sagemaker/instances.py with AWS's figures)",
        )
    return found
