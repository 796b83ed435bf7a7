"""Checks before promote's first write: the role's trust, the instance quota, the budgets.

A role SageMaker may not assume and a quota below the need stop promote before anything is
written; checks it may not make (AccessDenied, a quota service error) only warn. The
variant's startup and download budgets are compared with what ``serve --archive`` measured
for the same archive, times the documented margin (Stubber, no AWS).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.stubs import (
    ARN,
    GPU,
    Stubs,
    archive_already_there,
    creating,
    describe,
    make_plan,
    missing,
    new_resources,
    quota,
    run,
    trusted_role,
)
from tritonship.artifact.package import PackageResult
from tritonship.artifact.timings import MARGIN, record_timing
from tritonship.errors import TritonshipError


def _created(stubs: Stubs, plan) -> None:
    """A first deployment, up to InService (no smoke test)."""
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)


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


def test_a_budget_below_the_margin_over_the_local_load_warns(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    record_timing(packaged.sha256, 2.0, 400.0, "native", run_dir)
    plan = make_plan(packaged, smoke_test=False)  # 900 s startup < 3 x 400 s
    _created(stubs, plan)
    run(stubs, plan)
    warning = next(line for line in stubs.said if line.startswith("WARNING: --startup-timeout"))
    assert f"below {MARGIN:g} x the 400.0 s the load took here (native)" in warning
    assert "give at least 1201" in warning
    assert "--download-timeout" not in warning  # 900 s covers 3 x 2 s


def test_budgets_that_cover_the_margin_say_so(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    record_timing(packaged.sha256, 2.0, 10.0, "native", run_dir)
    plan = make_plan(packaged, smoke_test=False)
    _created(stubs, plan)
    run(stubs, plan)
    assert any("cover 3 x the local unpack (2.0 s) and load (10.0 s)" in s for s in stubs.said)


def test_an_archive_never_served_here_says_how_to_measure_it(
    packaged: PackageResult, stubs: Stubs, run_dir: Path
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    _created(stubs, plan)
    run(stubs, plan)
    assert any(f"tritonship serve --archive {packaged.archive}" in s for s in stubs.said)
