"""Creating and updating an endpoint, the waits, and rolling back on any failure (Stubber).

UpdateEndpoint (blue/green, a Failed endpoint, SageMaker's own rollback), a failed first
deployment, a smoke test that fails, a waiter that times out or ends on a terminal status
at once (with the FailureReason and the endpoint's log tail), a wait that ends while the
endpoint is still Updating (no UpdateEndpoint then), Ctrl-C, a rollback that fails, an
endpoint promote did not make. moto lacks UpdateEndpoint; every Stubber must be used up
exactly, so an unexpected call fails the test and each rollback's calls are asserted.
"""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    OLD,
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
    preflight_ok,
    run,
    up_to_update,
    update_back,
    updating,
)
from tritonship.artifact.package import PackageResult
from tritonship.cloud import promote as promote_module
from tritonship.cloud.endpoints import EndpointTimeout, Waiting
from tritonship.cloud.promote import PromoteInterrupted
from tritonship.errors import DeployError, TritonshipError

LINEAR = {"traffic": "linear:10:600", "bake_minutes": 30}


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


def test_an_endpoint_someone_else_made_is_left_alone(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    describe(stubs, "InService", "theirs")
    stubs.sm.add_response("list_tags", {"Tags": []}, {"ResourceArn": ARN})
    with pytest.raises(TritonshipError, match="not created by tritonship"):
        run(stubs, plan)


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


def test_a_wait_that_ends_while_updating_calls_no_update_endpoint(
    packaged: PackageResult, stubs: Stubs
) -> None:
    """No rollback (it would be refused): the record on the endpoint, exit code 3."""
    plan = make_plan(packaged, smoke_test=False, **LINEAR)
    up_to_update(stubs, plan)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": plan.config_name, "DeploymentConfig": ANY},
    )
    describe(stubs, "Updating", plan.config_name, times=2)  # FAST: two polls, then it gives up
    deploying = {"Key": "tritonship:deploying", "Value": ANY}
    stubs.sm.add_response("add_tags", {"Tags": []}, {"ResourceArn": ARN, "Tags": [deploying]})
    with pytest.raises(DeployError) as caught:
        run(stubs, plan)
    message = str(caught.value)
    assert "still Updating" in message and "rollback" not in message.split(";")[0]
    assert "nothing was rolled back" in message
    assert "tritonship status --endpoint demo" in message
    assert caught.value.exit_code == 3
