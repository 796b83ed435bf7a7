"""``promote --shadow-promote``: the shadow variant becomes the live one.

The new endpoint config keeps the live variant's name (so its alarms, dashboards and
autoscaling still apply) and gives it the shadow's model, instance type and count; it
has no shadow any more, and keeps the endpoint's data capture. The update is blue/green
with promote's guardrails (``--traffic``, ``--alarm``, ``--bake``): SageMaker applies a
DeploymentConfig when the variant names stay the same (AWS guide "Exclusions"), which
they do. Nothing is uploaded and no model is created: the shadow's model is the one
``promote --shadow`` made. The AWS console's shadow tests offer the same step ("Promote
shadow variant", AWS guide "Shadow tests").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tritonship.cloud.aws import AwsClients, aws_errors, describe, tag_list, toolkit_tags
from tritonship.cloud.deployed import Deployed, read_deployed
from tritonship.cloud.endpoints import (
    DEFAULT_WAITING,
    KIND_NAMES,
    Waiting,
    delete,
    exists,
    wait_in_service,
)
from tritonship.cloud.shadow import SHADOWS_KEY, deployed_shadows
from tritonship.errors import DeployError, UsageError, render
from tritonship.reporting import Reporter, quiet

#: What a variant takes over from the shadow: its container and its instances.
TAKEN_FROM_SHADOW = ("ModelName", "InstanceType", "InitialInstanceCount")


@dataclass(frozen=True)
class Promotion:
    """The shadow made live: the new config and the update that deploys it."""

    endpoint: str
    live: dict[str, Any]
    shadow: dict[str, Any]
    config: dict[str, Any]
    update: dict[str, Any]

    @property
    def config_name(self) -> str:
        """The new endpoint config's name."""
        return str(self.config["EndpointConfigName"])


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def _one(deployed: Deployed, endpoint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The endpoint's live variant and its shadow: exactly one of each."""
    shadows = deployed_shadows(deployed)
    if len(shadows) != 1 or len(deployed.variants) != 1:
        raise UsageError(
            f"endpoint {endpoint} has {len(shadows)} shadow variant(s) beside "
            f"{len(deployed.variants)} live one(s): nothing to promote",
            hint=f"deploy a build as a shadow first: promote --endpoint {endpoint} --shadow PCT",
        )
    return deployed.variants[0], shadows[0]


def _live_from_shadow(live: dict[str, Any], shadow: dict[str, Any], deployed: Deployed) -> dict:
    """The live variant, under its own name and weight, on the shadow's model and instances."""
    variant = {**live, **{key: shadow[key] for key in TAKEN_FROM_SHADOW if key in shadow}}
    weight = deployed.summary(live["VariantName"]).get("CurrentWeight")
    if weight is not None:
        variant["InitialVariantWeight"] = float(weight)
    return variant


def plan_promotion(
    clients: AwsClients, endpoint: str, deployment: dict[str, Any]
) -> tuple[Promotion, Deployed]:
    """The config and update that make the endpoint's shadow live (Describe calls only)."""
    with aws_errors("reading the endpoint"):
        deployed = read_deployed(clients, endpoint)
    if deployed is None:
        raise UsageError(f"no endpoint {endpoint}", hint="check --endpoint and AWS_REGION")
    live, shadow = _one(deployed, endpoint)
    variant = _live_from_shadow(live, shadow, deployed)
    config: dict[str, Any] = {"ProductionVariants": [variant]}
    if deployed.config.get("DataCaptureConfig"):
        config["DataCaptureConfig"] = deployed.config["DataCaptureConfig"]
    config = {
        "EndpointConfigName": f"{endpoint[:50]}-{_digest(config)}",
        **config,
        "Tags": tag_list(toolkit_tags(endpoint, None)),
    }
    update: dict[str, Any] = {
        "EndpointName": endpoint,
        "EndpointConfigName": config["EndpointConfigName"],
        "DeploymentConfig": deployment,
    }
    if deployed.autoscaled:
        _check_scaling(deployed, live, variant, endpoint)
        update["RetainAllVariantProperties"] = True
    return Promotion(endpoint, live, shadow, config, update), deployed


def _check_scaling(deployed: Deployed, live: dict, variant: dict, endpoint: str) -> None:
    """An autoscaled live variant keeps its fleet; a new instance type would need a new one."""
    if live.get("InstanceType") != variant.get("InstanceType"):
        raise UsageError(
            f"the shadow runs on {variant.get('InstanceType')}, the autoscaled live variant on "
            f"{live.get('InstanceType')}: AWS requires autoscaling off for that change",
            hint=f"promote the shadow's archive with promote --endpoint {endpoint} "
            "(it deregisters and restores autoscaling around the change)",
        )


def describe_promotion(promotion: Promotion, waiting: Waiting) -> list[str]:
    """What ``--shadow-promote`` changes and every call it makes, for the dry run."""
    live, shadow = promotion.live, promotion.shadow
    args = {k: v for k, v in promotion.config.items() if k != "Tags"}
    return [
        f"variant {live['VariantName']}: model {live.get('ModelName')} -> "
        f"{shadow.get('ModelName')} (the shadow {shadow['VariantName']}), "
        f"{live.get('InstanceType')} -> {shadow.get('InstanceType')}; shadow {SHADOWS_KEY} "
        "removed",
        f"sagemaker.create_endpoint_config({json.dumps(args)})  -> unless it exists",
        f"sagemaker.update_endpoint({json.dumps(promotion.update)})",
        f"waiter endpoint_in_service (every {waiting.delay:g} s, up to "
        f"{waiting.delay * waiting.attempts / 60:.0f} min)  -> on a failure SageMaker keeps the "
        "previous config; the new config is deleted",
    ]


def apply_promotion(
    clients: AwsClients,
    promotion: Promotion,
    waiting: Waiting = DEFAULT_WAITING,
    progress: bool = True,
    say: Reporter = quiet,
) -> dict[str, Any]:
    """Create the config, update the endpoint, wait; on a failure delete the config made."""
    sagemaker, name = clients.sagemaker, promotion.config_name
    created = False
    try:
        with aws_errors("promoting the shadow"):
            if exists(sagemaker.describe_endpoint_config, EndpointConfigName=name):
                say(f"reusing {KIND_NAMES['config']} {name}")
            else:
                sagemaker.create_endpoint_config(**promotion.config)
                created = True
            sagemaker.update_endpoint(**promotion.update)
            say(f"updating endpoint {promotion.endpoint} to {name}")
            final = wait_in_service(sagemaker, promotion.endpoint, waiting, progress, say)
        if final.get("EndpointConfigName") != name:
            reason = final.get("FailureReason") or "no reason given"
            raise DeployError(f"SageMaker kept {final.get('EndpointConfigName')}: {reason}")
    except Exception as err:
        raise _failed(clients, promotion, created, err) from err
    return final


def _failed(
    clients: AwsClients, promotion: Promotion, created: bool, err: Exception
) -> DeployError:
    """Delete the config this run created (the endpoint never serves it); say so."""
    undone = ""
    if created:
        try:
            if delete(clients.sagemaker, "config", promotion.config_name):
                undone = f"; deleted {KIND_NAMES['config']} {promotion.config_name}"
        except Exception as cleanup:  # noqa: BLE001 - the first failure is the one to report
            undone = f"; {promotion.config_name} left in place ({describe(cleanup)})"
    reason = render(err)
    return DeployError(
        f"promoting the shadow of {promotion.endpoint} failed: {reason}{undone}",
        hint=f"tritonship logs --endpoint {promotion.endpoint}",
    )


def summary_lines(promotion: Promotion) -> list[str]:
    """What ``--shadow-promote`` did."""
    live, shadow = promotion.live, promotion.shadow
    return [
        f"endpoint {promotion.endpoint}: shadow {shadow['VariantName']} is live as variant "
        f"{live['VariantName']} (model {shadow.get('ModelName')}, endpoint config "
        f"{promotion.config_name})",
        f"  the previous live model {live.get('ModelName')} is no longer served (teardown "
        "deletes it with the endpoint)",
    ]
