"""``tritonship status``: Stubber for the deployment stages moto cannot show, moto end to end.

moto's endpoints are InService at once and never Updating, so a deployment in progress
(``PendingDeploymentSummary``, ``VariantStatus``) and SageMaker's own rollback are stubbed
with botocore's Stubber against the real service model; the restore of what promote
recorded runs against moto too.
"""

from __future__ import annotations

import json
from dataclasses import replace

import boto3
import pytest

from tests.support.stubs import ARN, OLD, ROLE, SCALING, TIME, Stubs, endpoint, summary
from tritonship.cli import main
from tritonship.cloud import aws
from tritonship.cloud.aws import make_clients, tag_list
from tritonship.cloud.status import Pending, endpoint_status
from tritonship.errors import TritonshipError

NEW = "demo-newconfig00000"
OURS = {"tritonship:managed": "true", "tritonship:endpoint": "demo"}
RID = {**SCALING, "ResourceId": "endpoint/demo/variant/AllTraffic"}
RECORD = Pending(NEW, OLD, after=(1, 4), before=(2, 6), started="2026-01-01T00:00:00Z")


def described(stubs: Stubs, answer: dict, tags: dict[str, str]) -> None:
    """DescribeEndpoint, then ListTags twice (ownership, then the record)."""
    stubs.sm.add_response("describe_endpoint", answer, {"EndpointName": "demo"})
    for _ in range(2):
        stubs.sm.add_response("list_tags", {"Tags": tag_list(tags)}, {"ResourceArn": ARN})


def registered(stubs: Stubs, bounds: tuple[int, int] | None) -> None:
    """DescribeScalableTargets of AllTraffic."""
    targets = []
    if bounds:
        targets = [
            {
                **RID,
                "MinCapacity": bounds[0],
                "MaxCapacity": bounds[1],
                "RoleARN": ROLE,
                "CreationTime": TIME,
            }
        ]
    stubs.aas.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": targets},
        {**SCALING, "ResourceIds": [RID["ResourceId"]]},
    )


def status(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys, *extra: str) -> str:
    monkeypatch.setattr(aws, "make_clients", lambda region: stubs.clients)
    assert main(["status", "--endpoint", "demo", *extra]) == 0
    return capsys.readouterr().out


def test_a_deployment_in_progress_shows_its_stage_and_writes_nothing(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    baking = {"Status": "Baking", "StatusMessage": "watching demo-5xx", "StartTime": TIME}
    answer = endpoint("Updating", OLD, variants=[summary(weight=1.0, count=2)])
    answer["PendingDeploymentSummary"] = {
        "EndpointConfigName": NEW,
        "StartTime": TIME,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "CurrentWeight": 0.1,
                "DesiredWeight": 1.0,
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 2,
                "VariantStatus": [baking],
            }
        ],
    }
    described(stubs, answer, {**OURS, **{t["Key"]: t["Value"] for t in RECORD.tags()}})
    registered(stubs, None)
    out = status(stubs, monkeypatch, capsys)
    assert f"endpoint demo: Updating, serving {OLD}" in out
    assert f"deploying {NEW} since" in out
    assert (
        "weight 0.1 (desired 1), instances 1 (desired 2); stage: Baking (watching demo-5xx)" in out
    )
    assert f"recorded by promote: deploying {NEW} (from {OLD})" in out
    assert "autoscaling 1:4 once it serves; 2:6 back if SageMaker rolls back" in out
    assert "run tritonship status --endpoint demo again once it is InService" in out


def _restored(stubs: Stubs, bounds: tuple[int, int]) -> None:
    """Register ``bounds`` with the endpoint's own tags, the policy, then drop the record."""
    stubs.aas.add_response(
        "register_scalable_target",
        {},
        {**RID, "MinCapacity": bounds[0], "MaxCapacity": bounds[1], "Tags": OURS},
    )
    stubs.aas.add_response("put_scaling_policy", {"PolicyARN": "arn:p"}, None)
    stubs.sm.add_response(
        "delete_tags",
        {},
        {"ResourceArn": ARN, "TagKeys": ["tritonship:deploying", "tritonship:pending-autoscaling"]},
    )


@pytest.mark.parametrize(
    ("serving", "bounds", "outcome"),
    [
        (NEW, (1, 4), f"the deployment finished: demo serves {NEW}"),
        (OLD, (2, 6), f"SageMaker rolled back: demo serves {OLD}, not {NEW}"),
    ],
)
def test_once_settled_it_registers_what_fits_the_config_served(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys, serving, bounds, outcome
) -> None:
    described(
        stubs,
        endpoint("InService", serving, variants=[summary()]),
        {**OURS, **{t["Key"]: t["Value"] for t in RECORD.tags()}},
    )
    _restored(stubs, bounds)
    registered(stubs, bounds)
    out = status(stubs, monkeypatch, capsys)
    assert outcome in out
    assert f"autoscaling of AllTraffic registered: {bounds[0]}..{bounds[1]}" in out
    assert "promote's record removed from the endpoint" in out
    assert f"autoscaling {bounds[0]}..{bounds[1]}" in out.splitlines()[1]


def test_a_failed_endpoint_keeps_the_record_and_says_what_next(
    stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    answer = endpoint("UpdateRollbackFailed", NEW, "rollback failed: capacity", [summary()])
    described(stubs, answer, {**OURS, **{t["Key"]: t["Value"] for t in RECORD.tags()}})
    registered(stubs, None)
    data = json.loads(status(stubs, monkeypatch, capsys, "--json"))
    assert data["endpoint"]["FailureReason"] == "rollback failed: capacity"
    assert data["recorded"]["after"] == [1, 4] and data["done"] == []


def test_an_endpoint_it_did_not_create_is_refused(stubs: Stubs) -> None:
    stubs.sm.add_response("describe_endpoint", endpoint("InService", OLD), {"EndpointName": "demo"})
    stubs.sm.add_response("list_tags", {"Tags": []}, {"ResourceArn": ARN})
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        endpoint_status(stubs.clients, "demo")


def test_the_record_round_trips_through_tags() -> None:
    tags = {t["Key"]: t["Value"] for t in replace(RECORD, asynchronous=True, target=5.0).tags()}
    assert Pending.from_tags(tags) == replace(RECORD, asynchronous=True, target=5.0)
    assert Pending.from_tags(OURS) is None
    plain = Pending(NEW, OLD)
    assert [t["Key"] for t in plain.tags()] == ["tritonship:deploying"]


# --- moto ----------------------------------------------------------------------------------


@pytest.fixture()
def moto_endpoint(aws_env: str) -> str:
    """An endpoint in moto, tagged as promote tags it, InService at once (moto's way)."""
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model(
        ModelName="demo-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "demo-model",
        "InstanceType": "ml.g4dn.xlarge",
        "InitialInstanceCount": 1,
    }
    sagemaker.create_endpoint_config(EndpointConfigName=NEW, ProductionVariants=[variant])
    arn = sagemaker.create_endpoint(
        EndpointName="demo", EndpointConfigName=NEW, Tags=tag_list(OURS)
    )["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=RECORD.tags())
    return arn


def test_status_against_moto_finishes_the_restore_once(moto_endpoint: str, capsys) -> None:
    assert main(["status", "--endpoint", "demo"]) == 0
    out = capsys.readouterr().out
    assert f"the deployment finished: demo serves {NEW}" in out
    assert "autoscaling of AllTraffic registered: 1..4" in out
    clients = make_clients("us-east-1")
    targets = clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]] == [(1, 4)]
    tags = clients.sagemaker.list_tags(ResourceArn=moto_endpoint)["Tags"]
    assert {t["Key"] for t in tags} == set(OURS)
    assert main(["status", "--endpoint", "demo"]) == 0  # nothing left to finish
    again = capsys.readouterr().out
    assert "done now" not in again and "recorded by promote" not in again
    assert "autoscaling 1..4" in again


def test_status_of_an_endpoint_that_is_not_there(aws_env: str, capsys) -> None:
    assert main(["status", "--endpoint", "nothing-here"]) == 1
    assert "no endpoint nothing-here" in capsys.readouterr().err
