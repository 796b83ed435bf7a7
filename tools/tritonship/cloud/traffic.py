"""``tritonship traffic``: shift an endpoint's traffic between its production variants.

``UpdateEndpointWeightsAndCapacities`` changes the variants' weights in place (no new
fleet, no new endpoint config), then the endpoint is Updating until the weights apply;
the toolkit waits with the same waiter as promote. Only endpoints promote created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tritonship.cloud.aws import AwsClients, aws_errors
from tritonship.cloud.endpoints import (
    DEFAULT_WAITING,
    Waiting,
    find_own_endpoint,
    wait_in_service,
)
from tritonship.errors import TritonshipError, UsageError
from tritonship.reporting import Reporter, quiet


def parse_weights(pairs: Sequence[str]) -> dict[str, float]:
    """``["blue=0.9", "green=0.1"]`` -> ``{"blue": 0.9, "green": 0.1}`` (weights >= 0)."""
    weights: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            weight = float(value) if sep and name else -1.0
        except ValueError:
            weight = -1.0
        if weight < 0 or name in weights:
            raise UsageError(
                f"{pair!r} is not VARIANT=WEIGHT (a weight >= 0, each variant once)",
                hint="e.g. tritonship traffic --endpoint demo AllTraffic=0.9 canary=0.1",
            )
        weights[name] = weight
    if not weights or not any(weights.values()):
        raise UsageError("give at least one VARIANT=WEIGHT with a weight above 0")
    return weights


def shift_traffic(
    clients: AwsClients,
    endpoint: str,
    weights: Mapping[str, float],
    waiting: Waiting = DEFAULT_WAITING,
    progress: bool = True,
    say: Reporter = quiet,
) -> dict[str, float]:
    """Set the variants' weights and wait until they apply; the weights SageMaker reports."""
    with aws_errors("traffic"):
        found = find_own_endpoint(clients.sagemaker, endpoint)
        if found is None:
            raise TritonshipError(f"no endpoint {endpoint}", hint="promote it first")
        _check_names(found, weights)
        clients.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[
                {"VariantName": name, "DesiredWeight": weight} for name, weight in weights.items()
            ],
        )
        say(f"shifting traffic of {endpoint}: " + _render(weights))
        final = wait_in_service(clients.sagemaker, endpoint, waiting, progress, say)
    return current_weights(final)


def _check_names(found: dict[str, Any], weights: Mapping[str, float]) -> None:
    """Refuse a variant the endpoint does not have, naming those it has."""
    names = [v["VariantName"] for v in found.get("ProductionVariants", [])]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise UsageError(
            f"endpoint {found['EndpointName']} has no variant {', '.join(unknown)}",
            hint=f"its variants: {', '.join(names) or 'none'}",
        )


def current_weights(described: dict[str, Any]) -> dict[str, float]:
    """Each variant's CurrentWeight in a DescribeEndpoint answer."""
    return {
        v["VariantName"]: float(v.get("CurrentWeight") or 0.0)
        for v in described.get("ProductionVariants", [])
    }


def _render(weights: Mapping[str, float]) -> str:
    """``a=0.9 (90%), b=0.1 (10%)``."""
    total = sum(weights.values()) or 1.0
    return ", ".join(f"{n}={w:g} ({100 * w / total:.0f}%)" for n, w in weights.items())


def summary_lines(endpoint: str, weights: Mapping[str, float]) -> list[str]:
    """What the endpoint's traffic is now, for the terminal."""
    return [f"endpoint {endpoint}: {_render(weights)}"]
