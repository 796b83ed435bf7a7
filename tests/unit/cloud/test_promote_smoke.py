"""promote's smoke test: what it sends, to which variant and model, and how it checks the answer.

The photo is read while planning (a missing one fails before any write); the smoke test
runs after a creation too; it names the new variant (``TargetVariant``) and, on a
multi-model endpoint, its target model; our ensemble gets a photo, any other model zeros
of its inputs, and an answer without the outputs fails (Stubber, no server).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.aws import triton_answer
from tests.support.stubs import (
    ARN,
    FAST,
    OLD,
    ROLE,
    Stubs,
    answer,
    archive_already_there,
    creating,
    describe,
    existing_endpoint,
    fails,
    make_plan,
    mme_plan,
    new_resources,
    old_variant,
    preflight_ok,
    run,
    summary,
)
from tritonship.artifact.package import PackageResult
from tritonship.cloud.deployed import Deployed
from tritonship.cloud.planning import resolve
from tritonship.cloud.promote import build_plan
from tritonship.cloud.state import PromoteOptions
from tritonship.errors import UsageError

ZEROS = [0] * 16


def add_sub_answer(model: str) -> str:
    """Triton's JSON answer of an add/sub model to zeros: two INT32 [1,16] outputs."""
    outputs = [
        {"name": name, "datatype": "INT32", "shape": [1, 16], "data": ZEROS}
        for name in ("OUTPUT0", "OUTPUT1")
    ]
    return json.dumps({"model_name": model, "outputs": outputs})


def test_a_missing_smoke_photo_fails_while_planning(
    packaged: PackageResult, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="missing.jpg"):
        make_plan(packaged, photo=tmp_path / "missing.jpg")


def test_the_smoke_test_after_a_create_still_runs(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged)
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer())
    assert run(stubs, plan, FAST).smoke.verified


def test_the_smoke_test_of_a_new_variant_names_it(packaged: PackageResult, stubs: Stubs) -> None:
    plan = make_plan(packaged, variant="canary", weight=0.1)
    summaries = [summary(weight=1.0)]
    existing_endpoint(stubs, plan, summaries=summaries)
    deployed = Deployed(
        {"EndpointConfigName": OLD, "EndpointStatus": "InService", "ProductionVariants": summaries},
        {"ProductionVariants": [old_variant()]},
    )
    resolved = resolve(plan, deployed)
    preflight_ok(stubs)
    archive_already_there(stubs, resolved)
    new_resources(stubs, resolved)
    stubs.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {"EndpointName": "demo", "EndpointConfigName": resolved.config_name},
    )
    describe(stubs, "InService", resolved.config_name)
    answer(stubs, triton_answer(), variant="canary")
    result = run(stubs, plan)
    assert result.smoke is not None and result.smoke.verified


def test_the_smoke_test_sends_the_photo_to_the_first_archive_by_name(
    models_dir: Path, stubs: Stubs
) -> None:
    plan = mme_plan(models_dir, "ensemble_dali_inception.tar.gz", "lone.tar.gz")
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, triton_answer(), TargetModel="ensemble_dali_inception.tar.gz")
    result = run(stubs, plan)
    assert result.smoke.verified and "OUTPUT [1,1001] sums to 1.0000" in result.smoke.detail
    assert plan.model_request()["PrimaryContainer"]["Mode"] == "MultiModel"
    assert plan.model_request()["PrimaryContainer"]["ModelDataUrl"] == (
        "s3://models/tritonship/demo/models/"
    )


def test_smoke_target_model_picks_the_archive_and_zeros_reach_any_model(
    models_dir: Path, stubs: Stubs
) -> None:
    plan = mme_plan(
        models_dir,
        "ensemble_dali_inception.tar.gz",
        "lone.tar.gz",
        smoke_target_model="lone.tar.gz",
    )
    sent = json.loads(plan.smoke.body)
    assert [(i["name"], i["datatype"], i["shape"], i["data"]) for i in sent["inputs"]] == [
        ("INPUT0", "INT32", [1, 16], ZEROS),
        ("INPUT1", "INT32", [1, 16], ZEROS),
    ]
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, add_sub_answer("lone"), TargetModel="lone.tar.gz", Body=plan.smoke.body)
    result = run(stubs, plan)
    assert result.smoke.verified
    assert result.smoke.detail == "OUTPUT0 [1, 16], OUTPUT1 [1, 16] answered"


def test_an_answer_without_the_outputs_fails_the_smoke_test(
    foreign: PackageResult, stubs: Stubs
) -> None:
    plan = build_plan(PromoteOptions("demo", "models", ROLE, archive=foreign.archive), "us-east-1")
    assert plan.smoke.target_model is None and plan.smoke.outputs == ("OUTPUT0", "OUTPUT1")
    creating(stubs, plan)
    describe(stubs, "InService", plan.config_name)
    answer(stubs, json.dumps({"model_name": "sm_model", "outputs": []}))
    stubs.sm.add_response("delete_endpoint", {}, {"EndpointName": "demo"})
    stubs.sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": plan.config_name})
    stubs.sm.add_response("delete_model", {}, {"ModelName": plan.model_name})
    fails(stubs, plan, "the answer has no OUTPUT0, OUTPUT1.*deleted endpoint demo")
