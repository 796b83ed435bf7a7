"""Production variants: A/B testing as the original example mentions.

``promote --variant NAME --weight W`` adds a variant beside the serving ones (or replaces
it) with a new endpoint config (Stubber: moto lacks UpdateEndpoint); ``traffic`` shifts
the weights with UpdateEndpointWeightsAndCapacities and ``teardown`` removes every
variant's model and autoscaling (moto); ``invoke --target-variant`` sends TargetVariant.
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    GPU,
    OLD,
    OLD_MODEL,
    ROLE,
    Stubs,
    archive_already_there,
    describe,
    existing_endpoint,
    make_plan,
    missing,
    old_variant,
    quota,
    run,
    summary,
    trusted_role,
)
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud.aws import make_clients, tag_list, toolkit_tags
from tritonship.cloud.deployed import Deployed
from tritonship.cloud.endpoints import Waiting
from tritonship.cloud.planning import resolve
from tritonship.cloud.state import Plan
from tritonship.cloud.teardown import teardown
from tritonship.cloud.traffic import parse_weights, shift_traffic
from tritonship.errors import TritonshipError, UsageError
from tritonship.sagemaker.client import SageMakerTransport, classify

FAST = Waiting(delay=0.01, attempts=5)
DESIRED_WEIGHT = [{"VariantPropertyType": "DesiredWeight"}]


def deployed_as(variants: list[dict], summaries: list[dict], scaling: dict | None = None):
    """The Deployed that ``existing_endpoint`` describes, to resolve the plan as apply does."""
    endpoint = {"EndpointConfigName": OLD, "EndpointStatus": "InService"}
    config = {"ProductionVariants": variants}
    return Deployed({**endpoint, "ProductionVariants": summaries}, config, {}, scaling or {})


def variant_update(stubs: Stubs, plan: Plan, **update: object) -> None:
    """New model and config of the resolved plan, then UpdateEndpoint with ``update``."""
    trusted_role(stubs)
    quota(stubs, 8.0)  # both fleets of every variant of that type, during the cutover
    archive_already_there(stubs, plan)
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-m"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_response(
        "create_endpoint_config", {"EndpointConfigArn": f"{ARN}-c"}, plan.config_request()
    )
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": plan.config_name, **update},
    )
    describe(stubs, "InService", plan.config_name)


def test_a_new_variant_goes_beside_the_serving_one(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, variant="canary", weight=0.1, smoke_test=False)
    summaries = [summary(weight=0.7, count=2)]
    existing_endpoint(stubs, plan, summaries=summaries)
    resolved = resolve(plan, deployed_as([old_variant()], summaries))
    assert resolved.variants == [
        {
            "VariantName": "AllTraffic",
            "ModelName": OLD_MODEL,
            "InstanceType": GPU,
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 0.7,
        },
        {
            "VariantName": "canary",
            "ModelName": plan.model_name,
            "InstanceType": GPU,
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 0.1,
            "ContainerStartupHealthCheckTimeoutInSeconds": 900,
            "ModelDataDownloadTimeoutInSeconds": 900,
        },
    ]
    variant_update(stubs, resolved)  # the variant names change: no DeploymentConfig
    result = run(stubs, plan)
    assert (result.action, result.variant, result.config_name) == (
        "updated",
        "canary",
        resolved.config_name,
    )
    assert any("variants: AllTraffic -> AllTraffic, canary" in line for line in stubs.said)


def test_promoting_into_an_existing_variant_replaces_only_it(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, variant="canary", weight=0.2, smoke_test=False)
    variants = [old_variant(), old_variant("canary", model="demo-canary0000000")]
    summaries = [summary(weight=0.8), summary("canary", weight=0.2)]
    existing_endpoint(stubs, plan, variants=variants, summaries=summaries)
    resolved = resolve(plan, deployed_as(variants, summaries))
    assert [v["ModelName"] for v in resolved.variants] == [OLD_MODEL, plan.model_name]
    variant_update(stubs, resolved, DeploymentConfig=plan.deployment)  # same names: blue/green
    assert run(stubs, plan).action == "updated"
    assert "variant canary: ModelDataUrl: " in "\n".join(stubs.said)


def test_an_autoscaled_endpoint_keeps_capacity_but_takes_the_new_weights(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, variant="canary", weight=0.1, smoke_test=False)
    existing_endpoint(stubs, plan, bounds=(1, 4), count=3)
    resolved = resolve(
        plan, deployed_as([old_variant()], [summary(count=3)], {"AllTraffic": (1, 4)})
    )
    variant_update(
        stubs,
        resolved,
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=DESIRED_WEIGHT,
    )
    assert run(stubs, plan).action == "updated"


def test_guardrails_are_refused_when_the_variants_change_before_any_write(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, variant="canary", traffic="canary:10:60")
    existing_endpoint(stubs, plan)
    with pytest.raises(UsageError, match="need the same variant names"):
        run(stubs, plan)


def test_invoke_target_variant_sends_it(session: boto3.session.Session) -> None:
    client = session.client("sagemaker-runtime")
    body = triton_answer().encode()
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
            {"EndpointName": "demo", "ContentType": ANY, "Body": ANY, "TargetVariant": "canary"},
        )
        transport = SageMakerTransport("demo", client=client, target_variant="canary")
        (result,) = classify(transport, [("cat.jpg", b"\xff\xd8jpeg")], binary=False)
        stubber.assert_no_pending_responses()
    assert "variant canary" in transport.target and len(result.predictions) == 5


def test_target_variant_needs_an_endpoint(tmp_path, capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(b"jpeg")
    assert main(["invoke", str(image), "--target-variant", "canary"]) == 2
    assert "--target-variant needs --endpoint" in capsys.readouterr().err


# --- moto: traffic and teardown --------------------------------------------------------------


def two_variant_endpoint(name: str = "demo", managed: bool = True) -> None:
    """An endpoint with variants AllTraffic and canary, as promote --variant leaves it."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    tags = tag_list(toolkit_tags(name, "0" * 64)) if managed else []
    variants = []
    for variant, weight in (("AllTraffic", 0.9), ("canary", 0.1)):
        model = f"{name}-{variant.lower()}"
        container = {"Image": "example.com/image:1", "ModelDataUrl": f"s3://b/{model}.tar.gz"}
        sm.create_model(
            ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer=container, Tags=tags
        )
        variants.append(
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": GPU,
                "InitialVariantWeight": weight,
            }
        )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-ab", ProductionVariants=variants, Tags=tags
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-ab", Tags=tags)


def test_traffic_shifts_the_weights_and_waits(aws_env: str) -> None:
    two_variant_endpoint()
    said: list[str] = []
    final = shift_traffic(
        make_clients("us-east-1"),
        "demo",
        parse_weights(["AllTraffic=0.5", "canary=0.5"]),
        FAST,
        progress=False,
        say=said.append,
    )
    assert final == {"AllTraffic": 0.5, "canary": 0.5}
    described = boto3.client("sagemaker", region_name="us-east-1").describe_endpoint(
        EndpointName="demo"
    )
    assert {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]} == final
    assert any(
        "shifting traffic of demo: AllTraffic=0.5 (50%), canary=0.5 (50%)" in s for s in said
    )


def test_traffic_cli_refuses_an_unknown_variant(
    aws_env: str, capsys: pytest.CaptureFixture
) -> None:
    two_variant_endpoint()
    assert main(["traffic", "--endpoint", "demo", "blue=1", "--quiet", "--poll", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "has no variant blue" in err and "AllTraffic, canary" in err
    assert (
        main(["traffic", "--endpoint", "demo", "canary=1", "AllTraffic=0", "--poll", "0.01"]) == 0
    )
    assert "endpoint demo: AllTraffic=0 (0%), canary=1 (100%)" in capsys.readouterr().out


def test_traffic_leaves_an_endpoint_it_did_not_create_alone(aws_env: str) -> None:
    two_variant_endpoint(managed=False)
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        shift_traffic(make_clients("us-east-1"), "demo", {"canary": 1.0}, FAST, progress=False)


@pytest.mark.parametrize("pairs", [["canary"], ["canary=-1"], ["a=1", "a=2"], ["a=0"], ["=1"]])
def test_bad_weights_are_usage_errors(pairs: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_weights(pairs)


def test_teardown_removes_every_variants_model_and_autoscaling(aws_env: str) -> None:
    two_variant_endpoint()
    aas = boto3.client("application-autoscaling", region_name="us-east-1")
    for variant in ("AllTraffic", "canary"):
        aas.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/demo/variant/{variant}",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=2,
        )
    report = teardown(make_clients("us-east-1"), "demo", waiting=FAST)
    assert sorted(report.deleted) == [
        "autoscaling of endpoint/demo/variant/AllTraffic",
        "autoscaling of endpoint/demo/variant/canary",
        "endpoint config demo-ab",
        "endpoint demo",
        "model demo-alltraffic",
        "model demo-canary",
    ]
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_models()["Models"] == []
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert json.dumps(report.kept)  # the archives the models named are reported, not deleted
