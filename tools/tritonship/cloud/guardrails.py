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

Alarms are watched only while SageMaker bakes: botocore's ``VariantStatus`` enum documents
``Baking`` as the "waiting period to monitor the CloudWatch alarms in the automatic
rollback configuration", and AWS's guide "Blue/Green Deployments" rolls back "if any of the
pre-specified alarms trip during any baking period". So ``--alarm`` without ``--bake`` is
refused: the new fleet at full traffic would never be watched.

:class:`Budget` is how long a deployment may take (a client that gives up earlier must not
send UpdateEndpoint while the endpoint is still Updating): provisioning the new
fleet (an allowance for the instances' launch, plus the variant's
``ModelDataDownloadTimeoutInSeconds`` and ``ContainerStartupHealthCheckTimeoutInSeconds``,
which SageMaker enforces), one ``WaitIntervalInSeconds`` per traffic step after the first,
the bake, and an allowance for terminating the old fleet. ``MaximumExecutionTimeoutInSeconds``
(botocore: 600-28800, "should be larger than the total waiting time specified in
TerminationWaitInSeconds and WaitIntervalInSeconds") is set to that total, and promote's
client waits that long plus :data:`ROLLBACK_SECONDS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tritonship.errors import UsageError

ALL_AT_ONCE = "all-at-once"
MAX_WAIT_SECONDS = 3600
MAX_ALARMS = 10
#: MaximumExecutionTimeoutInSeconds bounds (botocore's service model, sagemaker 2017-07-24).
MIN_EXECUTION_SECONDS, MAX_EXECUTION_SECONDS = 600, 28800
#: An allowance for launching the new fleet's instances (no API field bounds it).
LAUNCH_SECONDS = 600
#: An allowance for terminating the old fleet once the bake is over.
TERMINATION_SECONDS = 300
#: How long promote's client waits beyond the execution timeout: SageMaker then rolls back.
ROLLBACK_SECONDS = 600
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


def shift_waits(routing: dict[str, Any]) -> int:
    """How many ``WaitIntervalInSeconds`` a traffic shift waits: one per step after the first.

    All at once: one step, no wait. Canary: the canary, a wait, the rest. Linear: steps of
    LinearStepSize percent until 100 % (guides "Use canary/linear traffic shifting").
    """
    if routing["Type"] == "CANARY":
        return 1
    if routing["Type"] == "LINEAR":
        return math.ceil(100 / routing["LinearStepSize"]["Value"]) - 1
    return 0


@dataclass(frozen=True)
class Budget:
    """How long one deployment may take, in seconds, and what it is made of."""

    provisioning: int  # launch allowance + download and startup timeouts
    waits: int  # traffic steps after the first
    wait: int  # WaitIntervalInSeconds
    bake: int  # TerminationWaitInSeconds
    termination: int = TERMINATION_SECONDS

    @property
    def total(self) -> int:
        """Provisioning + waits x wait + bake + termination."""
        return self.provisioning + self.waits * self.wait + self.bake + self.termination

    @property
    def execution_timeout(self) -> int:
        """``MaximumExecutionTimeoutInSeconds``: the total, at least SageMaker's minimum."""
        return max(MIN_EXECUTION_SECONDS, self.total)

    @property
    def client_minutes(self) -> float:
        """How long promote waits for the endpoint: the execution timeout, then a rollback."""
        return (self.execution_timeout + ROLLBACK_SECONDS) / 60

    def describe(self) -> str:
        """One line: each part, the total, the timeout sent and the client's wait."""
        shift = f" + {self.waits} x {self.wait} s of traffic steps" if self.waits else ""
        return (
            f"time budget: {self.provisioning} s provisioning (launch + download + startup)"
            f"{shift} + {self.bake} s bake + {self.termination} s termination = "
            f"{self.total} s ({self.total / 60:.0f} min): MaximumExecutionTimeoutInSeconds="
            f"{self.execution_timeout}; promote waits up to {self.client_minutes:.0f} min"
        )


def budget_of(config: dict[str, Any], provisioning: int) -> Budget:
    """The :class:`Budget` of a DeploymentConfig whose new fleet takes ``provisioning`` s."""
    policy = config["BlueGreenUpdatePolicy"]
    routing = policy["TrafficRoutingConfiguration"]
    return Budget(
        provisioning,
        shift_waits(routing),
        int(routing["WaitIntervalInSeconds"]),
        int(policy.get("TerminationWaitInSeconds", 0)),
    )


def deployment_config(
    traffic: str = ALL_AT_ONCE,
    alarms: Sequence[str] = (),
    bake_minutes: float = 0.0,
    provisioning: int = LAUNCH_SECONDS,
) -> dict[str, Any]:
    """The whole ``DeploymentConfig`` of a blue/green update, its execution timeout included.

    ``provisioning``: the seconds the new fleet may take to come up (launch allowance plus
    the variant's download and startup timeouts).
    """
    if not 0 <= bake_minutes * 60 <= MAX_WAIT_SECONDS:
        raise UsageError(f"--bake {bake_minutes:g} is not 0-60 minutes", hint="e.g. --bake 10")
    _check_alarms(alarms, bake_minutes)
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(traffic),
            "TerminationWaitInSeconds": round(bake_minutes * 60),
        }
    }
    budget = budget_of(config, provisioning)
    if budget.total > MAX_EXECUTION_SECONDS:
        raise UsageError(
            f"this deployment may take {budget.total} s ({budget.total / 3600:.1f} h), and "
            f"SageMaker stops one at {MAX_EXECUTION_SECONDS} s (MaximumExecutionTimeoutInSeconds)",
            hint="use fewer or shorter traffic steps, or a shorter --bake",
        )
    config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = budget.execution_timeout
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def _check_alarms(alarms: Sequence[str], bake_minutes: float) -> None:
    """1-10 alarm names, and a bake to watch them in (see the module docstring)."""
    if len(alarms) > MAX_ALARMS or any(not name.strip() for name in alarms):
        raise UsageError(
            f"--alarm takes 1-{MAX_ALARMS} CloudWatch alarm names", hint="e.g. --alarm demo-5xx"
        )
    if alarms and round(bake_minutes * 60) <= 0:
        raise UsageError(
            f"--alarm {' '.join(alarms)} without --bake: SageMaker watches rollback alarms "
            "only while it bakes, so the new fleet at full traffic would never be watched",
            hint="add --bake MINUTES, e.g. --bake 10",
        )


def is_guarded(config: dict[str, Any]) -> bool:
    """Whether ``config`` asks for more than an all-at-once switch without baking or alarms."""
    policy = config["BlueGreenUpdatePolicy"]
    return (
        policy["TrafficRoutingConfiguration"]["Type"] != "ALL_AT_ONCE"
        or bool(policy.get("TerminationWaitInSeconds"))
        or "AutoRollbackConfiguration" in config
    )


# --- the new fleet's own budgets ------------------------------------------------------------

#: ``ContainerStartupHealthCheckTimeoutInSeconds`` and ``ModelDataDownloadTimeoutInSeconds``
#: (botocore: 60-3600 each, per production variant).
MIN_VARIANT_TIMEOUT, MAX_VARIANT_TIMEOUT = 60, 3600
DEFAULT_STARTUP_SECONDS = 900
DEFAULT_DOWNLOAD_SECONDS = 900
STARTUP_FIELD = "ContainerStartupHealthCheckTimeoutInSeconds"
DOWNLOAD_FIELD = "ModelDataDownloadTimeoutInSeconds"


def check_variant_timeouts(startup: int, download: int) -> None:
    """Refuse a startup or download budget outside SageMaker's 60-3600 s."""
    for option, value in (("--startup-timeout", startup), ("--download-timeout", download)):
        if not MIN_VARIANT_TIMEOUT <= value <= MAX_VARIANT_TIMEOUT:
            raise UsageError(
                f"{option} {value} is not {MIN_VARIANT_TIMEOUT}-{MAX_VARIANT_TIMEOUT} seconds",
                hint=f"e.g. {option} {DEFAULT_STARTUP_SECONDS}",
            )


def variant_timeouts(startup: int, download: int, multi_model: bool) -> dict[str, int]:
    """The promoted variant's startup and download budgets.

    A multi-model endpoint downloads its archives when they are first invoked, not when
    an instance starts: only the startup budget applies to it.
    """
    if multi_model:
        return {STARTUP_FIELD: startup}
    return {STARTUP_FIELD: startup, DOWNLOAD_FIELD: download}


def provisioning_seconds(startup: int, download: int, multi_model: bool) -> int:
    """How long the new fleet may take to come up: launch, download, container start."""
    return LAUNCH_SECONDS + sum(variant_timeouts(startup, download, multi_model).values())
