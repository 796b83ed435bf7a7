"""promote, traffic and teardown against a local moto server: the real code, boto3 and HTTP.

moto runs S3, IAM, SageMaker, Application Auto Scaling and CloudWatch Logs; a new endpoint
is InService at once, InvokeEndpoint answers a canned placeholder unless an answer is
queued, and UpdateEndpoint is not implemented (those paths are in test_promote_update.py,
test_promote_autoscaling.py and test_promote_guardrails.py, with botocore's Stubber).
moto lacks Service Quotas' ListServiceQuotas: promote's quota check gets a stubbed client
(botocore's Stubber) beside the moto ones.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from tests.support.aws import (
    ALL_BLOCKED,
    BUCKET,
    MOTO_WAITING,
    queue_invoke_answer,
    triton_answer,
    with_quotas,
)
from tests.support.stubs import ROLE
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.aws import make_clients
from tritonship.cloud.promote import apply, build_plan
from tritonship.cloud.state import PromoteOptions
from tritonship.cloud.teardown import teardown
from tritonship.errors import DeployError, TritonshipError
from tritonship.sagemaker.settings import EnvSources


def promote(packaged: PackageResult, handed: list[Stubber], endpoint: str = "demo", **options):
    plan = build_plan(
        PromoteOptions(endpoint, BUCKET, ROLE, archive=packaged.archive, **options), "us-east-1"
    )
    clients = with_quotas(make_clients("us-east-1"), handed)
    return plan, apply(plan, clients, MOTO_WAITING, progress=False), clients


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


def test_first_promote_creates_everything_tagged(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    plan, result, clients = promote(packaged, quotas)
    sm, s3 = clients.sagemaker, clients.s3
    assert (result.action, result.uploaded) == ("created", True)
    endpoint = sm.describe_endpoint(EndpointName="demo")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == plan.config_name
    model = sm.describe_model(ModelName=plan.model_name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == plan.upload.uri
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_TRITON_DEFAULT_MODEL_NAME"] == (
        "ensemble_dali_inception"
    )
    assert model["PrimaryContainer"]["Image"].endswith("/sagemaker-tritonserver:24.09-py3")
    config = sm.describe_endpoint_config(EndpointConfigName=plan.config_name)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"
    for arn in (endpoint["EndpointArn"], model["ModelArn"], config["EndpointConfigArn"]):
        assert tags_of(sm, arn) == {
            "tritonship:managed": "true",
            "tritonship:endpoint": "demo",
            "tritonship:archive-sha256": packaged.sha256,
        }
    head = s3.head_object(Bucket=BUCKET, Key=plan.upload.key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["archive-sha256"] == packaged.sha256
    assert head["ContentLength"] == packaged.size
    s3.head_object(Bucket=BUCKET, Key=plan.upload.manifest_key)
    assert not result.smoke.verified and "moto's canned placeholder" in result.smoke.detail


def test_second_promote_of_the_same_archive_uploads_nothing(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    plan, first, clients = promote(packaged, quotas)
    before = clients.s3.head_object(Bucket=BUCKET, Key=plan.upload.key)
    _, second, _ = promote(packaged, quotas)
    after = clients.s3.head_object(Bucket=BUCKET, Key=plan.upload.key)
    assert (second.action, second.uploaded) == ("unchanged", False)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert len(clients.sagemaker.list_models()["Models"]) == 1


def test_smoke_test_decodes_a_real_answer(
    packaged: PackageResult, aws_env: str, bucket: str, quotas: list[Stubber]
) -> None:
    queue_invoke_answer(aws_env, triton_answer())
    _, result, _ = promote(packaged, quotas)
    assert result.smoke.verified
    assert "OUTPUT [1,1001] sums to 1.0000" in result.smoke.detail


def test_failed_smoke_test_deletes_the_first_deployment(
    packaged: PackageResult, aws_env: str, bucket: str, quotas: list[Stubber]
) -> None:
    queue_invoke_answer(aws_env, triton_answer(classes=10))
    with pytest.raises(DeployError, match=r"shape \[1, 10\].*deleted endpoint demo"):
        promote(packaged, quotas)
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_autoscale_registers_target_tracking(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    _, result, clients = promote(packaged, quotas, autoscale=(1, 3), autoscale_target=500.0)
    assert result.autoscale == (1, 3)
    aas = clients.autoscaling
    (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        "endpoint/demo/variant/AllTraffic",
        1,
        3,
    )
    (policy,) = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 500.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def test_a_bucket_open_to_the_public_is_refused(
    packaged: PackageResult, role: str, quotas: list[Stubber]
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    with pytest.raises(TritonshipError, match="does not block public access.*put-public-access"):
        promote(packaged, quotas)
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=BUCKET)
    assert listed["KeyCount"] == 0


def test_teardown_removes_everything_and_twice_is_fine(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    _, _, clients = promote(packaged, quotas, autoscale=(1, 2))
    report = teardown(clients, "demo", delete_artifacts=True, waiting=MOTO_WAITING)
    assert len(report.deleted) == 6  # autoscaling, endpoint, config, model, archive, manifest
    sm, s3 = clients.sagemaker, clients.s3
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert (
        clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
            "ScalableTargets"
        ]
        == []
    )
    again = teardown(clients, "demo", delete_artifacts=True, waiting=MOTO_WAITING)
    assert again.deleted == []


def test_teardown_keeps_archives_unless_asked(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    plan, _, clients = promote(packaged, quotas)
    report = teardown(clients, "demo", waiting=MOTO_WAITING)
    assert plan.upload.uri in report.kept
    swept = teardown(clients, "demo", delete_artifacts=True, bucket=BUCKET, waiting=MOTO_WAITING)
    assert plan.upload.uri in swept.deleted
    assert clients.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_teardown_refuses_an_endpoint_it_did_not_create(aws_env: str) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model(
        ModelName="theirs", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "example.com/image:1"}
    )
    sm.create_endpoint_config(
        EndpointConfigName="theirs",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "theirs",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="theirs", EndpointConfigName="theirs")
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        teardown(make_clients("us-east-1"), "theirs", waiting=MOTO_WAITING)
    assert sm.describe_endpoint(EndpointName="theirs")["EndpointStatus"] == "InService"


def test_cli_package_promote_teardown(
    packaged: PackageResult,
    bucket: str,
    capsys: pytest.CaptureFixture,
    cli_quotas: None,
    quotas: list[Stubber],
) -> None:
    common = ["--endpoint", "cli-demo"]
    promote_args = [
        *common,
        "--bucket",
        BUCKET,
        "--role",
        ROLE,
        "--archive",
        str(packaged.archive),
        "--quiet",
        "--poll",
        "0.01",
        "--skip-smoke-test",
    ]
    assert main(["promote", *promote_args]) == 0
    assert "endpoint cli-demo (us-east-1): created" in capsys.readouterr().out
    assert main(["teardown", *common, "--delete-artifacts"]) == 0
    assert "deleted 5 resource(s)" in capsys.readouterr().out
    assert main(["teardown", *common]) == 0
    assert "nothing left to delete" in capsys.readouterr().out
    unasked = quotas[1:]  # the teardowns' clients: teardown never asks Service Quotas
    del quotas[1:]
    for stubber in unasked:
        with pytest.raises(AssertionError, match="1 responses remaining"):
            stubber.assert_no_pending_responses()


def test_kms_key_encrypts_the_archive(
    packaged: PackageResult, aws_env: str, bucket: str, quotas: list[Stubber]
) -> None:
    key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    plan, result, clients = promote(packaged, quotas, kms_key=key, smoke_test=False)
    head = clients.s3.head_object(Bucket=BUCKET, Key=plan.upload.key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)
    assert result.smoke is None


def test_the_dry_run_shows_what_a_new_environment_and_image_change(
    packaged: PackageResult, bucket: str, quotas: list[Stubber], tmp_path: Path
) -> None:
    """Against what moto serves, the plan names every difference (image, environment)."""
    from tritonship.cloud.planning import preview

    plan, _, clients = promote(packaged, quotas, smoke_test=False)
    env = tmp_path / "sagemaker.env"
    env.write_text(
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=ensemble_dali_inception\n"
        "SAGEMAKER_TRITON_LOG_VERBOSE=1\nSAGEMAKER_TRITON_THREAD_COUNT=16\n"
    )
    options = PromoteOptions(
        "demo",
        BUCKET,
        ROLE,
        archive=packaged.archive,
        env_sources=EnvSources(env_file=env),
        image_tag="24.05-py3",
    )
    changed = build_plan(options, "us-east-1")
    assert (changed.model_name, changed.config_name) != (plan.model_name, plan.config_name)
    lines, calls = preview(changed, clients, MOTO_WAITING)
    assert lines[0] == f"endpoint demo is InService, serving {plan.config_name}"
    assert "variant AllTraffic: Image: " in lines[1] and lines[1].endswith(":24.05-py3")
    assert "variant AllTraffic: Environment SAGEMAKER_TRITON_LOG_VERBOSE: 0 -> 1" in lines
    assert "variant AllTraffic: Environment SAGEMAKER_TRITON_THREAD_COUNT: (unset) -> 16" in lines
    assert any(c.startswith('sagemaker.update_endpoint(EndpointName="demo"') for c in calls)
    same, _ = preview(plan, clients, MOTO_WAITING)
    assert same[-1] == f"it serves {plan.config_name} already: nothing to deploy"


def test_a_role_that_does_not_exist_fails_before_any_write(
    packaged: PackageResult, aws_env: str
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    plan = build_plan(PromoteOptions("demo", BUCKET, ROLE, archive=packaged.archive), "us-east-1")
    with pytest.raises(TritonshipError, match="role .*tritonship-endpoint does not exist"):
        apply(plan, make_clients("us-east-1"), MOTO_WAITING, progress=False)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert boto3.client("sagemaker", region_name="us-east-1").list_models()["Models"] == []
