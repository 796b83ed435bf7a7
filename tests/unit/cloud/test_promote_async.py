"""promote --async: an asynchronous endpoint, its scale to zero, its smoke test through S3.

Against a local moto server: CreateEndpointConfig keeps the ``AsyncInferenceConfig``,
InvokeEndpointAsync answers moto's canned output in a bucket of its own (moto 5.2
sagemakerruntime/models.py: ``{"default": "response"}``, so the smoke test says NOT
VERIFIED), Application Auto Scaling and CloudWatch take the backlog policies and the
from-zero alarm; Service Quotas is stubbed as in test_promote_moto. The options' checks and
the dry run need no server.
"""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from tests.support.aws import BUCKET, MOTO_WAITING, with_quotas
from tests.support.stubs import ROLE, Stubs, make_plan, missing
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.asynchronous import AsyncOptions, alarm_name
from tritonship.cloud.aws import make_clients
from tritonship.cloud.promote import apply, build_plan, summary_lines
from tritonship.cloud.state import PromoteOptions
from tritonship.cloud.teardown import teardown
from tritonship.errors import UsageError

OUTPUT = f"s3://{BUCKET}/async/demo/"
TOPIC = "arn:aws:sns:us-east-1:123456789012:demo-errors"


def test_the_async_inference_config(packaged: PackageResult) -> None:
    options = AsyncOptions(OUTPUT, error_topic=TOPIC, max_concurrent=4)
    plan = make_plan(packaged, asynchronous=options)
    assert plan.config_request()["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": OUTPUT,
            "S3FailurePath": f"{OUTPUT}failures/",
            "NotificationConfig": {"ErrorTopic": TOPIC},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    # The same variants, asynchronous or not, are two endpoint configs.
    assert plan.config_name != make_plan(packaged).config_name


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"asynchronous": AsyncOptions("models/out")}, "is not an s3:// path"),
        ({"asynchronous": AsyncOptions(OUTPUT, error_topic="demo")}, "is not an SNS topic ARN"),
        ({"asynchronous": AsyncOptions(OUTPUT, max_concurrent=0)}, "is not 1-1000"),
        ({"asynchronous": AsyncOptions(OUTPUT), "variant": "b"}, "cannot name a variant"),
        ({"autoscale": (0, 2)}, "only an asynchronous endpoint can"),
    ],
)
def test_what_an_asynchronous_endpoint_cannot_be(
    packaged: PackageResult, options: dict, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        make_plan(packaged, **options)


def test_the_dry_run_shows_the_config_the_smoke_test_and_scaling_to_zero(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    argv = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE]
    argv += ["--archive", str(packaged.archive), "--async", "--output", OUTPUT]
    assert main([*argv, "--autoscale", "0:2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert 'AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "' in out
    assert "sagemaker-runtime.invoke_endpoint_async(EndpointName=demo, InputLocation=s3://" in out
    assert "ApproximateBacklogSizePerInstance 5 per instance" in out
    assert "'MinCapacity': 0" in out
    assert f"cloudwatch.put_metric_alarm({alarm_name('demo')}: HasBacklogWithoutCapacity" in out


def test_the_cli_needs_an_output_for_async(packaged: PackageResult, capsys) -> None:
    argv = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE]
    assert main([*argv, "--archive", str(packaged.archive), "--async", "--dry-run"]) == 2
    assert "--async needs --output" in capsys.readouterr().err


# --- moto -----------------------------------------------------------------------------------


def test_promote_async_with_scale_to_zero_and_teardown(
    packaged: PackageResult, bucket: str, quotas: list[Stubber]
) -> None:
    options = PromoteOptions(
        "demo",
        bucket,
        ROLE,
        archive=packaged.archive,
        autoscale=(0, 2),
        autoscale_target=5.0,
        asynchronous=AsyncOptions(OUTPUT, max_concurrent=2),
    )
    plan = build_plan(options, "us-east-1")
    clients = with_quotas(make_clients("us-east-1"), quotas)
    said: list[str] = []
    result = apply(plan, clients, MOTO_WAITING, progress=False, say=said.append)
    assert result.action == "created" and result.autoscale == (0, 2)
    summary = "\n".join(summary_lines(result, plan))
    assert f"asynchronous: outputs to {OUTPUT}, failures to {OUTPUT}failures/" in summary
    assert "autoscaling: 0..2 instances, target 5 queued requests/instance" in summary
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=plan.config_name)
    assert config["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == OUTPUT
    # The smoke test went through S3: its input beside the archive, moto's canned output.
    smoke = next(line for line in said if line.startswith("smoke test (asynchronous"))
    assert "NOT VERIFIED" in smoke and f"s3://{bucket}/tritonship/demo/async-inputs/" in smoke
    targets = clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets["ScalableTargets"]] == [(0, 2)]
    policies = clients.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    kinds = sorted(p["PolicyType"] for p in policies["ScalingPolicies"])
    assert kinds == ["StepScaling", "TargetTrackingScaling"]
    tracking = next(
        p for p in policies["ScalingPolicies"] if p["PolicyType"] == "TargetTrackingScaling"
    )
    metric = tracking["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    (alarm,) = clients.cloudwatch.describe_alarms(AlarmNames=[alarm_name("demo")])["MetricAlarms"]
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity" and alarm["Threshold"] == 1
    step = next(p for p in policies["ScalingPolicies"] if p["PolicyType"] == "StepScaling")
    assert alarm["AlarmActions"] == [step["PolicyARN"]]

    report = teardown(clients, "demo", waiting=MOTO_WAITING)
    assert f"CloudWatch alarm {alarm_name('demo')}" in report.deleted
    assert clients.cloudwatch.describe_alarms(AlarmNames=[alarm_name("demo")])["MetricAlarms"] == []
