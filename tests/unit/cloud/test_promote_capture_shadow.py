"""``promote --capture`` and ``--shadow`` (and ``--shadow-promote``) send botocore's shapes.

What CreateEndpointConfig requires comes from botocore's own service model (sagemaker
2017-07-24 ``service-2.json``): ``DataCaptureConfig`` requires InitialSamplingPercentage,
DestinationS3Uri and CaptureOptions, each ``CaptureOption`` a CaptureMode, each
``ProductionVariant`` (in ``ShadowProductionVariants`` as in ``ProductionVariants``) a
VariantName. The expected requests below are written out field by field, so a field the
code stopped sending fails the Stubber; the model-driven tests read the required members
from the installed botocore, so they follow it.

moto (5.2) stores DataCaptureConfig and answers it back, but silently drops
ShadowProductionVariants and lacks UpdateEndpoint: shadows are checked with Stubber, which
validates every request against the same model.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    FAST,
    GPU,
    OLD,
    OLD_MODEL,
    TIME,
    Stubs,
    answer,
    archive_already_there,
    describe,
    endpoint,
    existing_endpoint,
    make_plan,
    missing,
    old_model,
    old_variant,
    preflight_ok,
    run,
    scaling,
    summary,
)
from tritonship.artifact.package import PackageResult
from tritonship.cli import main
from tritonship.cloud import aws
from tritonship.cloud.aws import tag_list, toolkit_tags
from tritonship.cloud.capture import CaptureSpec
from tritonship.cloud.deployed import Deployed
from tritonship.cloud.guardrails import (
    DEFAULT_DOWNLOAD_SECONDS,
    DEFAULT_STARTUP_SECONDS,
    provisioning_seconds,
    variant_timeouts,
)
from tritonship.cloud.metrics import METRICS, MetricsReport, Series
from tritonship.cloud.planning import preview, resolve
from tritonship.cloud.shadow import comparison_lines, variant_roles
from tritonship.errors import UsageError

CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 20,
    "DestinationS3Uri": "s3://models/tritonship/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
}


def service_model() -> Any:
    return boto3.session.Session(region_name="us-east-1").client("sagemaker").meta.service_model


def required(shape: str) -> list[str]:
    return list(service_model().shape_for(shape).required_members)


def validate(request: dict[str, Any]) -> None:
    """botocore's own validation of CreateEndpointConfig's input (raises when invalid)."""
    shape = service_model().operation_model("CreateEndpointConfig").input_shape
    validate_parameters(request, shape)


# --- --capture ------------------------------------------------------------------------------


def test_capture_sends_every_field_the_model_requires(packaged: PackageResult) -> None:
    plan = make_plan(packaged, capture=CaptureSpec(20))
    request = plan.config_request()
    config = request["DataCaptureConfig"]
    assert config == CAPTURE
    assert set(required("DataCaptureConfig")) == {
        "InitialSamplingPercentage",
        "DestinationS3Uri",
        "CaptureOptions",
    }
    for member in required("DataCaptureConfig"):
        assert member in config
    for option in config["CaptureOptions"]:
        assert set(required("CaptureOption")) <= set(option)
    validate(request)


@pytest.mark.parametrize(
    "member", ["InitialSamplingPercentage", "DestinationS3Uri", "CaptureOptions"]
)
def test_botocore_refuses_a_capture_config_without_a_required_field(
    packaged: PackageResult, member: str
) -> None:
    """The check above has teeth: botocore itself refuses the request without the field."""
    request = copy.deepcopy(make_plan(packaged, capture=CaptureSpec(20)).config_request())
    del request["DataCaptureConfig"][member]
    with pytest.raises(ParamValidationError, match=member):
        validate(request)


def test_capture_changes_the_config_name_and_shows_in_the_dry_run(packaged: PackageResult) -> None:
    plain = make_plan(packaged)
    captured = make_plan(packaged, capture=CaptureSpec(20))
    assert captured.config_name != plain.config_name
    assert captured.model_name == plain.model_name
    prefixed = make_plan(packaged, capture=CaptureSpec(5, "s3://elsewhere/traffic"), kms_key="k1")
    config = prefixed.config_request()["DataCaptureConfig"]
    assert (config["DestinationS3Uri"], config["KmsKeyId"]) == ("s3://elsewhere/traffic", "k1")


@pytest.mark.parametrize(
    ("percent", "prefix", "match"),
    [(0, None, "1-100"), (101, None, "1-100"), (10, "http://x", "not an S3 URI")],
)
def test_capture_options_sagemaker_would_refuse(
    percent: int, prefix: str | None, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        CaptureSpec(percent, prefix)


def test_capture_on_a_new_endpoint_through_the_stubber(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, capture=CaptureSpec(20), smoke_test=False)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    preflight_ok(stubs)
    archive_already_there(stubs, plan)
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-m"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    expected = {
        "EndpointConfigName": plan.config_name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": plan.model_name,
                "InstanceType": GPU,
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0,
                **BUDGETS,
            }
        ],
        "DataCaptureConfig": CAPTURE,
        "Tags": tag_list(plan.tags),
    }
    stubs.sm.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}-c"}, expected)
    stubs.sm.add_response(
        "create_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": plan.config_name,
            "Tags": tag_list(plan.tags),
        },
    )
    describe(stubs, "InService", plan.config_name)
    assert run(stubs, plan).action == "created"


def test_the_cli_takes_capture_and_its_prefix(packaged: PackageResult) -> None:
    from tritonship.cli import build_parser
    from tritonship.cli.traffic_loop import promote_traffic

    args = build_parser().parse_args(
        ["promote", "--endpoint", "e", "--capture", "7", "--capture-prefix", "s3://b/p"]
    )
    assert promote_traffic(args) == {"capture": CaptureSpec(7, "s3://b/p"), "shadow": None}
    args = build_parser().parse_args(["promote", "--endpoint", "e", "--capture-prefix", "s3://b"])
    with pytest.raises(UsageError, match="goes with --capture"):
        promote_traffic(args)


# --- moto: the capture config as SageMaker stores it -----------------------------------------


def test_moto_stores_the_capture_config_promote_sends(
    packaged: PackageResult,
    bucket: str,  # noqa: F811 - the fixture imported above
    quotas: list[Stubber],  # noqa: F811
) -> None:
    from tests.unit.cloud.test_promote_moto import promote

    plan, result, clients = promote(packaged, quotas, capture=CaptureSpec(20), smoke_test=False)
    stored = clients.sagemaker.describe_endpoint_config(EndpointConfigName=plan.config_name)
    expected = {**CAPTURE, "DestinationS3Uri": "s3://tritonship-test-models/tritonship/capture"}
    assert stored["DataCaptureConfig"] == expected
    for member in required("DataCaptureConfig"):
        assert member in stored["DataCaptureConfig"]
    assert result.action == "created"


# --- --shadow -------------------------------------------------------------------------------


#: The startup and download budgets promote sets on the variant it deploys (the defaults).
BUDGETS = variant_timeouts(DEFAULT_STARTUP_SECONDS, DEFAULT_DOWNLOAD_SECONDS, multi_model=False)


def shadow_variant(model: str, weight: float) -> dict[str, Any]:
    return {
        "VariantName": "Shadow",
        "ModelName": model,
        "InstanceType": GPU,
        "InitialInstanceCount": 1,
        "InitialVariantWeight": weight,
    }


def live_deployed() -> Deployed:
    """What ``existing_endpoint`` describes: AllTraffic at weight 1, one instance."""
    described = {"EndpointConfigName": OLD, "EndpointStatus": "InService"}
    return Deployed(
        {**described, "ProductionVariants": [summary()]}, {"ProductionVariants": [old_variant()]}
    )


def test_shadow_sends_shadow_production_variants_beside_the_live_one(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, shadow=50)
    resolved = resolve(plan, live_deployed())
    assert set(required("ProductionVariant")) == {"VariantName"}
    expected = {
        "EndpointConfigName": resolved.config_name,
        "ProductionVariants": [old_variant()],
        "ShadowProductionVariants": [{**shadow_variant(plan.model_name, 0.5), **BUDGETS}],
        "Tags": tag_list(plan.tags),
    }
    validate(expected)
    existing_endpoint(stubs, plan)
    preflight_ok(stubs)
    archive_already_there(stubs, plan)
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-m"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}-c"}, expected)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": "demo",
            "EndpointConfigName": resolved.config_name,
            "DeploymentConfig": plan.deployment,
        },
    )
    describe(stubs, "InService", resolved.config_name)
    answer(stubs, triton_answer())  # the smoke test reaches the live variant: no TargetVariant
    result = run(stubs, plan)
    assert (result.action, result.variant) == ("updated", "Shadow")
    said = "\n".join(stubs.said)
    assert "shadow variant Shadow added: model " in said
    assert "a copy of 50% of AllTraffic's requests (weight 0.5)" in said


def test_the_shadow_dry_run_names_the_shadow_and_its_config(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, shadow=25, capture=CaptureSpec(10))
    existing_endpoint(stubs, plan)
    changes, calls = preview(plan, stubs.clients, FAST)
    assert any("shadow variant Shadow added" in line for line in changes)
    assert any(line.startswith("data capture: off -> 10% of requests") for line in changes)
    create = next(c for c in calls if c.startswith("sagemaker.create_endpoint_config("))
    assert 'ShadowProductionVariants=[{"VariantName": "Shadow"' in create
    assert '"InitialVariantWeight": 0.25' in create and 'DataCaptureConfig={"' in create
    assert any("smoke test reaches the live variant" in c for c in calls)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"shadow": 0}, "1-100"),
        ({"shadow": 10, "autoscale": (1, 2)}, "--autoscale applies to live variants"),
        ({"shadow": 10, "traffic": "canary:10:60"}, "a shadow takes none"),
    ],
)
def test_shadow_options_that_cannot_be(packaged: PackageResult, options: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        make_plan(packaged, **options)


def test_a_shadow_needs_exactly_one_live_variant(packaged: PackageResult) -> None:
    plan = make_plan(packaged, shadow=10)
    with pytest.raises(UsageError, match="needs a live variant"):
        resolve(plan, None)
    two = Deployed(
        {"ProductionVariants": [summary(), summary("canary")]},
        {"ProductionVariants": [old_variant(), old_variant("canary")]},
    )
    with pytest.raises(UsageError, match="has 2 live variants"):
        resolve(plan, two)
    with pytest.raises(UsageError, match="cannot take the live variant's name"):
        resolve(make_plan(packaged, shadow=10, variant="AllTraffic"), live_deployed())


# --- --shadow-promote -----------------------------------------------------------------------


SHADOW_MODEL = "demo-shadowmodel000"


def endpoint_with_shadow(stubs: Stubs, capture: dict | None = None) -> dict[str, Any]:
    """Reading an endpoint that serves AllTraffic and a shadow (Describe calls only)."""
    described = endpoint("InService", OLD, variants=[summary(weight=0.8, count=2)])
    described["ShadowProductionVariants"] = [summary("Shadow", weight=0.4)]
    stubs.sm.add_response("describe_endpoint", described, {"EndpointName": "demo"})
    tags = tag_list(toolkit_tags("demo", None))
    stubs.sm.add_response("list_tags", {"Tags": tags}, {"ResourceArn": ARN})
    config = {
        "EndpointConfigName": OLD,
        "EndpointConfigArn": f"{ARN}-old",
        "ProductionVariants": [old_variant()],
        "ShadowProductionVariants": [
            {**shadow_variant(SHADOW_MODEL, 0.5), "InstanceType": "ml.g4dn.2xlarge"}
        ],
        "CreationTime": TIME,
    }
    if capture:
        config["DataCaptureConfig"] = capture
    stubs.sm.add_response("describe_endpoint_config", config, {"EndpointConfigName": OLD})
    old_model(stubs, OLD_MODEL)
    scaling(stubs, None, ("AllTraffic",))
    return config


def promoted_config(name: str) -> dict[str, Any]:
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": SHADOW_MODEL,
                "InstanceType": "ml.g4dn.2xlarge",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 0.8,
            }
        ],
        "DataCaptureConfig": CAPTURE,
        "Tags": tag_list(toolkit_tags("demo", None)),
    }


@pytest.fixture()
def cli_stubs(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> Stubs:
    monkeypatch.setattr(aws, "make_clients", lambda region, attempts=5: stubs.clients)
    return stubs


def test_shadow_promote_makes_the_shadow_live_under_the_live_name(
    cli_stubs: Stubs, capsys: pytest.CaptureFixture
) -> None:
    stubs = cli_stubs
    endpoint_with_shadow(stubs, CAPTURE)
    from tritonship.cloud.guardrails import deployment_config
    from tritonship.cloud.shadow_promote import plan_promotion

    provisioning = provisioning_seconds(DEFAULT_STARTUP_SECONDS, DEFAULT_DOWNLOAD_SECONDS, False)
    deployment = deployment_config("canary:10:300", ("demo-5xx",), 5, provisioning)
    promotion, _ = plan_promotion(stubs.clients, "demo", deployment)
    name = promotion.config_name
    expected = promoted_config(name)
    assert promotion.config == expected
    validate(expected)
    endpoint_with_shadow(stubs, CAPTURE)
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}-c"}, expected)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": name, "DeploymentConfig": deployment},
    )
    describe(stubs, "InService", name)
    code = main(
        [
            "promote",
            "--endpoint",
            "demo",
            "--shadow-promote",
            "--traffic",
            "canary:10:300",
            "--alarm",
            "demo-5xx",
            "--bake",
            "5",
            "--quiet",
            "--poll",
            "0.01",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "shadow Shadow is live as variant AllTraffic (model demo-shadowmodel000" in out


def test_shadow_promote_dry_run_and_refusals(
    packaged: PackageResult, cli_stubs: Stubs, capsys: pytest.CaptureFixture
) -> None:
    stubs = cli_stubs
    endpoint_with_shadow(stubs)
    assert main(["promote", "--endpoint", "demo", "--shadow-promote", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: no write call made" in out
    assert "variant AllTraffic: model demo-oldmodel000000 -> demo-shadowmodel000" in out
    assert 'sagemaker.update_endpoint({"EndpointName": "demo"' in out
    existing_endpoint(stubs, make_plan(packaged))
    assert main(["promote", "--endpoint", "demo", "--shadow-promote"]) == 2
    assert "0 shadow variant(s) beside 1 live one(s)" in capsys.readouterr().err
    code = main(["promote", "--endpoint", "demo", "--shadow-promote", "--shadow", "5"])
    assert code == 2 and "takes no archive" in capsys.readouterr().err


# --- metrics: the shadow beside the live variant ------------------------------------------------


def test_metrics_know_which_variant_is_the_shadow(stubs: Stubs) -> None:
    described = endpoint("InService", OLD, variants=[summary()])
    described["ShadowProductionVariants"] = [summary("Shadow")]
    stubs.sm.add_response("describe_endpoint", described, {"EndpointName": "demo"})
    assert variant_roles(stubs.clients.sagemaker, "demo") == {
        "AllTraffic": "live",
        "Shadow": "shadow",
    }
    stubs.sm.add_client_error("describe_endpoint", "ValidationException", "Could not find")
    assert variant_roles(stubs.clients.sagemaker, "demo") == {}


def test_metrics_set_the_shadow_beside_the_live_variant() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    spec = {m.name: m for m in METRICS}
    series = [
        Series("AllTraffic", spec["ModelLatency"], (now,), (10.0,)),
        Series("Shadow", spec["ModelLatency"], (now,), (12.5,)),
        Series("AllTraffic", spec["Invocations"], (now,), (100.0,)),
        Series("Shadow", spec["Invocations"], (now,), (50.0,)),
    ]
    report = MetricsReport("demo", now, now, 60, tuple(series))
    (line,) = comparison_lines(report, {"AllTraffic": "live", "Shadow": "shadow"})
    assert line.startswith("shadow Shadow vs live AllTraffic: Invocations 50 vs 100 (-50%)")
    assert "ModelLatency 12.5 ms vs 10 ms (+25%)" in line
    assert comparison_lines(report, {"AllTraffic": "live"}) == []


def test_the_deployed_shadow_is_said_to_go_when_a_promote_names_none(
    packaged: PackageResult,
) -> None:
    from tritonship.cloud.traffic_loop import change_lines

    deployed = Deployed(
        {"EndpointConfigName": OLD, "ProductionVariants": [summary()]},
        {
            "ProductionVariants": [old_variant()],
            "ShadowProductionVariants": [shadow_variant("m", 1.0)],
        },
    )
    lines = change_lines(make_plan(packaged), deployed)
    assert lines == ["shadow variant Shadow is removed (this promote names no --shadow)"]


def test_the_metrics_command_labels_and_compares_the_shadow(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """moto's CloudWatch holds both variants' metrics; DescribeEndpoint's roles (moto drops
    ShadowProductionVariants) come from the stubbed answer checked above."""
    from tests.unit.cloud.test_metrics import put
    from tritonship.cli import observe
    from tritonship.cloud.metrics import INVOCATION_NAMESPACE

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    put(cloudwatch, INVOCATION_NAMESPACE, "ModelLatency", "AllTraffic", [10_000, 10_000])
    put(cloudwatch, INVOCATION_NAMESPACE, "ModelLatency", "Shadow", [15_000, 15_000])
    roles = {"AllTraffic": "live", "Shadow": "shadow"}
    monkeypatch.setattr(observe, "_variant_roles", lambda region, endpoint: roles)
    assert main(["metrics", "--endpoint", "demo"]) == 0
    out = capsys.readouterr().out
    assert "AllTraffic (live)" in out and "Shadow (shadow)" in out
    assert "shadow Shadow vs live AllTraffic: ModelLatency 15 ms vs 10 ms (+50%)" in out
    assert main(["metrics", "--endpoint", "demo", "--json"]) == 0
    series = json.loads(capsys.readouterr().out)["series"]
    assert {(s["variant"], s["role"]) for s in series} == set(roles.items())
