"""``promote --async``: an asynchronous endpoint, its autoscaling to zero and its smoke test.

The endpoint config's ``AsyncInferenceConfig`` (botocore's sagemaker 2017-07-24 service
model; API reference "AsyncInferenceConfig"): ``OutputConfig`` with ``S3OutputPath``,
``S3FailurePath`` (pattern ``(https|s3)://([^/])/?(.*)``, at most 512 characters) and an
optional ``NotificationConfig`` (``SuccessTopic``, ``ErrorTopic``: SNS topic ARNs), and an
optional ``ClientConfig.MaxConcurrentInvocationsPerInstance`` (1-1000; SageMaker picks a
value when it is absent).

Autoscaling (AWS guide "Autoscale an asynchronous endpoint"): target tracking on the
endpoint's ``ApproximateBacklogSizePerInstance`` (namespace ``AWS/SageMaker``, dimension
``EndpointName``, statistic Average; the guide's example aims at 5 with cooldowns of 600 s
in and 300 s out), with a minimum capacity that may be 0. At 0 instances the backlog per
instance never rises above the target, so the guide adds a step scaling policy (one more
instance) triggered by a CloudWatch alarm on ``HasBacklogWithoutCapacity`` >= 1: promote
adds both when ``--autoscale`` starts at 0.

The smoke test goes through S3 as every asynchronous request does
(:mod:`tritonship.sagemaker.asynchronous`); InvokeEndpointAsync has no ``TargetVariant``,
so an asynchronous endpoint keeps to one variant here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tritonship.cloud import autoscaling
from tritonship.cloud.aws import describe
from tritonship.cloud.smoke import SmokeRequest, SmokeResult, SmokeTestFailed, check_answer
from tritonship.errors import UsageError
from tritonship.sagemaker.asynchronous import default_failure_path

#: DestinationS3Uri (botocore): the pattern and length of S3OutputPath and S3FailurePath.
_S3_PATH = re.compile(r"^(https|s3)://([^/])/?(.*)$")
MAX_PATH_LENGTH = 512
#: SnsTopicArn (botocore).
_TOPIC = re.compile(r"^arn:aws[a-z\-]*:sns:[a-z0-9\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+$")
MAX_CONCURRENT = 1000
#: The guide's target: requests waiting per instance.
DEFAULT_BACKLOG_TARGET = 5.0
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
FROM_ZERO_METRIC = "HasBacklogWithoutCapacity"
NAMESPACE = "AWS/SageMaker"


@dataclass(frozen=True)
class AsyncOptions:
    """What ``--async`` asks for: where answers and failures go, whom to tell, how many."""

    output: str
    failure: str | None = None
    success_topic: str | None = None
    error_topic: str | None = None
    max_concurrent: int | None = None

    @property
    def failure_path(self) -> str:
        """S3FailurePath: ``--async-failure``, else ``failures/`` under the output path."""
        return self.failure or default_failure_path(self.output)

    def check(self) -> None:
        """Refuse what CreateEndpointConfig would refuse."""
        for option, path in (("--output", self.output), ("--async-failure", self.failure_path)):
            if not _S3_PATH.match(path) or len(path) > MAX_PATH_LENGTH:
                raise UsageError(
                    f"{option} {path!r} is not an s3:// path of at most {MAX_PATH_LENGTH} "
                    "characters",
                    hint="e.g. --output s3://my-bucket/async/demo/",
                )
        for option, topic in (
            ("--success-topic", self.success_topic),
            ("--error-topic", self.error_topic),
        ):
            if topic and not _TOPIC.match(topic):
                raise UsageError(
                    f"{option} {topic!r} is not an SNS topic ARN",
                    hint="arn:aws:sns:<region>:<account>:<topic>",
                )
        if self.max_concurrent is not None and not 1 <= self.max_concurrent <= MAX_CONCURRENT:
            raise UsageError(f"--max-concurrent {self.max_concurrent} is not 1-{MAX_CONCURRENT}")

    def request(self) -> dict[str, Any]:
        """The endpoint config's ``AsyncInferenceConfig``."""
        output: dict[str, Any] = {"S3OutputPath": self.output, "S3FailurePath": self.failure_path}
        topics = {"SuccessTopic": self.success_topic, "ErrorTopic": self.error_topic}
        if any(topics.values()):
            output["NotificationConfig"] = {k: v for k, v in topics.items() if v}
        config: dict[str, Any] = {"OutputConfig": output}
        if self.max_concurrent is not None:
            config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.max_concurrent}
        return config


# --- autoscaling on the backlog -------------------------------------------------------------


def alarm_name(endpoint: str) -> str:
    """The CloudWatch alarm that scales an endpoint at 0 instances up to 1."""
    return f"tritonship-{endpoint}-backlog-without-capacity"[:255]


def from_zero_policy_name(endpoint: str) -> str:
    """The step scaling policy the alarm triggers."""
    return f"tritonship-{endpoint}-from-zero"[:256]


def backlog_policy_request(endpoint: str, target: float, variant: str) -> dict[str, Any]:
    """PutScalingPolicy: target tracking on the backlog per instance (the guide's example)."""
    return {
        "PolicyName": autoscaling.policy_name(endpoint),
        "ServiceNamespace": autoscaling.NAMESPACE,
        "ResourceId": autoscaling.resource_id(endpoint, variant),
        "ScalableDimension": autoscaling.DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": target,
            "CustomizedMetricSpecification": {
                "MetricName": BACKLOG_METRIC,
                "Namespace": NAMESPACE,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average",
            },
            "ScaleInCooldown": 600,
            "ScaleOutCooldown": 300,
        },
    }


def from_zero_policy_request(endpoint: str, variant: str) -> dict[str, Any]:
    """PutScalingPolicy: one more instance whenever the from-zero alarm fires."""
    return {
        "PolicyName": from_zero_policy_name(endpoint),
        "ServiceNamespace": autoscaling.NAMESPACE,
        "ResourceId": autoscaling.resource_id(endpoint, variant),
        "ScalableDimension": autoscaling.DIMENSION,
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Average",
            "Cooldown": 300,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        },
    }


def from_zero_alarm_request(endpoint: str, policy_arn: str, tags: dict[str, str]) -> dict[str, Any]:
    """PutMetricAlarm: requests are waiting and no instance runs (the guide's alarm)."""
    return {
        "AlarmName": alarm_name(endpoint),
        "MetricName": FROM_ZERO_METRIC,
        "Namespace": NAMESPACE,
        "Statistic": "Average",
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "missing",
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
        "Period": 60,
        "AlarmActions": [policy_arn],
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def enable_scaling(
    clients: Any,
    endpoint: str,
    bounds: tuple[int, int],
    target: float,
    tags: dict[str, str],
    variant: str,
) -> None:
    """Register the variant, the backlog policy, and from 0 the step policy and its alarm."""
    client = clients.autoscaling
    client.register_scalable_target(**autoscaling.register_request(endpoint, bounds, tags, variant))
    client.put_scaling_policy(**backlog_policy_request(endpoint, target, variant))
    if bounds[0] == 0:
        arn = client.put_scaling_policy(**from_zero_policy_request(endpoint, variant))["PolicyARN"]
        clients.cloudwatch.put_metric_alarm(**from_zero_alarm_request(endpoint, arn, tags))


def delete_alarm(cloudwatch: Any, endpoint: str) -> bool:
    """Delete the from-zero alarm; False when there was none."""
    name = alarm_name(endpoint)
    if not cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms"):
        return False
    cloudwatch.delete_alarms(AlarmNames=[name])
    return True


def scaling_lines(endpoint: str, bounds: tuple[int, int], target: float, variant: str) -> list[str]:
    """The dry run's lines for the calls :func:`enable_scaling` makes."""
    register = autoscaling.register_request(endpoint, bounds, {}, variant)
    register.pop("Tags")
    lines = [
        f"application-autoscaling.register_scalable_target({register})",
        f"application-autoscaling.put_scaling_policy(target tracking: {BACKLOG_METRIC} "
        f"{target:g} per instance, EndpointName={endpoint})",
    ]
    if bounds[0] == 0:
        lines += [
            f"application-autoscaling.put_scaling_policy({from_zero_policy_name(endpoint)}: "
            "StepScaling +1 instance)",
            f"cloudwatch.put_metric_alarm({alarm_name(endpoint)}: {FROM_ZERO_METRIC} >= 1 for "
            "2 minutes -> that policy; scales up from 0 instances)",
        ]
    return lines


# --- the smoke test ---------------------------------------------------------------------------

#: How long the smoke test waits for its answer in S3 (the endpoint is InService by then).
SMOKE_TIMEOUT_SECONDS = 600.0
SMOKE_POLL_SECONDS = 5.0


def smoke_input(bucket: str, prefix: str, endpoint: str, sha: str) -> str:
    """Where the smoke test's request goes: beside the archives, named after its content."""
    return f"s3://{bucket}/{prefix.strip('/')}/{endpoint}/async-inputs/smoke-{sha[:16]}.in"


def smoke_test_async(
    clients: Any,
    endpoint: str,
    request: SmokeRequest,
    input_location: str,
    timeout: float = SMOKE_TIMEOUT_SECONDS,
    poll: float = SMOKE_POLL_SECONDS,
) -> SmokeResult:
    """Upload the request, InvokeEndpointAsync, wait for the answer in S3 and check it."""
    from tritonship.sagemaker import asynchronous as calls

    try:
        calls.upload(clients.s3, request.body, input_location, request.content_type)
        submission = calls.submit(clients.runtime, endpoint, input_location, request.content_type)
        answer = calls.wait(clients.s3, submission, timeout, poll)
    except Exception as err:
        raise SmokeTestFailed(f"InvokeEndpointAsync failed: {describe(err)}") from err
    if not answer.ok:
        text = answer.body.decode("utf-8", "replace").strip()[:300]
        raise SmokeTestFailed(f"the endpoint wrote a failure to {answer.location}: {text}")
    result = check_answer(answer.body, answer.content_type, request)
    return SmokeResult(result.verified, f"{result.detail} (output {answer.location})")
