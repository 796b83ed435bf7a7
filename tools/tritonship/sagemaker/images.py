"""SageMaker Triton image URIs per region and tag, and which backends each tag carries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tritonship.errors import UsageError

REPOSITORY = "sagemaker-tritonserver"
DEFAULT_TAG = "24.09-py3"
#: Tags SageMaker publishes from 23.12 on (GPU ``-py3``; CPU ``-py3-cpu``).
SAGEMAKER_VERSIONS = ("23.12", "24.01", "24.03", "24.05", "24.09", "25.04", "25.09", "26.05")
#: Triton server version of each container release.
SERVER_VERSIONS = {
    "24.09": "2.50.0",
    "24.10": "2.51.0",
    "25.02": "2.55.0",
    "25.04": "2.57.0",
    "25.09": "2.61.0",
}
#: The TensorFlow backend's last NGC release; SageMaker's last tag with it is 24.09.
LAST_TENSORFLOW_RELEASE = "25.02"

_MAIN_ACCOUNT = "763104351884"
#: Registry accounts for tags from 23.12 on (SageMaker Python SDK image_uri_config).
ACCOUNTS = {
    **{
        region: _MAIN_ACCOUNT
        for region in (
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-north-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        )
    },
    "af-south-1": "626614931356",
    "il-central-1": "780543022126",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "ca-west-1": "204538143572",
}
#: Per-region accounts of the tags before 23.12 (only the regions known here).
LEGACY_ACCOUNTS = {"us-east-1": "785573368785", "us-west-2": "301217895009"}

_GPU_IMAGE_BACKENDS = frozenset(
    {"ensemble", "python", "dali", "onnxruntime", "pytorch", "tensorrt", "openvino", "fil"}
)
#: Assumed absent from the ``-cpu`` images (GPU-only builds); not checked against an image.
_GPU_ONLY_BACKENDS = frozenset({"tensorrt", "dali"})
_TAG = re.compile(r"^(?:.*[:/])?(?P<version>\d{2}\.\d{2})-py3(?P<cpu>-cpu)?$")


@dataclass(frozen=True)
class Tag:
    """A parsed image tag such as ``24.09-py3`` or ``24.09-py3-cpu``."""

    version: str
    cpu: bool

    @property
    def text(self) -> str:
        """The tag as written in an image URI."""
        return f"{self.version}-py3{'-cpu' if self.cpu else ''}"


def parse_tag(tag: str) -> Tag:
    """Parse ``YY.MM-py3[-cpu]`` (an image reference ending in it is accepted too)."""
    match = _TAG.match(tag.strip())
    if not match:
        raise UsageError(
            f"image tag {tag!r} is not of the form YY.MM-py3 or YY.MM-py3-cpu",
            hint=f"for example {DEFAULT_TAG}",
        )
    return Tag(match["version"], bool(match["cpu"]))


def backends_for_tag(tag: str) -> frozenset[str]:
    """The backends a Triton image of this tag carries."""
    parsed = parse_tag(tag)
    backends = set(_GPU_IMAGE_BACKENDS)
    if parsed.version <= LAST_TENSORFLOW_RELEASE:
        backends.add("tensorflow")
    if parsed.cpu:
        backends -= _GPU_ONLY_BACKENDS
    return frozenset(backends)


def registry_account(region: str, tag: str) -> str:
    """The ECR account that hosts SageMaker's Triton images for a region and tag."""
    version = parse_tag(tag).version
    if version not in SAGEMAKER_VERSIONS and version >= SAGEMAKER_VERSIONS[0]:
        raise UsageError(
            f"SageMaker publishes no Triton image {tag!r}",
            hint=f"use one of {', '.join(v + '-py3' for v in SAGEMAKER_VERSIONS)}",
        )
    table = ACCOUNTS if version >= SAGEMAKER_VERSIONS[0] else LEGACY_ACCOUNTS
    if region not in table:
        raise UsageError(
            f"no SageMaker Triton image {tag!r} is known in region {region!r}",
            hint=f"known regions: {', '.join(sorted(table))}",
        )
    return table[region]


def image_uri(region: str, tag: str = DEFAULT_TAG) -> str:
    """The full image URI, e.g. ``763104351884.dkr.ecr.us-east-1.amazonaws.com/...:24.09-py3``."""
    account = registry_account(region, tag)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{parse_tag(tag).text}"
