"""Application Auto Scaling for endpoint variants: register, target tracking, remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tritonship.cloud.aws import is_missing
from tritonship.errors import UsageError

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
VARIANT = "AllTraffic"
#: Invocations per instance per minute the policy aims at; measure yours with bench.
DEFAULT_TARGET = 1000.0


def parse_bounds(text: str, allow_zero: bool = False) -> tuple[int, int]:
    """``MIN:MAX`` -> (min, max), 1 <= min <= max (0 <= min for an asynchronous endpoint)."""
    low, sep, high = text.partition(":")
    least = 0 if allow_zero else 1
    valid = sep and low.isdigit() and high.isdigit() and int(high) >= 1
    if not valid or not least <= int(low) <= int(high):
        raise UsageError(
            f"--autoscale {text!r} is not MIN:MAX with {least} <= MIN <= MAX",
            hint="for example --autoscale 1:4"
            + ("" if allow_zero else " (0:MAX scales to zero: asynchronous endpoints only)"),
        )
    return int(low), int(high)


def resource_id(endpoint: str, variant: str = VARIANT) -> str:
    """The scalable target's id for one variant of the endpoint."""
    return f"endpoint/{endpoint}/variant/{variant}"


def policy_name(endpoint: str) -> str:
    """The name of the toolkit's target-tracking policy."""
    return f"tritonship-{endpoint}-invocations"[:256]


def register_request(
    endpoint: str, bounds: tuple[int, int], tags: dict[str, str], variant: str = VARIANT
) -> dict[str, Any]:
    """RegisterScalableTarget's arguments."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
        "MinCapacity": bounds[0],
        "MaxCapacity": bounds[1],
        "Tags": tags,
    }


def policy_request(endpoint: str, target: float, variant: str = VARIANT) -> dict[str, Any]:
    """PutScalingPolicy's arguments: target tracking on invocations per instance."""
    return {
        "PolicyName": policy_name(endpoint),
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": 300,
            "ScaleOutCooldown": 60,
        },
    }


def enable(
    client: Any,
    endpoint: str,
    bounds: tuple[int, int],
    target: float,
    tags: dict[str, str],
    variant: str = VARIANT,
) -> None:
    """Register the variant and attach the target-tracking policy (both idempotent)."""
    client.register_scalable_target(**register_request(endpoint, bounds, tags, variant))
    client.put_scaling_policy(**policy_request(endpoint, target, variant))


def registered(client: Any, endpoint: str, variants: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The registered (min, max) of each of the endpoint's ``variants`` that has one."""
    prefix = resource_id(endpoint, "")
    targets = client.describe_scalable_targets(
        ServiceNamespace=NAMESPACE,
        ResourceIds=[resource_id(endpoint, name) for name in variants],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"]
    return {
        t["ResourceId"].removeprefix(prefix): (t["MinCapacity"], t["MaxCapacity"]) for t in targets
    }


def disable(client: Any, endpoint: str, variant: str = VARIANT) -> bool:
    """Delete the variant's scaling policies and registration; False when there was none."""
    had_policies = _delete_policies(client, endpoint, variant)
    try:
        client.deregister_scalable_target(**_target(endpoint, variant))
    except Exception as err:
        if not is_missing(err):
            raise
        return had_policies
    return True


def disable_all(client: Any, endpoint: str) -> list[str]:
    """Remove the autoscaling of every variant of the endpoint; the resource ids removed."""
    prefix = resource_id(endpoint, "")
    pages = client.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION
    )
    ids = [
        target["ResourceId"]
        for page in pages
        for target in page["ScalableTargets"]
        if target["ResourceId"].startswith(prefix)
    ]
    return [rid for rid in ids if disable(client, endpoint, rid.removeprefix(prefix))]


def _target(endpoint: str, variant: str = VARIANT) -> dict[str, str]:
    """The arguments that name the endpoint variant's scalable target."""
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
    }


def _delete_policies(client: Any, endpoint: str, variant: str = VARIANT) -> bool:
    """Delete the variant's scaling policies; whether there were any."""
    target = _target(endpoint, variant)
    policies = client.describe_scaling_policies(**target)["ScalingPolicies"]
    for policy in policies:
        client.delete_scaling_policy(PolicyName=policy["PolicyName"], **target)
    return bool(policies)
