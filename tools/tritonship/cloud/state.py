"""The state of one deployment: what was asked, what is planned, what has been done so far.

Called ``state`` rather than ``plan`` because it holds more than the plan: the
:class:`Run` records what a promote under way has changed. ``promote`` fills it in and
``rollback`` undoes it; both depend on this module and neither on the other.

Names: a model is ``<endpoint>-<hash of its container definition>`` (image URI,
environment, archive URI and SHA-256, role): a container definition is immutable in
SageMaker, so any change of one of them makes a new model. A multi-model endpoint's
container names an S3 prefix, not an archive (``Mode=MultiModel``): its hash leaves the
archives out, so adding one keeps the model, and the endpoint, as they are. An endpoint
config is ``<endpoint>-<hash of its production variants>`` (models, instances, weights,
startup and download budgets), and of its ``AsyncInferenceConfig`` when it has one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonship.cloud import autoscaling
from tritonship.cloud.asynchronous import AsyncOptions, enable_scaling
from tritonship.cloud.aws import AwsClients, describe, tag_list
from tritonship.cloud.capture import CaptureSpec
from tritonship.cloud.endpoints import DEFAULT_WAITING, EndpointFailed, Waiting, wait_in_service
from tritonship.cloud.guardrails import (
    ALL_AT_ONCE,
    DEFAULT_DOWNLOAD_SECONDS,
    DEFAULT_STARTUP_SECONDS,
    provisioning_seconds,
    variant_timeouts,
)
from tritonship.cloud.shadow import SHADOW_VARIANT
from tritonship.cloud.smoke import SmokeRequest
from tritonship.cloud.traffic_loop import config_extras
from tritonship.cloud.upload import UploadSpec
from tritonship.paths import DEFAULT_ARCHIVE
from tritonship.reporting import Reporter, quiet
from tritonship.sagemaker.images import DEFAULT_TAG
from tritonship.sagemaker.instances import DEFAULT_INSTANCE_TYPE
from tritonship.sagemaker.settings import EnvSources

if TYPE_CHECKING:
    from tritonship.cloud.deployed import Deployed

#: The S3 key prefix: archives go to ``<prefix>/<endpoint>/<sha16>/model.tar.gz``, and a
#: multi-model endpoint's to ``<prefix>/<endpoint>/<MODELS_FOLDER>/<name>.tar.gz``.
DEFAULT_PREFIX = "tritonship"
MODELS_FOLDER = "models"
MULTI_MODEL_MODE = "MultiModel"
#: How many log lines per stream a failed wait shows.
LOG_TAIL_LINES = 20


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
    env_sources: EnvSources = EnvSources()
    traffic: str = ALL_AT_ONCE
    alarms: tuple[str, ...] = ()
    bake_minutes: float = 0.0
    variant: str | None = None
    weight: float = 1.0
    multi_model: bool = False
    archives: tuple[Path, ...] = ()
    smoke_target_model: str | None = None
    startup_timeout: int = DEFAULT_STARTUP_SECONDS
    download_timeout: int = DEFAULT_DOWNLOAD_SECONDS
    asynchronous: AsyncOptions | None = None
    capture: CaptureSpec | None = None  # --capture PCT [--capture-prefix URI]
    shadow: float | None = None  # --shadow PCT: the new build as a shadow variant

    def all_archives(self) -> tuple[Path, ...]:
        """The archives to upload: ``archives`` (multi-model), else ``archive``."""
        return self.archives or (self.archive,)


def _digest(value: Any) -> str:
    """12 hex digits of the SHA-256 of ``value`` as canonical JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Plan:
    """Every name and request promote will use, computed without calling AWS.

    ``others`` are the production variants kept beside the promoted one (``--variant``),
    filled in from the deployed endpoint by ``planning.resolve``.
    """

    options: PromoteOptions
    region: str
    image: str
    uploads: tuple[UploadSpec, ...]
    env: dict[str, str]
    tags: dict[str, str]
    deployment: dict[str, Any]
    smoke: SmokeRequest | None = field(default=None, repr=False)
    others: tuple[dict[str, Any], ...] = ()
    env_origins: dict[str, str] = field(default_factory=dict)
    model_data_url: str = ""
    notes: tuple[str, ...] = ()

    @property
    def upload(self) -> UploadSpec:
        """The (first) archive's upload."""
        return self.uploads[0]

    @property
    def multi_model(self) -> bool:
        """Whether the model serves every archive under a prefix (``Mode=MultiModel``)."""
        return self.options.multi_model

    @property
    def endpoint(self) -> str:
        """The endpoint's name."""
        return self.options.endpoint

    @property
    def variant(self) -> str:
        """The variant the archive goes to (with ``--shadow``: the shadow variant)."""
        if self.options.shadow is not None:
            return self.options.variant or SHADOW_VARIANT
        return self.options.variant or autoscaling.VARIANT

    @property
    def smoke_variant(self) -> str:
        """The variant the smoke test names: the promoted one, or with ``--shadow`` the live one.

        A shadow variant cannot be invoked on its own: it answers copies of the live
        requests, and its answers are discarded (AWS guide "Shadow variants"); the smoke
        request goes to the live variant, and so reaches the shadow as a copy.
        """
        if self.options.shadow is not None and self.others:
            return str(self.others[0]["VariantName"])
        return self.variant

    @property
    def model_name(self) -> str:
        """``<endpoint>-<hash of the container definition, role and archive>``.

        A multi-model container holds a prefix: the archives under it are not its identity.
        """
        identity: dict[str, Any] = {
            "PrimaryContainer": self.container(),
            "ExecutionRoleArn": self.options.role,
        }
        if not self.multi_model:
            identity["archive-sha256"] = self.upload.sha256
        return f"{self.endpoint[:50]}-{_digest(identity)}"

    @property
    def config_name(self) -> str:
        """``<endpoint>-<hash of the variants, AsyncInferenceConfig, capture and shadow>``."""
        extras = config_extras(self)
        identity: Any = {"variants": self.variants, **extras} if extras else self.variants
        if self.options.asynchronous is not None:
            identity = [identity, self.options.asynchronous.request()]
        return f"{self.endpoint[:50]}-{_digest(identity)}"

    @property
    def provisioning(self) -> int:
        """How long the new fleet may take to come up (launch, download, container start)."""
        o = self.options
        return provisioning_seconds(o.startup_timeout, o.download_timeout, self.multi_model)

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The endpoint config's production variants: those kept, then the promoted one.

        With ``--shadow`` the promoted one is the shadow (:func:`config_extras`).
        """
        if self.options.shadow is not None:
            return list(self.others)
        return [*self.others, self.our_variant()]

    def container(self) -> dict[str, Any]:
        """The model's container definition (with ``Mode`` only for a multi-model one)."""
        container = {
            "Image": self.image,
            "ModelDataUrl": self.model_data_url or self.upload.uri,
            "Environment": self.env,
        }
        if self.multi_model:
            container["Mode"] = MULTI_MODEL_MODE
        return container

    def model_request(self) -> dict[str, Any]:
        """CreateModel's arguments."""
        return {
            "ModelName": self.model_name,
            "PrimaryContainer": self.container(),
            "ExecutionRoleArn": self.options.role,
            "Tags": tag_list(self.tags),
        }

    def our_variant(self) -> dict[str, Any]:
        """The promoted production variant on the chosen instances."""
        return {
            "VariantName": self.variant,
            "ModelName": self.model_name,
            "InstanceType": self.options.instance_type,
            "InitialInstanceCount": self.options.instance_count,
            "InitialVariantWeight": float(self.options.weight),
            **variant_timeouts(
                self.options.startup_timeout, self.options.download_timeout, self.multi_model
            ),
        }

    def config_request(self) -> dict[str, Any]:
        """CreateEndpointConfig's arguments."""
        request = {
            "EndpointConfigName": self.config_name,
            "ProductionVariants": self.variants,
            **config_extras(self),
            "Tags": tag_list(self.tags),
        }
        if self.options.asynchronous is not None:
            request["AsyncInferenceConfig"] = self.options.asynchronous.request()
        return request


@dataclass
class Run:
    """One promote under way: its plan, how it reaches AWS, and what it changed so far.

    ``previous`` is the endpoint as it was before (None for a first deployment),
    ``created`` the resources this run made, as (kind, name) with kind ``model``,
    ``config`` or ``endpoint``, ``updated`` whether it sent UpdateEndpoint,
    ``paused_scaling`` the autoscaling bounds it deregistered for an instance-type change
    and ``scaling_changed`` whether it registered or deregistered autoscaling at all.
    """

    plan: Plan
    clients: AwsClients
    waiting: Waiting = DEFAULT_WAITING
    progress: bool = True
    say: Reporter = quiet
    previous: Deployed | None = None
    created: list[tuple[str, str]] = field(default_factory=list)
    updated: bool = False
    paused_scaling: tuple[int, int] | None = None
    scaling_changed: bool = False

    @property
    def previous_config(self) -> str | None:
        """The endpoint config the endpoint served before this run, if it existed."""
        return self.previous.config_name if self.previous else None

    def retained(self) -> dict[str, Any]:
        """UpdateEndpoint's arguments that keep an autoscaled endpoint's capacity.

        RetainAllVariantProperties defaults to false: the new fleet would start at the
        config's InitialInstanceCount, not at the count autoscaling reached (AWS guide
        "Update endpoints that use auto scaling").
        """
        if self.previous is None or not self.previous.autoscaled:
            return {}
        return {"RetainAllVariantProperties": True}

    def wait_in_service(self) -> dict[str, Any]:
        """Wait until the endpoint is InService; on a terminal status show its log tail."""
        sagemaker, name = self.clients.sagemaker, self.plan.endpoint
        try:
            return wait_in_service(sagemaker, name, self.waiting, self.progress, self.say)
        except EndpointFailed:
            self.show_log_tail()
            raise

    def show_log_tail(self) -> None:
        """Report the last lines of the endpoint's CloudWatch log streams (if readable)."""
        from tritonship.cloud.logs import log_group, tail_streams

        if self.clients.logs is None:
            return
        try:
            lines = tail_streams(self.clients.logs, self.plan.endpoint, LOG_TAIL_LINES)
        except Exception as err:
            self.say(f"cannot read {log_group(self.plan.endpoint)}: {describe(err)}")
            return
        if not lines:
            self.say(f"no log streams in {log_group(self.plan.endpoint)} (no container started)")
        for line in lines:
            self.say(line if line.startswith("---") else f"  {line}")

    def enable_autoscaling(self, bounds: tuple[int, int]) -> None:
        """Register ``bounds`` and the target-tracking policy on the promoted variant."""
        plan = self.plan
        self.scaling_changed = True
        target = plan.options.autoscale_target
        if plan.options.asynchronous is not None:  # on the backlog, possibly down to 0
            enable_scaling(self.clients, plan.endpoint, bounds, target, plan.tags, plan.variant)
            return
        autoscaling.enable(
            self.clients.autoscaling, plan.endpoint, bounds, target, plan.tags, plan.variant
        )
