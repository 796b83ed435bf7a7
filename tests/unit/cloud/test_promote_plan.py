"""What promote plans before its first write: names, options, environment, the dry run.

A model's name hashes its whole container definition (a multi-model one's prefix, not its
archives); options SageMaker would refuse are usage errors, the startup and download
budgets included; the environment a model gets, and where each value came from; the dry
run lists every call and makes no write (Stubber: botocore's service models, no AWS).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.foreign import ensembles_repository
from tests.support.stubs import (
    ROLE,
    Stubs,
    creating,
    deleted,
    describe,
    make_plan,
    missing,
    mme_plan,
)
from tritonship.artifact.package import PackageResult, package_repository
from tritonship.cli import main
from tritonship.cloud.promote import build_plan
from tritonship.cloud.state import PromoteOptions
from tritonship.errors import UsageError
from tritonship.sagemaker.settings import EnvSources, sagemaker_env


def _dry_run_cli(stubs: Stubs, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    common = ["promote", "--endpoint", "demo", "--bucket", "models", "--role", ROLE]
    return main([*common, *argv, "--dry-run"])


def _dry_run(packaged: PackageResult, *extra: str) -> int:
    return main(
        [
            "promote",
            "--endpoint",
            "demo",
            "--bucket",
            "models",
            "--role",
            ROLE,
            "--archive",
            str(packaged.archive),
            "--autoscale",
            "1:4",
            *extra,
            "--dry-run",
        ]
    )


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


def test_dry_run_of_a_multi_model_endpoint(
    models_dir: Path, stubs: Stubs, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    extra = ["--env", "SAGEMAKER_TRITON_LOG_VERBOSE=1", "--smoke-target-model", "lone.tar.gz"]
    code = _dry_run_cli(stubs, monkeypatch, "--multi-model", "--archives", str(models_dir), *extra)
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
    assert _dry_run_cli(stubs, monkeypatch, "--archive", str(foreign.archive)) == 0
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


def test_the_variant_carries_both_budgets(packaged: PackageResult) -> None:
    plan = make_plan(packaged, startup_timeout=1200, download_timeout=300)
    variant = plan.config_request()["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 1200
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 300
    assert plan.provisioning == 600 + 1200 + 300
    assert make_plan(packaged).config_name != plan.config_name  # the budgets name the config


@pytest.mark.parametrize(("option", "value"), [("startup_timeout", 59), ("download_timeout", 3601)])
def test_a_budget_outside_sagemakers_range_is_refused(
    packaged: PackageResult, option: str, value: int
) -> None:
    with pytest.raises(UsageError, match="is not 60-3600 seconds"):
        make_plan(packaged, **{option: value})


def test_dry_run_makes_no_write_call(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Only DescribeEndpoint is answered: any other call would fail the Stubber."""
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    missing(stubs.sm, "describe_endpoint", "endpoint")
    assert _dry_run(packaged) == 0
    out = capsys.readouterr().out
    assert "dry run: no write call made" in out
    assert "endpoint demo does not exist: it will be created (1 x ml.g4dn.xlarge" in out
    for call in (
        "iam.get_role(RoleName=tritonship-endpoint)",
        'list_service_quotas(ServiceCode=sagemaker)  -> "ml.g4dn.xlarge for endpoint usage" '
        "must be >= 4",
        "s3.upload_file",
        "sagemaker.create_model",
        "sagemaker.create_endpoint_config",
        "sagemaker.create_endpoint(EndpointName=demo",
        "sagemaker-runtime.invoke_endpoint",
        "register_scalable_target",
        "put_scaling_policy",
        "ServerSideEncryption",
    ):
        assert call in out
    assert "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3" in out


def test_dry_run_without_access_still_prints_the_plan(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region, attempts: stubs.clients)
    stubs.sm.add_client_error("describe_endpoint", "AccessDeniedException", "no", 400)
    guarded = ("--traffic", "linear:20:5m", "--alarm", "demo-5xx", "--bake", "10")
    assert _dry_run(packaged, *guarded) == 0
    out = capsys.readouterr().out
    assert "cannot be described (describe: AccessDeniedException: no)" in out
    config = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
            },
            "TerminationWaitInSeconds": 600,
            # 2400 provisioning + 4 waits of 300 s + 600 bake + 300 termination
            "MaximumExecutionTimeoutInSeconds": 4500,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "demo-5xx"}]},
    }
    assert f"DeploymentConfig={json.dumps(config)}" in out


def test_cli_reports_a_failed_promote_in_one_line(
    packaged: PackageResult,
    stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    plan = make_plan(packaged, smoke_test=False)
    creating(stubs, plan)
    describe(stubs, "Failed", plan.config_name, "ClientError: image not found")
    deleted(stubs, plan, endpoint_too=True)
    monkeypatch.setattr("tritonship.cloud.aws.make_clients", lambda region: stubs.clients)
    code = main(
        [
            "promote",
            "--endpoint",
            "demo",
            "--bucket",
            "models",
            "--role",
            ROLE,
            "--archive",
            str(packaged.archive),
            "--skip-smoke-test",
            "--poll",
            "0.01",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "error: promote of demo failed: endpoint demo is Failed: ClientError: image not" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("--autoscale", "4:1", "MIN:MAX"),
        ("--role", "not-an-arn", "IAM role ARN"),
        ("--image-tag", "25.04-py3", "tensorflow"),
        ("--endpoint", "bad_name", "not valid"),
        ("--poll", "0", "must be positive"),
    ],
)
def test_bad_options_are_usage_errors(
    packaged: PackageResult,
    option: str,
    value: str,
    match: str,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    args = {"--endpoint": "demo", "--bucket": "models", "--role": ROLE, option: value}
    argv = [
        "promote",
        *[x for pair in args.items() for x in pair],
        "--archive",
        str(packaged.archive),
        "--dry-run",
    ]
    assert main(argv) == 2
    assert match in capsys.readouterr().err
