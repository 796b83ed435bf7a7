"""The divergences from SageMaker's contract that issue 11 found, each with its test.

Item 1: an autoscaled endpoint keeps its capacity across the update and the rollback
(``RetainAllVariantProperties``). Item 2: a model's name covers its whole container
definition. Item 3: any failure after the first write rolls back; the smoke photo is read
while planning. Item 4: a terminal status ends the wait at once, with the FailureReason and
the tail of the endpoint's logs. Item 10: the role's trust policy and the instance quota
are checked before anything is written. Stubber throughout: moto lacks UpdateEndpoint and
Service Quotas.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    FAST,
    GPU,
    OLD,
    ROLE,
    Stubs,
    answer,
    archive_already_there,
    creating,
    deleted,
    describe,
    fails,
    log_tail,
    make_plan,
    missing,
    new_resources,
    preflight_ok,
    quota,
    run,
    trusted_role,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.cloud import promote as promote_module
from tritonship.cloud.endpoints import Waiting
from tritonship.errors import TritonshipError, UsageError
from tritonship.sagemaker.settings import EnvSources

RETAIN = {"RetainAllVariantProperties": True}


# --- item 1: autoscaled endpoints keep their capacity -------------------------------------


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


# --- item 2: a model's identity is its whole container definition -------------------------


def test_model_and_config_names_cover_image_environment_and_role(
    packaged: PackageResult, tmp_path: Path
) -> None:
    base = make_plan(packaged)
    env = tmp_path / "sagemaker.env"
    env.write_text(
        "SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=ensemble_dali_inception\n"
        "SAGEMAKER_TRITON_LOG_VERBOSE=false\n"
    )
    role = ROLE.replace("tritonship-endpoint", "other")
    for changed in (
        make_plan(packaged, env_sources=EnvSources(env_file=env)),
        make_plan(packaged, image_tag="24.05-py3"),
        make_plan(packaged, role=role),
    ):
        assert changed.model_name != base.model_name
        assert changed.config_name != base.config_name
    bigger = make_plan(packaged, instance_count=2)
    assert (bigger.model_name, bigger.config_name != base.config_name) == (base.model_name, True)


# --- item 3: roll back on any failure after the first write -------------------------------


def test_a_missing_smoke_photo_fails_while_planning(
    packaged: PackageResult, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="missing.jpg"):
        make_plan(packaged, photo=tmp_path / "missing.jpg")


def test_any_exception_after_the_first_write_rolls_back(
    packaged: PackageResult, stubs: Stubs, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(packaged)
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    deleted(stubs, plan, endpoint_too=True)

    def broken(*args: object) -> None:
        raise RuntimeError("something not ours")

    monkeypatch.setattr(promote_module, "smoke_test", broken)
    fails(stubs, plan, "RuntimeError: something not ours; rolled back: deleted endpoint demo")


def test_a_failed_endpoint_config_deletes_the_model_it_follows(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    preflight_ok(stubs)
    archive_already_there(stubs, plan)
    missing(stubs.sm, "describe_model", "model")
    stubs.sm.add_response("create_model", {"ModelArn": f"{ARN}-model"}, plan.model_request())
    missing(stubs.sm, "describe_endpoint_config", "endpoint configuration")
    stubs.sm.add_client_error("create_endpoint_config", "ResourceLimitExceeded", "too many")
    stubs.sm.add_response("delete_model", {}, {"ModelName": plan.model_name})
    fails(
        stubs,
        plan,
        f"ResourceLimitExceeded: too many; rolled back: deleted model {plan.model_name}",
    )


# --- item 4: a terminal status ends the wait -----------------------------------------------


def test_update_rollback_failed_ends_the_wait_with_the_reason_and_the_log_tail(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    updating(stubs, plan)
    reason = "Both the deployment and the auto-rollback failed"
    describe(stubs, "UpdateRollbackFailed", plan.config_name, reason)
    log_tail(stubs, ["E0101 failed to load 'inception_graphdef'", "serve exited 1"])
    update_back(stubs, "UpdateRollbackFailed", plan)
    deleted(stubs, plan)
    message = str(fails(stubs, plan, "is UpdateRollbackFailed", Waiting(delay=0, attempts=50)))
    assert reason in message
    assert "  serve exited 1" in stubs.said
    assert any("/aws/sagemaker/Endpoints/demo/AllTraffic/i-0abc" in line for line in stubs.said)


@pytest.mark.parametrize("status", ["OutOfService", "Deleting", "Failed"])
def test_every_terminal_status_ends_the_wait_at_once(
    packaged: PackageResult, stubs: Stubs, status: str
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    creating(stubs, plan)
    describe(stubs, status, plan.config_name, "the reason")
    log_tail(stubs, [])
    deleted(stubs, plan, endpoint_too=True)
    fails(stubs, plan, f"is {status}: the reason", Waiting(delay=0, attempts=50))


# --- item 10: preflight before the first write ---------------------------------------------


def test_a_role_sagemaker_may_not_assume_fails_before_any_write(
    packaged: PackageResult, stubs: Stubs
) -> None:
    plan = make_plan(packaged)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    lambda_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    trusted_role(stubs, lambda_only)
    with pytest.raises(TritonshipError, match="does not trust sagemaker.amazonaws.com") as caught:
        run(stubs, plan)
    assert "update-assume-role-policy" in (caught.value.hint or "")


@pytest.mark.parametrize(("value", "autoscale", "need"), [(0.0, None, 1), (2.0, (1, 4), 4)])
def test_an_instance_quota_below_the_need_fails_before_any_write(
    packaged: PackageResult,
    stubs: Stubs,
    value: float,
    autoscale: tuple[int, int] | None,
    need: int,
) -> None:
    plan = make_plan(packaged, autoscale=autoscale)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    trusted_role(stubs)
    quota(stubs, value)
    with pytest.raises(TritonshipError, match=f"{GPU} for endpoint usage.*is {value:g}") as caught:
        run(stubs, plan)
    hint = caught.value.hint or ""
    assert "request-service-quota-increase" in hint and f"--desired-value {need}" in hint


def test_access_denied_checks_warn_and_go_on(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, smoke_test=False)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    stubs.iam.add_client_error("get_role", "AccessDenied", "not allowed", http_status_code=403)
    stubs.quotas.add_client_error(
        "list_service_quotas", "AccessDeniedException", "not allowed", http_status_code=403
    )
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)
    stubs.sm.add_response("create_endpoint", {"EndpointArn": ARN}, None)
    describe(stubs, "InService", plan.config_name)
    assert run(stubs, plan).action == "created"
    warnings = [line for line in stubs.said if line.startswith("WARNING")]
    assert len(warnings) == 2 and all("not checked" in line for line in warnings)


def test_the_smoke_test_after_a_create_still_runs(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer())
    assert run(stubs, plan, FAST).smoke.verified


def test_a_quota_service_error_only_warns(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, smoke_test=False)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    trusted_role(stubs)
    stubs.quotas.add_client_error(
        "list_service_quotas", "NoSuchResourceException", "not in this Region"
    )
    archive_already_there(stubs, plan)
    new_resources(stubs, plan)
    stubs.sm.add_response("create_endpoint", {"EndpointArn": ARN}, None)
    describe(stubs, "InService", plan.config_name)
    assert run(stubs, plan).action == "created"
    assert "WARNING: the instance quota not checked: NoSuchResourceException" in "\n".join(
        stubs.said
    )


@pytest.mark.parametrize(
    ("statement", "trusted"),
    [
        ({"Principal": {"Service": ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]}}, True),
        ({"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": ["sts:*"]}, True),
        ({"Principal": {"Service": "sagemaker.amazonaws.com"}, "Effect": "Deny"}, False),
        ({"Principal": {"AWS": "arn:aws:iam::123456789012:root"}}, False),
        ({"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:TagSession"}, False),
    ],
)
def test_trust_policy_reading(statement: dict, trusted: bool) -> None:
    from urllib.parse import quote

    from tritonship.cloud.preflight import _policy, trusts_sagemaker

    policy = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}]}
    assert trusts_sagemaker(policy) is trusted
    assert trusts_sagemaker(_policy(quote(json.dumps(policy)))) is trusted
