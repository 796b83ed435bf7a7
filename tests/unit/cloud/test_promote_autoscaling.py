"""An autoscaled endpoint keeps its capacity through promote, its rollback and a paused update.

UpdateEndpoint carries ``RetainAllVariantProperties`` (AWS guide "Update endpoints that use
auto scaling": otherwise the new fleet starts at the config's InitialInstanceCount), as
does the rollback; an instance-type change deregisters the scaling target and registers
it again after; a wait that ends while the endpoint is Updating leaves the paused scaling,
recorded on the endpoint, to ``tritonship status`` (Stubber).
"""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from tests.support.stubs import (
    ARN,
    OLD,
    SCALING,
    TIME,
    Stubs,
    archive_already_there,
    deleted,
    describe,
    existing_endpoint,
    fails,
    make_plan,
    new_resources,
    preflight_ok,
    run,
    up_to_update,
    update,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.errors import DeployError

RETAIN = {"RetainAllVariantProperties": True}


LINEAR = {"traffic": "linear:10:600", "bake_minutes": 30}


def test_update_of_an_autoscaled_endpoint_retains_its_capacity(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    updating(stubs, plan, bounds=(1, 4), **RETAIN)
    describe(stubs, "InService", plan.config_name)
    result = run(stubs, plan)
    assert result.action == "updated"
    assert any("RetainAllVariantProperties" in line for line in stubs.said), stubs.said


def test_the_rollback_of_an_autoscaled_endpoint_retains_its_capacity(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan, bounds=(1, 4), **RETAIN)
    describe(stubs, "InService", plan.config_name)
    stubs.runtime.add_client_error("invoke_endpoint", "ModelError", "boom", http_status_code=424)
    update_back(stubs, "InService", plan, **RETAIN)
    deleted(stubs, plan)
    fails(stubs, plan, f"boom.*back on {OLD}")


def test_instance_type_change_pauses_and_restores_autoscaling(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, instance_type="ml.g4dn.2xlarge", smoke_test=False)
    rid = {**SCALING, "ResourceId": "endpoint/demo/variant/AllTraffic"}
    existing_endpoint(stubs, plan, instance_type="ml.g4dn.xlarge", bounds=(1, 4), count=3)
    preflight_ok(stubs, "ml.g4dn.2xlarge")
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)
    policy = {
        **rid,
        "PolicyName": "p",
        "PolicyARN": "arn:p",
        "PolicyType": "TargetTrackingScaling",
        "CreationTime": TIME,
    }
    stubs.aas.add_response("describe_scaling_policies", {"ScalingPolicies": [policy]}, rid)
    stubs.aas.add_response("delete_scaling_policy", {}, {**rid, "PolicyName": "p"})
    stubs.aas.add_response("deregister_scalable_target", {}, rid)
    update(stubs, plan, RetainAllVariantProperties=True)
    describe(stubs, "InService", plan.config_name)
    stubs.aas.add_response(
        "register_scalable_target",
        {},
        {**rid, "MinCapacity": 1, "MaxCapacity": 4, "Tags": plan.tags},
    )
    stubs.aas.add_response("put_scaling_policy", {"PolicyARN": "arn:p"}, None)
    assert run(stubs, plan).autoscale == (1, 4)


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
