"""Deployment guardrails: --traffic, --alarm, --bake, and the time budget they add up to.

The options become UpdateEndpoint's whole DeploymentConfig, its execution timeout included;
the smoke test still runs after the update and its failure still rolls back; an alarm
SageMaker acted on shows as "SageMaker kept" the old config; alarms need a bake to be
watched in. Stubber: moto does not implement UpdateEndpoint.
"""

from __future__ import annotations

import pytest

from tests.support.aws import triton_answer
from tests.support.stubs import (
    OLD,
    Stubs,
    answer,
    deleted,
    describe,
    fails,
    make_plan,
    run,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.cloud.guardrails import deployment_config, traffic_routing
from tritonship.errors import UsageError

CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 300,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 600,
        # 2400 s provisioning (600 launch, 900 download, 900 startup) + 300 canary wait +
        # 600 bake + 300 termination
        "MaximumExecutionTimeoutInSeconds": 3600,
    },
    "AutoRollbackConfiguration": {
        "Alarms": [{"AlarmName": "demo-5xx"}, {"AlarmName": "demo-latency"}]
    },
}
GUARDED = {"traffic": "canary:10:300", "alarms": ("demo-5xx", "demo-latency"), "bake_minutes": 10}


def test_the_options_make_the_whole_deployment_config() -> None:
    assert deployment_config("canary:10:300", ("demo-5xx", "demo-latency"), 10, 2400) == CANARY
    assert traffic_routing("linear:25:5m") == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 300,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }
    assert deployment_config() == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 900,  # 600 launch + 300 termination
        }
    }


@pytest.mark.parametrize(
    ("traffic", "alarms", "bake", "match"),
    [
        ("canary:60:300", (), 0, "outside 1-50%"),
        ("linear:5:300", (), 0, "outside 10-50%"),
        ("canary:10", (), 0, "not valid"),
        ("canary:10:2h", (), 0, "not 0-3600 seconds"),
        ("rolling:10:60", (), 0, "not valid"),
        ("all-at-once", tuple(f"a{i}" for i in range(11)), 0, "1-10"),
        ("all-at-once", (), 61, "not 0-60 minutes"),
        # AWS guide "Blue/Green Deployments": alarms are watched during baking periods.
        ("all-at-once", ("demo-5xx",), 0, "without --bake: SageMaker watches rollback alarms"),
        ("canary:10:300", ("demo-5xx",), 0, "add --bake MINUTES"),
        # linear:10:3600 with a 60 min bake: 9 h, over SageMaker's 8 h execution limit.
        ("linear:10:3600", (), 60, "SageMaker stops one at 28800 s"),
    ],
)
def test_bad_guardrails_are_usage_errors(
    traffic: str, alarms: tuple[str, ...], bake: float, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        deployment_config(traffic, alarms, bake)


def test_a_canary_update_sends_the_whole_deployment_config_then_smoke_tests(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, **GUARDED)
    assert plan.deployment == CANARY
    updating(stubs, plan)
    describe(stubs, "Updating", plan.config_name)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer())
    result = run(stubs, plan)
    assert (result.action, result.smoke.verified) == ("updated", True)


def test_a_failed_smoke_test_after_a_canary_update_still_rolls_back(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, **GUARDED)
    updating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer(classes=10))
    update_back(stubs, "InService", plan)
    deleted(stubs, plan)
    fails(stubs, plan, rf"shape \[1, 10\].*back on {OLD}")


def test_an_alarm_that_fired_shows_as_sagemakers_own_rollback(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, **GUARDED)
    updating(stubs, plan)
    describe(stubs, "RollingBack", plan.config_name)
    describe(stubs, "InService", OLD, "Alarm demo-5xx went into ALARM during the baking period")
    describe(stubs, "InService", OLD)
    deleted(stubs, plan)
    message = str(fails(stubs, plan, f"SageMaker kept {OLD}"))
    assert "demo-5xx went into ALARM" in message and f"SageMaker kept endpoint demo on {OLD}" in (
        message
    )
