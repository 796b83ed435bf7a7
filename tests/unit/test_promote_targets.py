"""What promote sends for any archive and for a multi-model endpoint (Stubber, no server).

The smoke test names its target model (``TargetModel``) on a multi-model endpoint, and sends
a photo to our ensemble, zeros to any other model; the model's name hashes its container
(a prefix, not the archives); the dry run shows the mode, the prefix, each upload, the
smoke test's target and the environment with where each value comes from; manifests
written before any of this still load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.aws import triton_answer
from tests.support.foreign import add_sub_repository, ensembles_repository
from tests.support.stubs import ROLE, Stubs, answer, creating, describe, fails, missing, run
from tritonship.artifact.multimodel import package_multi_model
from tritonship.artifact.package import PackageResult, package_repository
from tritonship.cli import main
from tritonship.cloud.promote import build_plan
from tritonship.cloud.state import Plan, PromoteOptions
from tritonship.errors import UsageError
from tritonship.sagemaker.settings import EnvSources, sagemaker_env

ZEROS = [0] * 16


@pytest.fixture(scope="module")
def models_dir(staged_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our ensemble's archive and the add/sub archives, as package --multi-model writes them."""
    out = tmp_path_factory.mktemp("models")
    package_multi_model(staged_repository, out, allow_random_weights=True, progress=False)
    repo = ensembles_repository(tmp_path_factory.mktemp("ensembles") / "repo")
    package_multi_model(repo, out, progress=False)
    return out


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """NVIDIA's sm_model packaged as one archive (no build manifest)."""
    repo = add_sub_repository(tmp_path_factory.mktemp("foreign") / "repo")
    return package_repository(repo, tmp_path_factory.mktemp("dist") / "model.tar.gz")


def mme_plan(models_dir: Path, *names: str, **options) -> Plan:
    archives = tuple(models_dir / name for name in names)
    return build_plan(
        PromoteOptions("demo", "models", ROLE, multi_model=True, archives=archives, **options),
        "us-east-1",
    )


def add_sub_answer(model: str) -> str:
    """Triton's JSON answer of an add/sub model to zeros: two INT32 [1,16] outputs."""
    outputs = [
        {"name": name, "datatype": "INT32", "shape": [1, 16], "data": ZEROS}
        for name in ("OUTPUT0", "OUTPUT1")
    ]
    return json.dumps({"model_name": model, "outputs": outputs})


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


def test_the_model_name_hashes_the_prefix_not_the_archives(models_dir: Path, tmp_path) -> None:
    one = mme_plan(models_dir, "single.tar.gz")
    more = mme_plan(models_dir, "single.tar.gz", "chain.tar.gz", "lone.tar.gz")
    assert (more.model_name, more.config_name) == (one.model_name, one.config_name)
    assert more.model_data_url == one.model_data_url
    env = tmp_path / "more.env"
    env.write_text("SAGEMAKER_TRITON_THREAD_COUNT=16\n")
    for changed in (
        mme_plan(models_dir, "single.tar.gz", env_sources=EnvSources(env_file=env)),
        mme_plan(models_dir, "single.tar.gz", image_tag="24.05-py3"),
        mme_plan(models_dir, "single.tar.gz", prefix="elsewhere"),
    ):
        assert changed.model_name != one.model_name
    single = build_plan(
        PromoteOptions("demo", "models", ROLE, archive=models_dir / "single.tar.gz"), "us-east-1"
    )
    assert "Mode" not in single.container() and single.model_name != one.model_name


def test_the_multi_model_environment_is_the_endpoint_s_not_an_archive_s(models_dir: Path) -> None:
    plan = mme_plan(models_dir, "chain.tar.gz", env_sources=EnvSources(pairs=("A_B=1",)))
    assert plan.env == {
        "A_B": "1",
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_TRITON_LOG_VERBOSE": "0",
    }
    assert plan.env_origins["SAGEMAKER_MULTI_MODEL"] == "--multi-model"
    assert plan.env_origins["SAGEMAKER_TRITON_LOG_VERBOSE"] == "packaged default"


@pytest.mark.parametrize(
    ("names", "options", "match"),
    [
        (("lone.tar.gz", "lone.tar.gz"), {}, "two archives are named lone.tar.gz"),
        (("lone.tar.gz",), {"smoke_target_model": "chain.tar.gz"}, "none of the archives"),
        (("lone.tar.gz",), {"photo": Path("cat.jpg")}, "--photo is for the Inception"),
        (("ensemble_dali_inception.tar.gz",), {"image_tag": "25.04-py3"}, "tensorflow"),
    ],
)
def test_multi_model_refusals(models_dir: Path, names: tuple, options: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        mme_plan(models_dir, *names, **options)


def test_an_archive_the_frontend_cannot_read_is_refused(tmp_path: Path, models_dir: Path) -> None:
    repo = ensembles_repository(tmp_path / "repo")
    env_sources = EnvSources(pairs=("SAGEMAKER_TRITON_DEFAULT_MODEL_NAME=chain",))

    whole = package_repository(
        repo, tmp_path / "whole.tar.gz", env=sagemaker_env(env_sources, repo)
    )
    options = PromoteOptions("demo", "models", ROLE, multi_model=True, archives=(whole.archive,))
    with pytest.raises(UsageError, match="no single ensemble: SageMaker's multi-model frontend"):
        build_plan(options, "us-east-1")


def test_a_multi_model_environment_needs_promote_multi_model(foreign: PackageResult) -> None:
    sources = EnvSources(pairs=("SAGEMAKER_MULTI_MODEL=true",))
    options = PromoteOptions("demo", "models", ROLE, archive=foreign.archive, env_sources=sources)
    with pytest.raises(UsageError, match="promote --multi-model"):
        build_plan(options, "us-east-1")


def _dry_run(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    common = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE]
    return main([*common, *argv, "--dry-run"])


def test_dry_run_of_a_multi_model_endpoint(
    models_dir: Path, stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    extra = ["--env", "SAGEMAKER_TRITON_LOG_VERBOSE=1", "--smoke-target-model", "lone.tar.gz"]
    code = _dry_run(stubs, monkeypatch, "--multi-model", "--archives", str(models_dir), *extra)
    assert code == 0
    out = capsys.readouterr().out
    prefix = "s3://models/tritonship/demo/models/"
    assert f"Mode=MultiModel, ModelDataUrl={prefix} (a prefix" in out
    for name in ("chain", "ensemble_dali_inception", "lone", "single"):
        assert f"{models_dir / name}.tar.gz -> {prefix}{name}.tar.gz" in out
        assert f"s3.put_object(Key=tritonship/demo/models/{name}.manifest.json)" in out
    assert '"Mode": "MultiModel"' in out and f'"ModelDataUrl": "{prefix}"' in out
    smoke = "invoke_endpoint(EndpointName=demo, TargetVariant=AllTraffic, TargetModel=lone.tar.gz"
    assert f"{smoke}, zeros for lone" in out
    assert "SAGEMAKER_MULTI_MODEL=true  (--multi-model)" in out
    assert "SAGEMAKER_TRITON_LOG_VERBOSE=1  (--env)" in out


def test_dry_run_prints_the_environment_with_its_origins(
    foreign: PackageResult, stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert _dry_run(stubs, monkeypatch, "--archive", str(foreign.archive)) == 0
    out = capsys.readouterr().out
    assert "SAGEMAKER_TRITON_LOG_VERBOSE=0  (package manifest, packaged default)" in out
    assert (
        "invoke_endpoint(EndpointName=demo, TargetVariant=AllTraffic, zeros for sm_model's inputs"
        in out
    )
    assert "the answer must carry OUTPUT0, OUTPUT1" in out
    assert "Mode=MultiModel" not in out


def test_archives_need_multi_model(foreign: PackageResult, models_dir: Path, capsys) -> None:
    common = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE, "--dry-run"]
    assert main([*common, "--archives", str(models_dir)]) == 2
    assert "--archives is for a multi-model endpoint" in capsys.readouterr().err
    twice = ["--archive", str(foreign.archive), "--archive", str(models_dir / "lone.tar.gz")]
    assert main([*common, *twice]) == 2
    assert "more than one --archive is for a multi-model endpoint" in capsys.readouterr().err
    assert main([*common, "--smoke-target-model", "lone.tar.gz"]) == 2
    assert "--smoke-target-model is for a multi-model" in capsys.readouterr().err
    options = PromoteOptions("demo", "models", ROLE, archives=(foreign.archive, foreign.archive))
    with pytest.raises(UsageError, match="need a multi-model endpoint"):
        build_plan(options, "us-east-1")
