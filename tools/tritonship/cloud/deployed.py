"""What an endpoint serves now, read with Describe* calls only, and how a plan differs.

Promote reads it before its first write (to refuse an endpoint that is not ours or not
InService, to keep the variants beside a new one, and to retain an autoscaled fleet's
capacity); the dry run reads it to show what would change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import is_missing
from tritonship.cloud.endpoints import find_own_endpoint

#: The container fields whose change needs a new model: SageMaker has no UpdateModel, a
#: model's container definition is fixed once CreateModel made it.
CONTAINER_FIELDS = ("Image", "ModelDataUrl")
SINGLE_MODEL_MODE = "SingleModel"


@dataclass(frozen=True)
class Deployed:
    """One existing endpoint: DescribeEndpoint, its config, the models and autoscaling."""

    endpoint: dict[str, Any]
    config: dict[str, Any]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    scaling: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """EndpointStatus."""
        return str(self.endpoint.get("EndpointStatus"))

    @property
    def config_name(self) -> str:
        """The endpoint config it serves."""
        return str(self.endpoint["EndpointConfigName"])

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The served config's production variants."""
        return list(self.config.get("ProductionVariants", []))

    @property
    def autoscaled(self) -> bool:
        """Whether Application Auto Scaling manages any of its variants."""
        return bool(self.scaling)

    def summary(self, variant: str) -> dict[str, Any]:
        """DescribeEndpoint's summary of one variant (current weight and instances)."""
        found = [
            v for v in self.endpoint.get("ProductionVariants", []) if v["VariantName"] == variant
        ]
        return found[0] if found else {}

    def variant(self, name: str) -> dict[str, Any] | None:
        """The served config's variant ``name``, if any."""
        return next((v for v in self.variants if v["VariantName"] == name), None)

    def instances(self, instance_type: str) -> int:
        """How many ``instance_type`` instances the endpoint runs now (all variants)."""
        return sum(
            int(self.summary(v["VariantName"]).get("CurrentInstanceCount") or 0)
            for v in self.variants
            if v.get("InstanceType") == instance_type
        )


def read_deployed(clients: Any, endpoint: str) -> Deployed | None:
    """Describe the endpoint, its config, models and autoscaling; None when there is none."""
    sagemaker = clients.sagemaker
    found = find_own_endpoint(sagemaker, endpoint)
    if found is None:
        return None
    config = sagemaker.describe_endpoint_config(EndpointConfigName=found["EndpointConfigName"])
    names = [v["VariantName"] for v in config.get("ProductionVariants", [])]
    models = {}
    for variant in config.get("ProductionVariants", []):
        model = _describe_model(sagemaker, variant.get("ModelName"))
        if model is not None:
            models[variant["ModelName"]] = model
    scaling = autoscaling.registered(clients.autoscaling, endpoint, names) if names else {}
    return Deployed(found, config, models, scaling)


def _describe_model(sagemaker: Any, name: str | None) -> dict[str, Any] | None:
    """DescribeModel, or None when it is gone (or the variant names none)."""
    if not name:
        return None
    try:
        return sagemaker.describe_model(ModelName=name)
    except Exception as err:
        if is_missing(err):
            return None
        raise


# --- the differences -------------------------------------------------------------------------


def container_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between a deployed model (DescribeModel) and a CreateModel request."""
    if old is None:
        return ["model: the deployed one cannot be described (deleted?)"]
    before, after = old.get("PrimaryContainer", {}), new["PrimaryContainer"]
    lines = [
        f"{key}: {before.get(key)} -> {after.get(key)}"
        for key in CONTAINER_FIELDS
        if before.get(key) != after.get(key)
    ]
    # A container without Mode is a single-model one (CreateModel's default).
    modes = [c.get("Mode") or SINGLE_MODEL_MODE for c in (before, after)]
    if modes[0] != modes[1]:
        lines.append(f"Mode: {modes[0]} -> {modes[1]}")
    lines += _environment_changes(before.get("Environment") or {}, after.get("Environment") or {})
    if old.get("ExecutionRoleArn") != new["ExecutionRoleArn"]:
        lines.append(f"role: {old.get('ExecutionRoleArn')} -> {new['ExecutionRoleArn']}")
    return lines


def _environment_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """One line per variable added, removed or changed."""
    lines = []
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            old, new = before.get(key, "(unset)"), after.get(key, "(unset)")
            lines.append(f"Environment {key}: {old} -> {new}")
    return lines


def variant_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Instance type and count changes of one variant."""
    return [
        f"{key}: {old.get(key)} -> {new.get(key)}"
        for key in ("InstanceType", "InitialInstanceCount", "InitialVariantWeight")
        if old.get(key) != new.get(key)
    ]
