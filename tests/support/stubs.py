"""Stubbed AWS clients for promote, with botocore's Stubber against the real service models.

Every helper queues the responses of one step of a promote, in the order the code calls
them (the Stubber checks the operation and its parameters, and the test asserts that no
response is left over): reading the deployed endpoint, the preflight, the upload check,
the new model and config, the update, the waits and the rollback.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tritonship.artifact.package import PackageResult
from tritonship.cloud.aws import AwsClients, tag_list
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.promote import apply, build_plan
from tritonship.cloud.state import Plan, PromoteOptions
from tritonship.errors import DeployError

ROLE = "arn:aws:iam::123456789012:role/tritonship-endpoint"
FAST = Waiting(delay=0, attempts=2)
OLD = "demo-oldconfig00000"
OLD_MODEL = "demo-oldmodel000000"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/demo"
TIME = "2026-01-01T00:00:00Z"
GPU = "ml.g4dn.xlarge"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
SCALING = {
    "ServiceNamespace": "sagemaker",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}
CLIENTS = (
    "s3",
    "sagemaker",
    "sagemaker-runtime",
    "application-autoscaling",
    "iam",
    "service-quotas",
    "logs",
)


@dataclass
class Stubs:
    """Stubbed clients and their Stubbers, plus what the run reported."""

    clients: AwsClients
    s3: Stubber
    sm: Stubber
    runtime: Stubber
    aas: Stubber
    iam: Stubber
    quotas: Stubber
    logs: Stubber
    said: list[str] = field(default_factory=list)

    def all(self) -> list[Stubber]:
        """Every Stubber."""
        return [self.s3, self.sm, self.runtime, self.aas, self.iam, self.quotas, self.logs]


def aws_session() -> boto3.session.Session:
    """A session with fake credentials (botocore loads each service model once per session)."""
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextmanager
def stubbed(session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    """Stubbed clients; on exit every queued response must have been used."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    clients = AwsClients(*(session.client(name) for name in CLIENTS))
    stubs = Stubs(clients, *(Stubber(client) for client in _ordered(clients)))
    for stubber in stubs.all():
        stubber.activate()
    yield stubs
    for stubber in stubs.all():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def _ordered(clients: AwsClients) -> list[Any]:
    return [
        clients.s3,
        clients.sagemaker,
        clients.runtime,
        clients.autoscaling,
        clients.iam,
        clients.quotas,
        clients.logs,
    ]


def make_plan(packaged: PackageResult, role: str = ROLE, **options: Any) -> Plan:
    """A plan for endpoint ``demo`` in us-east-1."""
    return build_plan(
        PromoteOptions("demo", "models", role, archive=packaged.archive, **options), "us-east-1"
    )


def missing(stubber: Stubber, method: str, what: str) -> None:
    """SageMaker's answer for a resource that does not exist."""
    stubber.add_client_error(method, "ValidationException", f"Could not find {what}.")


# --- preflight -----------------------------------------------------------------------------


def trusted_role(stubs: Stubs, document: dict | None = None) -> None:
    """iam:GetRole answering a role that sagemaker.amazonaws.com may assume."""
    role = {
        "Path": "/",
        "RoleName": "tritonship-endpoint",
        "RoleId": "AROAEXAMPLEEXAMPLE01",
        "Arn": ROLE,
        "CreateDate": TIME,
        "AssumeRolePolicyDocument": json.dumps(document or TRUST),
    }
    stubs.iam.add_response("get_role", {"Role": role}, {"RoleName": "tritonship-endpoint"})


def quota(stubs: Stubs, value: float = 8.0, instance_type: str = GPU) -> None:
    """Service Quotas listing '<type> for endpoint usage' at ``value``."""
    listed = {
        "ServiceCode": "sagemaker",
        "QuotaCode": "L-1234ABCD",
        "QuotaName": f"{instance_type} for endpoint usage",
        "Value": value,
    }
    other = {**listed, "QuotaCode": "L-0000AAAA", "QuotaName": "ml.m5.large for endpoint usage"}
    stubs.quotas.add_response(
        "list_service_quotas", {"Quotas": [other, listed]}, {"ServiceCode": "sagemaker"}
    )


def preflight_ok(stubs: Stubs, instance_type: str = GPU) -> None:
    """Both preflight checks pass."""
    trusted_role(stubs)
    quota(stubs, instance_type=instance_type)


# --- the deployed endpoint -----------------------------------------------------------------


def endpoint(
    status: str,
    config: str,
    reason: str | None = None,
    variants: list[dict] | None = None,
) -> dict:
    """A DescribeEndpoint answer."""
    answer = {
        "EndpointName": "demo",
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": TIME,
        "LastModifiedTime": TIME,
    }
    if variants is not None:
        answer["ProductionVariants"] = variants
    return {**answer, "FailureReason": reason} if reason else answer


def describe(
    stubs: Stubs,
    status: str,
    config: str,
    reason: str | None = None,
    times: int = 1,
    variants: list[dict] | None = None,
) -> None:
    """``times`` DescribeEndpoint answers."""
    for _ in range(times):
        stubs.sm.add_response(
            "describe_endpoint",
            endpoint(status, config, reason, variants),
            {"EndpointName": "demo"},
        )


def summary(name: str = "AllTraffic", weight: float = 1.0, count: int = 1) -> dict:
    """One ProductionVariantSummary of DescribeEndpoint."""
    return {
        "VariantName": name,
        "CurrentWeight": weight,
        "DesiredWeight": weight,
        "CurrentInstanceCount": count,
        "DesiredInstanceCount": count,
    }


def old_variant(name: str = "AllTraffic", instance_type: str = GPU, model: str = OLD_MODEL) -> dict:
    """One ProductionVariant of the old endpoint config."""
    return {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": instance_type,
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 1.0,
    }


def old_model(stubs: Stubs, name: str = OLD_MODEL, env: dict | None = None) -> None:
    """DescribeModel of a model the old config serves."""
    container = {
        "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3",
        "ModelDataUrl": "s3://models/tritonship/demo/0123456789abcdef/model.tar.gz",
        "Environment": env or {"SAGEMAKER_TRITON_DEFAULT_MODEL_NAME": "ensemble_dali_inception"},
    }
    stubs.sm.add_response(
        "describe_model",
        {
            "ModelName": name,
            "ModelArn": f"{ARN}-{name}",
            "PrimaryContainer": container,
            "ExecutionRoleArn": ROLE,
            "CreationTime": TIME,
        },
        {"ModelName": name},
    )


def scaling(stubs: Stubs, bounds: tuple[int, int] | None, variants: tuple[str, ...]) -> None:
    """DescribeScalableTargets of the endpoint's variants: ``bounds`` on the first one."""
    ids = [f"endpoint/demo/variant/{name}" for name in variants]
    targets = []
    if bounds:
        targets = [
            {
                **SCALING,
                "ResourceId": ids[0],
                "MinCapacity": bounds[0],
                "MaxCapacity": bounds[1],
                "RoleARN": ROLE,
                "CreationTime": TIME,
            }
        ]
    stubs.aas.add_response(
        "describe_scalable_targets", {"ScalableTargets": targets}, {**SCALING, "ResourceIds": ids}
    )


def existing_endpoint(
    stubs: Stubs,
    plan: Plan,
    instance_type: str = GPU,
    bounds: tuple[int, int] | None = None,
    count: int = 1,
    variants: list[dict] | None = None,
    summaries: list[dict] | None = None,
) -> None:
    """Reading the deployed endpoint: ours, InService on OLD, and what it serves."""
    variants = variants or [old_variant(instance_type=instance_type)]
    summaries = summaries or [summary(count=count)]
    describe(stubs, "InService", OLD, variants=summaries)
    stubs.sm.add_response("list_tags", {"Tags": tag_list(plan.tags)}, {"ResourceArn": ARN})
    stubs.sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": OLD,
            "EndpointConfigArn": f"{ARN}-old",
            "ProductionVariants": variants,
            "CreationTime": TIME,
        },
        {"EndpointConfigName": OLD},
    )
    for variant in variants:
        old_model(stubs, variant["ModelName"])
    scaling(stubs, bounds, tuple(v["VariantName"] for v in variants))


def archive_already_there(stubs: Stubs, plan: Plan) -> None:
    """A private bucket that holds the archive (each archive of the plan) already."""
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
    for upload in plan.uploads:
        stubs.s3.add_response(
            "head_object",
            {"ContentLength": upload.size, "Metadata": {"archive-sha256": upload.sha256}},
            {"Bucket": "models", "Key": upload.key, "ChecksumMode": "ENABLED"},
        )


# --- writes ---------------------------------------------------------------------------------


def new_resources(stubs: Stubs, plan: Plan) -> None:
    """The model and the endpoint config do not exist yet and are created."""
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-model"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_response(
        "create_endpoint_config", {"EndpointConfigArn": f"{ARN}-config"}, plan.config_request()
    )


def update(stubs: Stubs, plan: Plan, **extra: Any) -> None:
    """UpdateEndpoint to the new config with the plan's DeploymentConfig (and ``extra``)."""
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": plan.config_name,
            "DeploymentConfig": plan.deployment,
            **extra,
        },
    )


def update_back(stubs: Stubs, current: str, plan: Plan, **extra: Any) -> None:
    """The rollback: UpdateEndpoint back to OLD (``extra``: e.g. retained properties)."""
    describe(stubs, current, plan.config_name)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": OLD, **extra},
    )
    describe(stubs, "InService", OLD)


def deleted(stubs: Stubs, plan: Plan, endpoint_too: bool = False) -> None:
    """The rollback deletes what the run created."""
    if endpoint_too:
        stubs.sm.add_response("delete_endpoint", {}, {"EndpointName": "demo"})
    stubs.sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": plan.config_name})
    stubs.sm.add_response("delete_model", {}, {"ModelName": plan.model_name})


def up_to_update(
    stubs: Stubs, plan: Plan, instance_type: str = GPU, bounds: tuple[int, int] | None = None
) -> None:
    """Reading an endpoint of two instances, the preflight, the upload check, the new model
    and config: everything before UpdateEndpoint."""
    existing_endpoint(stubs, plan, instance_type=instance_type, bounds=bounds, count=2)
    preflight_ok(stubs, plan.options.instance_type)
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)


def mme_plan(models_dir: Path, *names: str, **options: Any) -> Plan:
    """The plan of a multi-model endpoint holding these archives of ``models_dir``."""
    archives = tuple(models_dir / name for name in names)
    return build_plan(
        PromoteOptions("demo", "models", ROLE, multi_model=True, archives=archives, **options),
        "us-east-1",
    )


def updating(stubs: Stubs, plan: Plan, bounds: tuple[int, int] | None = None, **extra: Any) -> None:
    """Everything up to UpdateEndpoint of an existing endpoint (same instance type)."""
    existing_endpoint(stubs, plan, bounds=bounds)
    preflight_ok(stubs)
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)
    update(stubs, plan, **extra)


def creating(stubs: Stubs, plan: Plan) -> None:
    """Everything up to CreateEndpoint of a first deployment."""
    missing(stubs.sm, "describe_endpoint", "endpoint")
    preflight_ok(stubs)
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)
    stubs.sm.add_response(
        "create_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": plan.config_name, "Tags": ANY},
    )


def answer(stubs: Stubs, body: str, variant: str | None = "AllTraffic", **expected: Any) -> None:
    """InvokeEndpoint answers ``body`` as JSON.

    The request must name ``variant`` (``TargetVariant``: promote's smoke test always
    does); None for a request that names none (``invoke`` without ``--target-variant``).
    """
    data = body.encode()
    named = {"TargetVariant": variant} if variant else {}
    stubs.runtime.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        {
            "EndpointName": "demo",
            "Body": ANY,
            "ContentType": "application/json",
            **named,
            **expected,
        },
    )


def log_tail(stubs: Stubs, lines: list[str]) -> None:
    """The endpoint's newest log stream and its last events."""
    group = "/aws/sagemaker/Endpoints/demo"
    stubs.logs.add_response(
        "describe_log_streams",
        {"logStreams": [{"logStreamName": "AllTraffic/i-0abc"}]},
        {"logGroupName": group, "orderBy": "LastEventTime", "descending": True},
    )
    events = [{"timestamp": 1, "message": line, "ingestionTime": 1} for line in lines]
    stubs.logs.add_response(
        "get_log_events",
        {"events": events},
        {
            "logGroupName": group,
            "logStreamName": "AllTraffic/i-0abc",
            "limit": 20,
            "startFromHead": False,
        },
    )


def run(stubs: Stubs, plan: Plan, waiting: Waiting = FAST):  # noqa: ANN201 - PromoteResult
    """Apply the plan with the stubbed clients; what it says goes to ``stubs.said``."""
    return apply(plan, stubs.clients, waiting, progress=False, say=stubs.said.append)


def fails(stubs: Stubs, plan: Plan, match: str, waiting: Waiting = FAST) -> DeployError:
    """Run the promote; it must fail with a DeployError whose message matches."""
    with pytest.raises(DeployError, match=match) as caught:
        run(stubs, plan, waiting)
    return caught.value
