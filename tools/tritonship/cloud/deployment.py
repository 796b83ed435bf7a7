"""Deployment guardrails: UpdateEndpoint's ``DeploymentConfig`` from promote's options.

``--traffic all-at-once|canary:PERCENT:WAIT|linear:PERCENT:WAIT`` picks the blue/green
traffic shifting (``TrafficRoutingConfiguration``: Type, CanarySize or LinearStepSize as a
percentage of the new fleet, WaitIntervalInSeconds), ``--alarm NAME`` (repeatable) the
CloudWatch alarms whose firing makes SageMaker roll back by itself
(``AutoRollbackConfiguration``), ``--bake MINUTES`` the final baking period
(``TerminationWaitInSeconds``). Limits from botocore's service model (WaitInterval and
TerminationWait 0-3600 s, 1-10 alarms) and AWS's guides "Use canary traffic shifting"
(canary <= 50% of the new fleet) and "Use linear traffic shifting" (steps of 10-50%).
SageMaker applies a DeploymentConfig only when the new endpoint config keeps the old
variant names (guide "Exclusions").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tritonship.errors import UsageError

ALL_AT_ONCE = "all-at-once"
MAX_WAIT_SECONDS = 3600
MAX_ALARMS = 10
#: Allowed percentages of the new fleet per step: (type, size key, low, high).
_SHIFTS = {
    "canary": ("CANARY", "CanarySize", 1, 50),
    "linear": ("LINEAR", "LinearStepSize", 10, 50),
}
_HINT = "use all-at-once, canary:PERCENT:WAIT or linear:PERCENT:WAIT, e.g. canary:10:300"


def traffic_routing(text: str) -> dict[str, Any]:
    """``TrafficRoutingConfiguration`` for ``all-at-once``, ``canary:P:W`` or ``linear:P:W``.

    P is a percentage of the new fleet; W the seconds between steps (``5m`` for minutes).
    """
    if text == ALL_AT_ONCE:
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    kind, _, rest = text.partition(":")
    percent, _, wait = rest.partition(":")
    if kind not in _SHIFTS or not percent.isdigit() or not wait:
        raise UsageError(f"--traffic {text!r} is not valid", hint=_HINT)
    routing_type, size_key, low, high = _SHIFTS[kind]
    if not low <= int(percent) <= high:
        raise UsageError(
            f"--traffic {kind} step {percent}% is outside {low}-{high}% of the new fleet",
            hint=_HINT,
        )
    return {
        "Type": routing_type,
        "WaitIntervalInSeconds": _seconds(wait, "--traffic wait"),
        size_key: {"Type": "CAPACITY_PERCENT", "Value": int(percent)},
    }


def _seconds(text: str, what: str) -> int:
    """``300`` or ``300s`` or ``5m`` as seconds within SageMaker's 0-3600."""
    scale = 60 if text.endswith("m") else 1
    digits = text.removesuffix("m").removesuffix("s")
    if not digits.isdigit() or int(digits) * scale > MAX_WAIT_SECONDS:
        raise UsageError(
            f"{what} {text!r} is not 0-{MAX_WAIT_SECONDS} seconds", hint="e.g. 300, 300s or 5m"
        )
    return int(digits) * scale


def deployment_config(
    traffic: str = ALL_AT_ONCE, alarms: Sequence[str] = (), bake_minutes: float = 0.0
) -> dict[str, Any]:
    """The whole ``DeploymentConfig`` of a blue/green update."""
    if not 0 <= bake_minutes * 60 <= MAX_WAIT_SECONDS:
        raise UsageError(f"--bake {bake_minutes:g} is not 0-60 minutes", hint="e.g. --bake 10")
    if len(alarms) > MAX_ALARMS or any(not name.strip() for name in alarms):
        raise UsageError(
            f"--alarm takes 1-{MAX_ALARMS} CloudWatch alarm names", hint="e.g. --alarm demo-5xx"
        )
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(traffic),
            "TerminationWaitInSeconds": round(bake_minutes * 60),
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def is_guarded(config: dict[str, Any]) -> bool:
    """Whether ``config`` asks for more than an all-at-once switch without baking or alarms."""
    return config != deployment_config()
