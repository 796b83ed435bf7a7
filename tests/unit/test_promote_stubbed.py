"""The paths moto lacks, with botocore's Stubber against the real service models.

UpdateEndpoint (success, a Failed endpoint, SageMaker's own rollback), a failed first
deployment, a smoke test that fails, a waiter that times out, a rollback that fails, and
autoscaling paused across an instance-type change. Every Stubber must be used up exactly:
an unexpected call fails the test, so the rollback's calls are asserted one by one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tests.support.aws import triton_answer
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.aws import AwsClients, tag_list
from tritonship.cloud.endpoints import EndpointTimeout, Waiting
from tritonship.cloud.promote import BLUE_GREEN, PromoteInterrupted, apply, build_plan
from tritonship.cloud.state import Plan, PromoteOptions
from tritonship.errors import DeployError, TritonshipError

ROLE = "arn:aws:iam::123456789012:role/tritonship-endpoint"
FAST = Waiting(delay=0, attempts=2)
OLD = "demo-oldconfig00000"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/demo"


@dataclass
class Stubs:
    """Stubbed clients and their Stubbers."""

    clients: AwsClients
    s3: Stubber
    sm: Stubber
    runtime: Stubber
    aas: Stubber


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    """One session for the module: botocore loads each service model once (~0.5 s)."""
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture()
def stubs(monkeypatch: pytest.MonkeyPatch, session: boto3.session.Session) -> Iterator[Stubs]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    clients = AwsClients(
        *(
            session.client(name)
            for name in ("s3", "sagemaker", "sagemaker-runtime", "application-autoscaling")
        )
    )
    stubbers = [
        Stubber(client)
        for client in (clients.s3, clients.sagemaker, clients.runtime, clients.autoscaling)
    ]
    for stubber in stubbers:
        stubber.activate()
    yield Stubs(clients, *stubbers)
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def make_plan(packaged: PackageResult, **options) -> Plan:
    return build_plan(
        PromoteOptions("demo", "models", ROLE, archive=packaged.archive, **options), "us-east-1"
    )


def missing(stubber: Stubber, method: str, what: str) -> None:
    stubber.add_client_error(method, "ValidationException", f"Could not find {what}.")


def archive_already_there(stubs: Stubs, plan: Plan) -> None:
    blocked = {
        name: True
        for name in (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
    }
    stubs.s3.add_response(
        "get_public_access_block", {"PublicAccessBlockConfiguration": blocked}, {"Bucket": "models"}
    )
    stubs.s3.add_response(
        "head_object",
        {
            "ContentLength": plan.upload.size,
            "Metadata": {"archive-sha256": plan.upload.sha256},
        },
        {"Bucket": "models", "Key": plan.upload.key, "ChecksumMode": "ENABLED"},
    )


def endpoint(status: str, config: str, reason: str | None = None) -> dict:
    answer = {
        "EndpointName": "demo",
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
    }
    return {**answer, "FailureReason": reason} if reason else answer


def describe(
    stubs: Stubs, status: str, config: str, reason: str | None = None, times: int = 1
) -> None:
    for _ in range(times):
        stubs.sm.add_response(
            "describe_endpoint", endpoint(status, config, reason), {"EndpointName": "demo"}
        )


def existing_endpoint(stubs: Stubs, plan: Plan) -> None:
    describe(stubs, "InService", OLD)
    stubs.sm.add_response("list_tags", {"Tags": tag_list(plan.tags)}, {"ResourceArn": ARN})


def new_resources(stubs: Stubs, plan: Plan) -> None:
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-model"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_response(
        "create_endpoint_config", {"EndpointConfigArn": f"{ARN}-config"}, plan.config_request()
    )


def old_config(stubs: Stubs, instance_type: str = "ml.g4dn.xlarge") -> None:
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "demo-old",
        "InstanceType": instance_type,
        "InitialInstanceCount": 1,
    }
    stubs.sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": OLD,
            "EndpointConfigArn": f"{ARN}-old",
            "ProductionVariants": [variant],
            "CreationTime": "2026-01-01T00:00:00Z",
        },
        {"EndpointConfigName": OLD},
    )


def update(stubs: Stubs, plan: Plan) -> None:
    old_config(stubs)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": plan.config_name,
            "DeploymentConfig": BLUE_GREEN,
        },
    )


def update_back(stubs: Stubs, current: str, plan: Plan) -> None:
    describe(stubs, current, plan.config_name)
    stubs.sm.add_response(
        "update_endpoint", {"EndpointArn": ARN}, {"EndpointName": "demo", "EndpointConfigName": OLD}
    )
    describe(stubs, "InService", OLD)


def deleted(stubs: Stubs, plan: Plan, endpoint_too: bool = False) -> None:
    if endpoint_too:
        stubs.sm.add_response("delete_endpoint", {}, {"EndpointName": "demo"})
    stubs.sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": plan.config_name})
    stubs.sm.add_response("delete_model", {}, {"ModelName": plan.model_name})


def updating(stubs: Stubs, plan: Plan) -> None:
    """Everything up to UpdateEndpoint of an existing endpoint (same instance type)."""
    archive_already_there(stubs, plan)
    existing_endpoint(stubs, plan)
    new_resources(stubs, plan)
    update(stubs, plan)


def creating(stubs: Stubs, plan: Plan) -> None:
    """Everything up to CreateEndpoint of a first deployment."""
    archive_already_there(stubs, plan)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    new_resources(stubs, plan)
    stubs.sm.add_response(
        "create_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": plan.config_name, "Tags": ANY},
    )


def answer(stubs: Stubs, body: str) -> None:
    data = body.encode()
    stubs.runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        {"EndpointName": "demo", "Body": ANY, "ContentType": "application/json"},
    )


def run(stubs: Stubs, plan: Plan, waiting: Waiting = FAST):
    return apply(plan, stubs.clients, waiting, progress=False)


def fails(stubs: Stubs, plan: Plan, match: str) -> DeployError:
    """Run the promote; it must fail with a DeployError whose message matches."""
    with pytest.raises(DeployError, match=match) as caught:
        run(stubs, plan)
    return caught.value


def test_update_blue_green_then_smoke_test(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan)
    describe(stubs, "Updating", plan.config_name)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer())
    result = run(stubs, plan)
    assert (result.action, result.uploaded, result.smoke.verified) == ("updated", False, True)


def test_failed_update_rolls_back_with_the_failure_reason(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan)
    describe(stubs, "Failed", plan.config_name, "CannotStartContainerError: serve exited 1")
    update_back(stubs, "Failed", plan)
    deleted(stubs, plan)
    message = str(fails(stubs, plan, "rolled back"))
    assert "is Failed: CannotStartContainerError: serve exited 1" in message
    assert f"endpoint demo is back on {OLD}" in message
    assert f"deleted endpoint config {plan.config_name}" in message


def test_update_sagemaker_rolled_back_itself(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan)
    describe(stubs, "InService", OLD, "ModelError: health check failed")
    describe(stubs, "InService", OLD)
    deleted(stubs, plan)
    fails(stubs, plan, f"SageMaker kept {OLD}: ModelError: health check")


def test_failed_first_deployment_deletes_what_it_created(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    creating(stubs, plan)
    describe(stubs, "Failed", plan.config_name, "ResourceLimitExceeded: ml.g4dn.xlarge quota 0")
    deleted(stubs, plan, endpoint_too=True)
    fails(stubs, plan, "quota 0; rolled back: deleted endpoint demo")


def test_smoke_failure_after_update_rolls_back(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    stubs.runtime.add_client_error(
        "invoke_endpoint", "ModelError", "Received server error (500)", http_status_code=424
    )
    update_back(stubs, "InService", plan)
    deleted(stubs, plan)
    fails(stubs, plan, f"ModelError: Received server error.*back on {OLD}")


def test_waiter_timeout_on_create_deletes_everything(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, smoke_test=False)
    creating(stubs, plan)
    describe(stubs, "Creating", plan.config_name, times=2)
    deleted(stubs, plan, endpoint_too=True)
    cause = fails(stubs, plan, "still Creating after").__cause__
    assert isinstance(cause, EndpointTimeout) and isinstance(cause, TimeoutError)


def test_ctrl_c_while_waiting_says_how_to_resume_or_tear_down(
    packaged: PackageResult, stubs: Stubs, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(packaged)
    creating(stubs, plan)

    class CtrlC:
        """The endpoint_in_service waiter, interrupted by the user."""

        def wait(self, **_: object) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(stubs.clients.sagemaker, "get_waiter", lambda name: CtrlC())
    with pytest.raises(PromoteInterrupted) as caught:
        run(stubs, plan)
    message = str(caught.value)
    assert plan.config_name in message and "tagged for teardown" in message
    assert "promote again" in message and "tritonship teardown --endpoint demo" in message
    assert caught.value.exit_code == 130


def test_a_failed_rollback_says_so_and_keeps_the_new_resources(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    updating(stubs, plan)
    describe(stubs, "Updating", plan.config_name, times=3)  # two polls, then the rollback's
    stubs.sm.add_client_error(
        "update_endpoint", "ValidationException", "Cannot update in-progress endpoint"
    )
    fails(stubs, plan, "still Updating.*rollback FAILED.*in-progress.*teardown")


def test_instance_type_change_pauses_and_restores_autoscaling(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, instance_type="ml.g4dn.2xlarge", smoke_test=False)
    rid = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/demo/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    archive_already_there(stubs, plan)
    existing_endpoint(stubs, plan)
    new_resources(stubs, plan)
    old_config(stubs, "ml.g4dn.xlarge")
    stubs.aas.add_response(
        "describe_scalable_targets",
        {
            "ScalableTargets": [
                {
                    **rid,
                    "MinCapacity": 1,
                    "MaxCapacity": 4,
                    "RoleARN": ROLE,
                    "CreationTime": "2026-01-01T00:00:00Z",
                }
            ]
        },
        None,
    )
    stubs.aas.add_response(
        "describe_scaling_policies",
        {
            "ScalingPolicies": [
                {
                    **rid,
                    "PolicyName": "p",
                    "PolicyARN": "arn:p",
                    "PolicyType": "TargetTrackingScaling",
                    "CreationTime": "2026-01-01T00:00:00Z",
                }
            ]
        },
        None,
    )
    stubs.aas.add_response("delete_scaling_policy", {}, {**rid, "PolicyName": "p"})
    stubs.aas.add_response("deregister_scalable_target", {}, rid)
    stubs.sm.add_response("update_endpoint", {"EndpointArn": ARN}, None)
    describe(stubs, "InService", plan.config_name)
    stubs.aas.add_response(
        "register_scalable_target",
        {},
        {**rid, "MinCapacity": 1, "MaxCapacity": 4, "Tags": plan.tags},
    )
    stubs.aas.add_response("put_scaling_policy", {"PolicyARN": "arn:p"}, None)
    assert run(stubs, plan).autoscale == (1, 4)


def test_an_endpoint_someone_else_made_is_left_alone(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    archive_already_there(stubs, plan)
    describe(stubs, "InService", "theirs")
    stubs.sm.add_response("list_tags", {"Tags": []}, {"ResourceArn": ARN})
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        run(stubs, plan)


def test_dry_run_makes_no_call(
    packaged: PackageResult, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def no_client(*args, **kwargs):
        raise AssertionError("dry run created an AWS client")

    monkeypatch.setattr(boto3.session.Session, "client", no_client)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    code = main(
        [
            "promote",
            "--endpoint",
            "demo",
            "--bucket",
            "models",
            "--role",
            ROLE,
            "--archive",
            str(packaged.archive),
            "--autoscale",
            "1:4",
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "dry run: no AWS call made" in out
    for call in (
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.update_endpoint",
        "sagemaker-runtime.invoke_endpoint",
        "register_scalable_target",
        "put_scaling_policy",
        "ServerSideEncryption",
    ):
        assert call in out
    assert "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-tritonserver:24.09-py3" in out


def test_cli_reports_a_failed_promote_in_one_line(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    creating(stubs, plan)
    describe(stubs, "Failed", plan.config_name, "ClientError: image not found")
    deleted(stubs, plan, endpoint_too=True)
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region: stubs.clients)
    code = main(
        [
            "promote",
            "--endpoint",
            "demo",
            "--bucket",
            "models",
            "--role",
            ROLE,
            "--archive",
            str(packaged.archive),
            "--skip-smoke-test",
            "--poll",
            "0.01",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "error: promote of demo failed: endpoint demo is Failed: ClientError: image not" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("--autoscale", "4:1", "MIN:MAX"),
        ("--role", "not-an-arn", "IAM role ARN"),
        ("--image-tag", "25.04-py3", "tensorflow"),
        ("--endpoint", "bad_name", "not valid"),
        ("--poll", "0", "must be positive"),
    ],
)
def test_bad_options_are_usage_errors(
    packaged: PackageResult,
    option: str,
    value: str,
    match: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    args = {"--endpoint": "demo", "--bucket": "models", "--role": ROLE, option: value}
    argv = [
        "promote",
        *[x for pair in args.items() for x in pair],
        "--archive",
        str(packaged.archive),
        "--dry-run",
    ]
    assert main(argv) == 2
    assert match in capsys.readouterr().err
