"""Deployment guardrails: --traffic, --alarm, --bake, and the time budget they add up to.

The options become UpdateEndpoint's whole DeploymentConfig, its execution timeout included;
the smoke test still runs after the update and its failure still rolls back; an alarm
SageMaker acted on shows as "SageMaker kept" the old config; alarms need a bake to be
watched in. Stubber: moto does not implement UpdateEndpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    OLD,
    ROLE,
    Stubs,
    answer,
    deleted,
    describe,
    existing_endpoint,
    fails,
    make_plan,
    missing,
    run,
    up_to_update,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
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


LINEAR = {"traffic": "linear:10:600", "bake_minutes": 30}


#: 600 s launch + 900 s download + 900 s startup + 9 waits of 600 s (10 steps of 10 %) +
#: 1800 s bake + 300 s termination.
LINEAR_BUDGET = 600 + 900 + 900 + 9 * 600 + 1800 + 300


LINEAR_CONFIG = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": 600,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 1800,
        "MaximumExecutionTimeoutInSeconds": LINEAR_BUDGET,
    }
}


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


def test_a_linear_update_sends_an_execution_timeout_that_covers_its_budget(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, smoke_test=False, **LINEAR)
    assert LINEAR_BUDGET > 100 * 60
    up_to_update(stubs, plan)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": plan.config_name,
            "DeploymentConfig": LINEAR_CONFIG,
        },
    )
    describe(stubs, "InService", plan.config_name)
    assert run(stubs, plan).action == "updated"


def test_the_dry_run_shows_the_budget_and_the_timeout_to_match(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    plan = make_plan(packaged, **LINEAR)
    existing_endpoint(stubs, plan)
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    argv = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE]
    argv += ["--archive", str(packaged.archive), "--traffic", "linear:10:600", "--bake", "30"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f'"MaximumExecutionTimeoutInSeconds": {LINEAR_BUDGET}' in out
    assert f"= {LINEAR_BUDGET} s ({LINEAR_BUDGET / 60:.0f} min)" in out
    assert f"MaximumExecutionTimeoutInSeconds={LINEAR_BUDGET}" in out
    # The client waits the budget, then as long as SageMaker's own rollback may take.
    assert f"up to {(LINEAR_BUDGET + 600) / 60:.0f} min" in out


def test_a_creation_waits_for_its_provisioning_budget(
    packaged: PackageResult, stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys, run_dir: Path
) -> None:
    from tritonship.cli import main

    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    argv = ["promote", "--endpoint", "demo", "--bucket", "models", "--role"]
    argv += [make_plan(packaged).options.role, "--archive", str(packaged.archive)]
    assert main([*argv, "--startup-timeout", "1800", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "ContainerStartupHealthCheckTimeoutInSeconds=1800, ModelDataDownloadTimeoutInSeconds=900"
        in out
    )
    # 600 s launch + 900 s download + 1800 s startup; then 10 min for SageMaker's rollback.
    assert (
        "creation time budget: 3300 s (55 min) of provisioning; promote waits up to 65 min" in out
    )
    assert "every 30 s, up to 65 min" in out
