"""The state of one deployment: what was asked, what is planned, what has been done so far.

Called ``state`` rather than ``plan`` because it holds more than the plan: the
:class:`Run` records what a promote under way has changed. ``promote`` fills it in and
``rollback`` undoes it; both depend on this module and neither on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import AwsClients, tag_list
from tritonship.cloud.endpoints import DEFAULT_WAITING, Waiting, wait_in_service
from tritonship.cloud.upload import UploadSpec
from tritonship.paths import DEFAULT_ARCHIVE, SAGEMAKER_ENV_FILE
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.images import DEFAULT_TAG

#: A GPU type the 24.09 GPU image runs on (moto's list rejects ml.g5.*; AWS accepts both).
DEFAULT_INSTANCE_TYPE = "ml.g4dn.xlarge"
#: The S3 key prefix: archives go to ``<prefix>/<endpoint>/<sha16>/model.tar.gz``.
DEFAULT_PREFIX = "tritonship"


@dataclass(frozen=True)
class PromoteOptions:
    """What the command line asks for."""

    endpoint: str
    bucket: str
    role: str
    archive: Path = DEFAULT_ARCHIVE
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    image_tag: str = DEFAULT_TAG
    autoscale: tuple[int, int] | None = None
    autoscale_target: float = autoscaling.DEFAULT_TARGET
    kms_key: str | None = None
    prefix: str = DEFAULT_PREFIX
    smoke_test: bool = True
    photo: Path | None = None
    env_file: Path = SAGEMAKER_ENV_FILE


@dataclass(frozen=True)
class Plan:
    """Every name and request promote will use, computed without calling AWS."""

    options: PromoteOptions
    region: str
    image: str
    upload: UploadSpec
    env: dict[str, str]
    model_name: str
    config_name: str
    tags: dict[str, str]

    @property
    def endpoint(self) -> str:
        """The endpoint's name."""
        return self.options.endpoint

    def model_request(self) -> dict[str, Any]:
        """CreateModel's arguments."""
        container = {"Image": self.image, "ModelDataUrl": self.upload.uri, "Environment": self.env}
        return {
            "ModelName": self.model_name,
            "PrimaryContainer": container,
            "ExecutionRoleArn": self.options.role,
            "Tags": tag_list(self.tags),
        }

    def config_request(self) -> dict[str, Any]:
        """CreateEndpointConfig's arguments: one variant on the chosen instances."""
        variant = {
            "VariantName": autoscaling.VARIANT,
            "ModelName": self.model_name,
            "InstanceType": self.options.instance_type,
            "InitialInstanceCount": self.options.instance_count,
            "InitialVariantWeight": 1.0,
        }
        return {
            "EndpointConfigName": self.config_name,
            "ProductionVariants": [variant],
            "Tags": tag_list(self.tags),
        }


@dataclass
class Run:
    """One promote under way: its plan, how it reaches AWS, and what it changed so far.

    ``previous`` is the endpoint as it was before (None for a first deployment),
    ``created`` the resources this run made, as (kind, name) with kind ``model``,
    ``config`` or ``endpoint``, ``updated`` whether it sent UpdateEndpoint, and
    ``paused_scaling`` the autoscaling bounds it deregistered for an instance-type change.
    """

    plan: Plan
    clients: AwsClients
    waiting: Waiting = DEFAULT_WAITING
    progress: bool = True
    say: Reporter = quiet
    previous: dict[str, Any] | None = None
    created: list[tuple[str, str]] = field(default_factory=list)
    updated: bool = False
    paused_scaling: tuple[int, int] | None = None

    @property
    def previous_config(self) -> str | None:
        """The endpoint config the endpoint served before this run, if it existed."""
        return self.previous["EndpointConfigName"] if self.previous else None

    def wait_in_service(self) -> dict[str, Any]:
        """Wait until the endpoint is InService; return its last DescribeEndpoint."""
        sagemaker, name = self.clients.sagemaker, self.plan.endpoint
        return wait_in_service(sagemaker, name, self.waiting, self.progress, self.say)

    def enable_autoscaling(self, bounds: tuple[int, int]) -> None:
        """Register ``bounds`` and the target-tracking policy of the plan."""
        plan = self.plan
        target = plan.options.autoscale_target
        autoscaling.enable(self.clients.autoscaling, plan.endpoint, bounds, target, plan.tags)
