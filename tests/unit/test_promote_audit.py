"""Two findings of an audit of promote against botocore's model and AWS's guides (Stubber).

1. A guarded deployment outlives the client's wait: the DeploymentConfig must carry a
   ``MaximumExecutionTimeoutInSeconds`` that covers the plan's time budget (provisioning,
   traffic steps, bake, termination), the dry run must show it, and a wait that ends while
   the endpoint is still ``Updating`` must not call ``UpdateEndpoint`` (SageMaker refuses it
   during a deployment), nor restore the autoscaling promote paused: both are left, recorded
   on the endpoint, to ``tritonship status``.
2. The smoke test must name its variant (``TargetVariant``): a new variant at weight 0.1
   would otherwise rarely get the request.

The third finding (the native engine failing open) is in tests/unit/test_confine.py. Each
test here fails on the code before the fix; they import nothing the fix added.
"""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    OLD,
    ROLE,
    SCALING,
    TIME,
    Stubs,
    answer,
    archive_already_there,
    describe,
    existing_endpoint,
    make_plan,
    new_resources,
    old_variant,
    preflight_ok,
    run,
    summary,
)
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.deployed import Deployed
from tritonship.cloud.planning import resolve
from tritonship.errors import DeployError

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


def up_to_update(stubs: Stubs, plan, instance_type: str = "ml.g4dn.xlarge", bounds=None) -> None:
    """Reading the endpoint, the preflight, the upload check, the new model and config."""
    existing_endpoint(stubs, plan, instance_type=instance_type, bounds=bounds, count=2)
    preflight_ok(stubs, plan.options.instance_type)
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)


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


def test_a_wait_that_ends_while_updating_calls_no_update_endpoint(
    packaged: PackageResult, stubs: Stubs
) -> None:
    """No rollback (it would be refused): the record on the endpoint, exit code 3."""
    plan = make_plan(packaged, smoke_test=False, **LINEAR)
    up_to_update(stubs, plan)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": plan.config_name, "DeploymentConfig": ANY},
    )
    describe(stubs, "Updating", plan.config_name, times=2)  # FAST: two polls, then it gives up
    deploying = {"Key": "tritonship:deploying", "Value": ANY}
    stubs.sm.add_response("add_tags", {"Tags": []}, {"ResourceArn": ARN, "Tags": [deploying]})
    with pytest.raises(DeployError) as caught:
        run(stubs, plan)
    message = str(caught.value)
    assert "still Updating" in message and "rollback" not in message.split(";")[0]
    assert "nothing was rolled back" in message
    assert "tritonship status --endpoint demo" in message
    assert caught.value.exit_code == 3


def test_autoscaling_paused_for_the_update_is_left_for_status_to_restore(
    packaged: PackageResult, stubs: Stubs
) -> None:
    """An instance-type change deregistered autoscaling: the wait ends, nothing re-registers."""
    plan = make_plan(packaged, instance_type="ml.g4dn.2xlarge", smoke_test=False, **LINEAR)
    rid = {**SCALING, "ResourceId": "endpoint/demo/variant/AllTraffic"}
    up_to_update(stubs, plan, instance_type="ml.g4dn.xlarge", bounds=(1, 4))
    policy = {**rid, "PolicyName": "p", "PolicyARN": "arn:p", "PolicyType": "TargetTrackingScaling"}
    stubs.aas.add_response(
        "describe_scaling_policies", {"ScalingPolicies": [{**policy, "CreationTime": TIME}]}, rid
    )
    stubs.aas.add_response("delete_scaling_policy", {}, {**rid, "PolicyName": "p"})
    stubs.aas.add_response("deregister_scalable_target", {}, rid)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": plan.config_name,
            "DeploymentConfig": ANY,
            "RetainAllVariantProperties": True,
        },
    )
    describe(stubs, "Updating", plan.config_name, times=2)
    record = [
        {"Key": "tritonship:deploying", "Value": ANY},
        {
            "Key": "tritonship:pending-autoscaling",
            "Value": "variant=AllTraffic after=1:4 before=1:4 target=1000 async=no",
        },
    ]
    stubs.sm.add_response("add_tags", {}, {"ResourceArn": ARN, "Tags": record})
    with pytest.raises(DeployError, match="still Updating.*autoscaling 1:4 once it serves"):
        run(stubs, plan)


def test_the_smoke_test_of_a_new_variant_names_it(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, variant="canary", weight=0.1)
    summaries = [summary(weight=1.0)]
    existing_endpoint(stubs, plan, summaries=summaries)
    deployed = Deployed(
        {"EndpointConfigName": OLD, "EndpointStatus": "InService", "ProductionVariants": summaries},
        {"ProductionVariants": [old_variant()]},
    )
    resolved = resolve(plan, deployed)
    preflight_ok(stubs)
    archive_already_there(stubs, resolved)
    new_resources(stubs, resolved)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": resolved.config_name},
    )
    describe(stubs, "InService", resolved.config_name)
    answer(stubs, triton_answer(), variant="canary")
    result = run(stubs, plan)
    assert result.smoke is not None and result.smoke.verified
