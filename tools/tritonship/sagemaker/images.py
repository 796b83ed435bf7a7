"""SageMaker Triton image URIs per region and tag, and which backends each tag carries."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tritonship.errors import UsageError
from tritonship.sagemaker.image_registries import REGISTRIES

REPOSITORY = "sagemaker-tritonserver"
DEFAULT_TAG = "24.09-py3"
#: Tags SageMaker publishes from 23.12 on (GPU ``-py3``; CPU ``-py3-cpu``); each has its own
#: ``{region: account}`` table in REGISTRIES, generated from the SageMaker Python SDK's image
#: table (image_registries.py names the file and commit).
SAGEMAKER_VERSIONS = tuple(sorted(REGISTRIES))
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

#: Per-region accounts of the tags before 23.12 (only the regions known here).
LEGACY_ACCOUNTS = {"us-east-1": "785573368785", "us-west-2": "301217895009"}

#: The backends of the SageMaker GPU images, which are NVIDIA's tritonserver images with the
#: SageMaker endpoint: server r24.09 ``build.py`` ``enable_all()`` (L2180-2195) lists
#: ensemble, identity, square, repeat, tensorflow, onnxruntime, python, dali, pytorch,
#: openvino, fil and tensorrt (square and repeat, test backends, are left out here;
#: tensorflow depends on the tag, see :func:`backends_for_tag`).
_GPU_IMAGE_BACKENDS = frozenset(
    {
        "ensemble",
        "identity",
        "python",
        "dali",
        "onnxruntime",
        "pytorch",
        "tensorrt",
        "openvino",
        "fil",
    }
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
    """The backends a Triton image of this tag carries.

    ONNX Runtime, DALI, Python and the ensemble scheduler are in every tag; TensorFlow only
    up to 25.02 (its last NGC release), so ``tensorflow_graphdef`` repositories need a
    SageMaker tag up to 24.09 and ``onnxruntime_onnx`` ones run on all of them.
    """
    parsed = parse_tag(tag)
    backends = set(_GPU_IMAGE_BACKENDS)
    if parsed.version <= LAST_TENSORFLOW_RELEASE:
        backends.add("tensorflow")
    if parsed.cpu:
        backends -= _GPU_ONLY_BACKENDS
    return frozenset(backends)


@dataclass(frozen=True)
class TagChoice:
    """The image tag chosen for a repository, and why (one line for the user)."""

    tag: str
    reason: str


def newest_tag(backends: Iterable[str], cpu: bool = False) -> TagChoice:
    """The newest SageMaker Triton tag whose image has every one of ``backends``."""
    needed = sorted(set(backends) - {""})
    for version in sorted(SAGEMAKER_VERSIONS, reverse=True):
        tag = Tag(version, cpu).text
        if set(needed) <= backends_for_tag(tag):
            newer = [v for v in SAGEMAKER_VERSIONS if v > version]
            why = f"the newest SageMaker Triton image with {', '.join(needed) or 'no backend'}"
            if newer and "tensorflow" in needed:
                why += f" (TensorFlow left Triton in 25.03: {', '.join(newer)} cannot serve it)"
            return TagChoice(tag, why)
    raise UsageError(
        f"no SageMaker Triton image has all of {', '.join(needed)}",
        hint="check the repository's platforms and backends: tritonship validate",
    )


def registry_account(region: str, tag: str) -> str:
    """The ECR account that hosts SageMaker's Triton image ``tag`` in ``region``.

    Each tag has its own table (SDK ``sagemaker-tritonserver.json``): a region the tag does
    not list is refused, naming the tags that list it.
    """
    parsed = parse_tag(tag)
    version = parsed.version
    if version not in SAGEMAKER_VERSIONS and version >= SAGEMAKER_VERSIONS[0]:
        raise UsageError(
            f"SageMaker publishes no Triton image {tag!r}",
            hint=f"use one of {', '.join(v + '-py3' for v in SAGEMAKER_VERSIONS)}",
        )
    table = REGISTRIES.get(version, LEGACY_ACCOUNTS)
    if region not in table:
        listed = tags_listing(region, parsed.cpu)
        raise UsageError(
            f"SageMaker publishes no Triton image {parsed.text} in region {region}",
            hint=f"tags published in {region}: {', '.join(listed)}"
            if listed
            else f"no SageMaker Triton tag lists {region}; regions of {tag}: "
            + ", ".join(sorted(table)),
        )
    return table[region]


def tags_listing(region: str, cpu: bool = False) -> list[str]:
    """The SageMaker Triton tags (from 23.12 on) published in ``region``, oldest first."""
    return [
        Tag(version, cpu).text for version in SAGEMAKER_VERSIONS if region in REGISTRIES[version]
    ]


def image_uri(region: str, tag: str = DEFAULT_TAG) -> str:
    """The full image URI, e.g. ``763104351884.dkr.ecr.us-east-1.amazonaws.com/...:24.09-py3``."""
    account = registry_account(region, tag)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{parse_tag(tag).text}"
