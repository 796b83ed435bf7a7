"""The paths moto lacks, with botocore's Stubber against the real service models.

UpdateEndpoint (success, a Failed endpoint, SageMaker's own rollback), a failed first
deployment, a smoke test that fails, a waiter that times out, a rollback that fails, and
autoscaling paused across an instance-type change. Every Stubber must be used up exactly:
an unexpected call fails the test, so the rollback's calls are asserted one by one.
"""

from __future__ import annotations

import json

import pytest

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
    creating,
    deleted,
    describe,
    existing_endpoint,
    fails,
    make_plan,
    missing,
    new_resources,
    preflight_ok,
    run,
    update,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.endpoints import EndpointTimeout
from tritonship.cloud.promote import PromoteInterrupted
from tritonship.errors import TritonshipError


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

    monkeypatch.setattr("tritonship.cloud.endpoints.serving_waiter", lambda sagemaker: CtrlC())
    with pytest.raises(PromoteInterrupted) as caught:
        run(stubs, plan)
    message = str(caught.value)
    assert plan.config_name in message and "tagged for teardown" in message
    assert "promote again" in message and "tritonship teardown --endpoint demo" in message
    assert caught.value.exit_code == 130


def test_a_failed_rollback_says_so_and_keeps_the_new_resources(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    updating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    stubs.runtime.add_client_error(
        "invoke_endpoint", "ModelError", "Received server error (500)", http_status_code=424
    )
    describe(stubs, "InService", plan.config_name)  # the rollback reads the endpoint first
    stubs.sm.add_client_error("update_endpoint", "ResourceLimitExceeded", "quota exceeded")
    fails(stubs, plan, "ModelError.*rollback FAILED.*quota exceeded.*teardown")


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


def test_an_endpoint_someone_else_made_is_left_alone(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    describe(stubs, "InService", "theirs")
    stubs.sm.add_response("list_tags", {"Tags": []}, {"ResourceArn": ARN})
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        run(stubs, plan)


def _dry_run(packaged: PackageResult, *extra: str) -> int:
    return main(
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
            *extra,
            "--dry-run",
        ]
    )


def test_dry_run_makes_no_write_call(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Only DescribeEndpoint is answered: any other call would fail the Stubber."""
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    assert _dry_run(packaged) == 0
    out = capsys.readouterr().out
    assert "dry run: no write call made" in out
    assert "endpoint demo does not exist: it will be created (1 x ml.g4dn.xlarge" in out
    for call in (
        "iam.get_role(RoleName=tritonship-endpoint)",
        'list_service_quotas(ServiceCode=sagemaker)  -> "ml.g4dn.xlarge for endpoint usage" '
        "must be >= 4",
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.create_endpoint(EndpointName=demo",
        "sagemaker-runtime.invoke_endpoint",
        "register_scalable_target",
        "put_scaling_policy",
        "ServerSideEncryption",
    ):
        assert call in out
    assert "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3" in out


def test_dry_run_without_access_still_prints_the_plan(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    stubs.sm.add_client_error("describe_endpoint", "AccessDeniedException", "no", 400)
    guarded = ("--traffic", "linear:20:5m", "--alarm", "demo-5xx", "--bake", "10")
    assert _dry_run(packaged, *guarded) == 0
    out = capsys.readouterr().out
    assert "cannot be described (describe: AccessDeniedException: no)" in out
    config = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            },
            "TerminationWaitInSeconds": 600,
            # 2400 provisioning + 4 waits of 300 s + 600 bake + 300 termination
            "MaximumExecutionTimeoutInSeconds": 4500,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "demo-5xx"}]},
    }
    assert f"DeploymentConfig={json.dumps(config)}" in out


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
